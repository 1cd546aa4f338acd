from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from core.money import money

from .models import Order


def orders_pending_evaluation(*, older_than: timedelta, limit: int) -> QuerySet[Order]:
    """Unevaluated orders whose evaluation was last published before `older_than` ago,
    longest-waiting first."""
    cutoff = timezone.now() - older_than
    return Order.objects.filter(evaluated_at__isnull=True, enqueued_at__lte=cutoff).order_by(
        "enqueued_at"
    )[:limit]


def orders_pending_count(*, older_than: timedelta) -> int:
    cutoff = timezone.now() - older_than
    return Order.objects.filter(evaluated_at__isnull=True, enqueued_at__lte=cutoff).count()


def member_order_windows(
    *, member_id: int, windows: set[int], now: datetime
) -> dict[int, tuple[Decimal, int]]:
    """Spend and order count in each of the last-N-days windows, in one query."""
    if not windows:
        return {}
    aggregates = {}
    for days in windows:
        recent = Q(placed_at__gt=now - timedelta(days=days), placed_at__lte=now)
        aggregates[f"spend_{days}"] = Sum("amount", filter=recent)
        aggregates[f"count_{days}"] = Count("id", filter=recent)
    row = Order.objects.filter(member_id=member_id).aggregate(**aggregates)
    return {days: (money(row[f"spend_{days}"] or 0), row[f"count_{days}"]) for days in windows}


def order_timeline(*, member_id: int, before=None, limit: int) -> list[dict]:
    orders = Order.objects.filter(member_id=member_id).order_by("-recorded_at", "-id")
    if before is not None:
        orders = orders.filter(recorded_at__lt=before)
    return [
        {
            "type": "order",
            "at": order.recorded_at,
            "external_id": order.external_id,
            "amount": order.amount,
            "currency": order.currency,
            "placed_at": order.placed_at,
        }
        for order in orders[:limit]
    ]
