from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, F, Q, Sum

from core.models import newest
from core.money import money

from .models import COUNTED, Order, Refund


def member_order_windows(
    *, member_id: int, windows: set[int], now: datetime
) -> dict[int, tuple[Decimal, int]]:
    """Spend (net of refunds) and the number of orders that count (all but those refunded
    in full) in each of the last-N-days windows, in one query."""
    if not windows:
        return {}
    aggregates = {}
    for days in windows:
        recent = Q(placed_at__gt=now - timedelta(days=days), placed_at__lte=now)
        aggregates[f"spend_{days}"] = Sum(F("amount") - F("refunded_amount"), filter=recent)
        aggregates[f"count_{days}"] = Count("id", filter=recent & COUNTED)
    row = Order.objects.filter(member_id=member_id).aggregate(**aggregates)
    return {days: (money(row[f"spend_{days}"] or 0), row[f"count_{days}"]) for days in windows}


def member_spend_between(*, member_id: int, start: datetime, end: datetime) -> Decimal:
    """Spend (net of refunds) of the orders placed after `start`, up to and including
    `end`: a tier period counts what came after the moment that started it."""
    orders = Order.objects.filter(member_id=member_id, placed_at__gt=start, placed_at__lte=end)
    return money(orders.aggregate(total=Sum(F("amount") - F("refunded_amount")))["total"] or 0)


def order_timeline(*, member_id: int, before=None, limit: int) -> list[dict]:
    orders = Order.objects.filter(member_id=member_id)
    return [
        {
            "type": "order",
            "at": order.placed_at,
            "external_id": order.external_id,
            "amount": order.amount,
            "currency": order.currency,
            "placed_at": order.placed_at,
        }
        for order in newest(orders, at="placed_at", before=before, limit=limit)
    ]


def refund_timeline(*, member_id: int, before=None, limit: int) -> list[dict]:
    refunds = Refund.objects.filter(member_id=member_id).select_related("order")
    return [
        {
            "type": "refund",
            "at": refund.refunded_at,
            "external_id": refund.external_id,
            "order": refund.order.external_id,
            "amount": refund.amount,
            "refunded_at": refund.refunded_at,
        }
        for refund in newest(refunds, at="refunded_at", before=before, limit=limit)
    ]
