from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from orders import selectors as order_selectors
from orders import services as order_services

from . import services


@shared_task(
    autoretry_for=(OperationalError,),  # lock timeouts, a dropped connection
    retry_backoff=2,
    retry_backoff_max=120,
    max_retries=8,
)
def evaluate(member_id: int, trigger: str, order_id: int | None = None) -> int:
    return len(
        services.member_evaluate(member_id=member_id, trigger=trigger, order_id=order_id).fired
    )


@shared_task
def sweep_pending_orders() -> int:
    """Enqueue evaluation for orders recorded a while ago and still not evaluated: their
    task was never published (broker down), or was lost with its worker."""
    grace = timedelta(seconds=settings.TIERFLOW_PENDING_GRACE_SECONDS)
    pending = list(
        order_selectors.orders_pending_evaluation(
            older_than=grace, limit=settings.TIERFLOW_SWEEP_BATCH
        ).values_list("pk", "member_id")
    )
    order_services.orders_mark_enqueued(order_ids=[order_id for order_id, _ in pending])
    for order_id, member_id in pending:
        services.order_evaluation_enqueue(order_id=order_id, member_id=member_id)
    return len(pending)
