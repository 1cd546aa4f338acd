from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Count, F, Min, OuterRef, Q, Sum

from core.days import business_bucket
from core.models import newest
from core.money import money
from members.selectors import tier_held

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


def order_buyers_by_bucket(
    *, since: datetime, until: datetime, interval: str
) -> dict[date, tuple[int, int]]:
    """By bucket of orders placed in [since, until): (members with an order, members with
    orders on two or more different days). A basket split into several orders on one day
    is one visit, not a repurchase."""
    per_member = (
        Order.objects.filter(placed_at__gte=since, placed_at__lt=until)
        .values("member_id", bucket=business_bucket("placed_at", interval))
        .annotate(days=Count(business_bucket("placed_at", "day"), distinct=True))
        .values_list("bucket", "days")
    )
    counts: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    for bucket, days in per_member.iterator(chunk_size=10_000):
        counts[bucket][0] += 1
        counts[bucket][1] += days >= 2
    return {bucket: (buyers, repeat) for bucket, (buyers, repeat) in counts.items()}


def spend_by_tier(*, since: datetime, until: datetime, interval: str) -> dict:
    """By (bucket, tier id) of orders placed in [since, until), the tier being the one the
    member held when the order was placed (before any move the order itself caused):
    {"orders", "buyers", "spend"}; and the refunds dated in [since, until) by the bucket
    of their date and the tier of their order: {"refunds"}."""
    figures: dict = defaultdict(lambda: {"orders": 0, "buyers": 0, "spend": 0, "refunds": 0})
    orders = (
        Order.objects.filter(placed_at__gte=since, placed_at__lt=until)
        .annotate(
            held=tier_held(OuterRef("placed_at"), member="member_id", current="member__tier_id")
        )
        .values("held", bucket=business_bucket("placed_at", interval))
        .annotate(orders=Count("pk"), buyers=Count("member_id", distinct=True), spend=Sum("amount"))
        .values_list("bucket", "held", "orders", "buyers", "spend")
    )
    for bucket, tier_id, count, buyers, spend in orders:
        figures[bucket, tier_id].update(orders=count, buyers=buyers, spend=money(spend))
    refunds = (
        Refund.objects.filter(refunded_at__gte=since, refunded_at__lt=until)
        .annotate(
            held=tier_held(
                OuterRef("order__placed_at"), member="member_id", current="member__tier_id"
            )
        )
        .values("held", bucket=business_bucket("refunded_at", interval))
        .annotate(refunds=Sum("amount"))
        .values_list("bucket", "held", "refunds")
    )
    for bucket, tier_id, amount in refunds:
        figures[bucket, tier_id]["refunds"] = money(amount)
    return figures


def cohort_order_months(*, since: datetime, until: datetime) -> dict[int, set[date]]:
    """Members whose first order was placed in [since, until), each with the months (their
    first dates, in TIME_ZONE) in which they placed orders, the first month included."""
    firsts = (
        Order.objects.values("member_id")
        .annotate(first=Min("placed_at"))
        .filter(first__gte=since, first__lt=until)
        .values("member_id")
    )
    rows = (
        Order.objects.filter(placed_at__gte=since, member_id__in=firsts)
        .values_list("member_id", business_bucket("placed_at", "month"))
        .distinct()
    )
    months: dict[int, set[date]] = defaultdict(set)
    for member_id, month in rows.iterator(chunk_size=10_000):
        months[member_id].add(month)
    return months
