from collections import defaultdict
from collections.abc import Iterable
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


def cohort_order_months(
    *, since: datetime, until: datetime, recorded_before: datetime | None = None
) -> dict[int, set[date]]:
    """Members whose first order was placed in [since, until), each with the months (their
    first dates, in TIME_ZONE) in which they placed orders, the first month included.
    With `recorded_before`: as the orders recorded before it had it."""
    known = Order.objects.all()
    if recorded_before is not None:
        known = known.filter(recorded_at__lt=recorded_before)
    firsts = (
        known.values("member_id")
        .annotate(first=Min("placed_at"))
        .filter(first__gte=since, first__lt=until)
        .values("member_id")
    )
    rows = (
        known.filter(placed_at__gte=since, member_id__in=firsts)
        .values_list("member_id", business_bucket("placed_at", "month"))
        .distinct()
    )
    months: dict[int, set[date]] = defaultdict(set)
    for member_id, month in rows.iterator(chunk_size=10_000):
        months[member_id].add(month)
    return months


def order_first_placed() -> datetime | None:
    return Order.objects.aggregate(first=Min("placed_at"))["first"]


# What changed since a moment, for the reports' roll-up: the business days whose figures
# the orders and refunds recorded since then touch, and the members who placed them.


def order_days_recorded_since(moment: datetime) -> set[date]:
    """The business days on which the orders recorded at or after `moment` were placed."""
    orders = Order.objects.filter(recorded_at__gte=moment)
    return set(orders.values_list(business_bucket("placed_at", "day"), flat=True).distinct())


def refund_days_recorded_since(moment: datetime) -> set[date]:
    """The business days of the refunds recorded at or after `moment`."""
    refunds = Refund.objects.filter(recorded_at__gte=moment)
    return set(refunds.values_list(business_bucket("refunded_at", "day"), flat=True).distinct())


def order_member_ids_recorded_since(moment: datetime) -> set[int]:
    orders = Order.objects.filter(recorded_at__gte=moment)
    return set(orders.values_list("member_id", flat=True).distinct())


def order_days_held_since(changes: dict[int, datetime]) -> set[date]:
    """The business days of the orders each member (by id) placed at or after their
    moment, and of the refunds of those orders: the days whose figures by the tier held
    at the order a tier change at that moment touches."""
    if not changes:
        return set()
    earliest = min(changes.values())
    orders = Order.objects.filter(member_id__in=changes, placed_at__gte=earliest)
    refunds = Refund.objects.filter(member_id__in=changes, order__placed_at__gte=earliest)
    rows = [
        *orders.values_list("member_id", "placed_at", business_bucket("placed_at", "day")),
        *refunds.values_list(
            "member_id", "order__placed_at", business_bucket("refunded_at", "day")
        ),
    ]
    return {day for member_id, placed_at, day in rows if placed_at >= changes[member_id]}


def order_months_of_members(*, member_ids: Iterable[int]) -> dict[int, dict[date, datetime]]:
    """Each member's order months (first dates, in TIME_ZONE), each with when the first of
    its orders was recorded: so the months as they stood at any moment can be told."""
    rows = (
        Order.objects.filter(member_id__in=member_ids)
        .values("member_id", month=business_bucket("placed_at", "month"))
        .annotate(recorded=Min("recorded_at"))
        .order_by()
        .values_list("member_id", "month", "recorded")
    )
    months: dict[int, dict[date, datetime]] = defaultdict(dict)
    for member_id, month, recorded in rows.iterator(chunk_size=10_000):
        months[member_id][month] = recorded
    return months
