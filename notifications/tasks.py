from datetime import timedelta

from celery import shared_task
from django.conf import settings

from . import selectors, services


@shared_task
def deliver(notification_id: int) -> str:
    return services.notification_deliver(notification_id=notification_id)


@shared_task
def sweep_queued_notifications() -> int:
    """Re-enqueue messages whose delivery task was lost (broker down at commit time)."""
    grace = timedelta(seconds=settings.TIERFLOW_PENDING_GRACE_SECONDS)
    ids = list(selectors.notifications_stuck_queued(older_than=grace).values_list("pk", flat=True))
    for notification_id in ids:
        services.deliver_enqueue(notification_id=notification_id)
    return len(ids)
