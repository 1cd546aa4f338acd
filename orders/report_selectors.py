"""Orders as the reports read them: buyers and spend by bucket, the tier held at each
order, cohorts' months, and what was recorded since a moment (the reports' roll-up)."""

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import date, datetime

from django.db import connection
from django.db.models import Count, Max, Min, OuterRef, Sum

from core.days import business_bucket
from core.money import money
from members.selectors import tier_held

from .models import Order, Refund


def order_buyers_by_bucket(
    *, since: datetime, until: datetime, interval: str
) -> dict[date, tuple[int, int]]:
    """By bucket of orders placed in [since, until): (members with an order, members with
    orders on two or more different days). A basket split into several orders on one day
    is one visit, not a repurchase."""
    day = business_bucket("placed_at", "day")
    # Per member and bucket, their first and last day (two or more days is a first day
    # before the last: Min and Max need no sort per member, as a count of distinct days
    # would); then counted per bucket in the database, so a bucket's hundreds of
    # thousands of buyers never travel to Python.
    per_member = (
        Order.objects.filter(placed_at__gte=since, placed_at__lt=until)
        .values("member_id", bucket=business_bucket("placed_at", interval))
        .annotate(first_day=Min(day), last_day=Max(day))
        .order_by()
        .values_list("bucket", "first_day", "last_day")
    )
    sql, params = per_member.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT bucket, COUNT(*), COUNT(*) FILTER (WHERE first_day <> last_day) "
            f"FROM ({sql}) AS per_member GROUP BY bucket",
            params,
        )
        return {_as_date(bucket): (buyers, repeat) for bucket, buyers, repeat in cursor}


def _as_date(value: date | datetime | str) -> date:
    """A truncated date as the database driver gives it outside the ORM."""
    if isinstance(value, datetime):
        return value.date()
    return date.fromisoformat(value) if isinstance(value, str) else value


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


def order_months_each_member(*, recorded_before: datetime) -> Iterator[list[date]]:
    """Every member's order months (first dates, in TIME_ZONE), one member at a time,
    from the orders recorded before `recorded_before`: streamed in member order, so
    memory holds one member's months."""
    rows = (
        Order.objects.filter(recorded_at__lt=recorded_before)
        .values_list("member_id", business_bucket("placed_at", "month"))
        .distinct()
        .order_by("member_id")
    )
    current, months = None, []
    for member_id, month in rows.iterator(chunk_size=20_000):
        if member_id != current:
            if months:
                yield months
            current, months = member_id, []
        months.append(month)
    if months:
        yield months


def order_first_placed() -> datetime | None:
    return Order.objects.aggregate(first=Min("placed_at"))["first"]


# What changed since a moment, for the reports' roll-up: the business days whose figures
# the orders and refunds recorded since then touch, and the members who placed them.


def order_days_recorded_since(moment: datetime) -> set[date]:
    """The business days on which the orders recorded at or after `moment` were placed."""
    orders = Order.objects.filter(recorded_at__gte=moment).order_by()
    return set(orders.values_list(business_bucket("placed_at", "day"), flat=True).distinct())


def refund_days_recorded_since(moment: datetime) -> set[date]:
    """The business days of the refunds recorded at or after `moment`."""
    refunds = Refund.objects.filter(recorded_at__gte=moment).order_by()
    return set(refunds.values_list(business_bucket("refunded_at", "day"), flat=True).distinct())


def order_member_ids_recorded_since(moment: datetime) -> set[int]:
    orders = Order.objects.filter(recorded_at__gte=moment).order_by()
    return set(orders.values_list("member_id", flat=True).distinct())


def order_days_held_since(changes: dict[int, datetime | None]) -> set[date]:
    """The business days of the orders each member (by id) placed at or after their
    moment (None: all their orders), and of the refunds of those orders: the days whose
    figures by the tier held at the order a tier change at that moment touches."""
    if not changes:
        return set()
    moments = [moment for moment in changes.values() if moment is not None]
    orders = Order.objects.filter(member_id__in=changes).order_by()
    refunds = Refund.objects.filter(member_id__in=changes).order_by()
    if len(moments) == len(changes):
        orders = orders.filter(placed_at__gte=min(moments))
        refunds = refunds.filter(order__placed_at__gte=min(moments))
    rows = [
        *orders.values_list("member_id", "placed_at", business_bucket("placed_at", "day")),
        *refunds.values_list(
            "member_id", "order__placed_at", business_bucket("refunded_at", "day")
        ),
    ]
    return {
        day
        for member_id, placed_at, day in rows
        if changes[member_id] is None or placed_at >= changes[member_id]
    }


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
