"""Each figure the roll-up keeps (models.py), counted from the raw rows through the other
apps' selectors: for a period of whole buckets, or (cohorts, points lots) for everyone.
The roll-up stores these rows, verify.py compares the stored ones with them, and
figures.py counts the same way whatever the roll-up has not covered."""

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from benefits import report_selectors as benefit_selectors
from core.money import money
from members import selectors as member_selectors
from orders import report_selectors as order_selectors
from rules.selectors import reports as rule_selectors

from .models import (
    BuyerFigure,
    CohortFigure,
    PointsDay,
    PointsLotLeft,
    RuleFigure,
    TierDelta,
    TierSpendFigure,
)
from .periods import EARLIEST, LATEST, Interval, Period

COHORT_MONTHS = 12
# Every day a ledger entry can be dated on.
ALL_DAYS = Period(EARLIEST, LATEST)


def whole_buckets(labels: Iterable[date], interval: str) -> list[Period]:
    """Buckets (by label) merged into periods of consecutive whole buckets."""
    periods: list[Period] = []
    for label in sorted(set(labels)):
        last = Period(label, label, interval).next_bucket(label) - timedelta(days=1)
        if periods and periods[-1].end + timedelta(days=1) == label:
            periods[-1] = Period(periods[-1].start, last, interval)
        else:
            periods.append(Period(label, last, interval))
    return periods


# Each figure's rows for a period of whole buckets.


def buyer_rows(period: Period) -> list[BuyerFigure]:
    counts = order_selectors.order_buyers_by_bucket(
        since=period.since, until=period.until, interval=period.interval
    )
    return [
        BuyerFigure(interval=period.interval, bucket=bucket, buyers=buyers, repeat_buyers=repeat)
        for bucket, (buyers, repeat) in counts.items()
    ]


def spend_rows(period: Period) -> list[TierSpendFigure]:
    figures = order_selectors.spend_by_tier(
        since=period.since, until=period.until, interval=period.interval
    )
    return [
        TierSpendFigure(interval=period.interval, bucket=bucket, tier_id=tier_id, **found)
        for (bucket, tier_id), found in figures.items()
    ]


def delta_rows(period: Period) -> list[TierDelta]:
    deltas = member_selectors.tier_count_deltas(
        since=period.since, until=period.until, interval=Interval.DAY
    )
    return [
        TierDelta(day=day, tier_id=tier_id, members=members)
        for day, counts in deltas.items()
        for tier_id, members in counts.items()
        if members
    ]


def months_between(first: date, later: date) -> int:
    return (later.year - first.year) * 12 + later.month - first.month


def cohort_counts(member_months: Iterable[Iterable[date]]) -> Counter:
    """(cohort, offset) → members, from each member's order months."""
    counts: Counter = Counter()
    for months in member_months:
        months = list(months)
        if not months:
            continue
        first = min(months)
        for month in months:
            if (offset := months_between(first, month)) < COHORT_MONTHS:
                counts[first, offset] += 1
    return counts


def cohort_counts_as_of(months: dict[int, dict[date, datetime]], moment: datetime) -> Counter:
    """cohort_counts of order_months_of_members as the orders recorded before `moment`
    had them."""
    return cohort_counts(
        [month for month, recorded in member.items() if recorded < moment]
        for member in months.values()
    )


def cohort_rows(*, recorded_before: datetime) -> Iterator[CohortFigure]:
    """Every cohort, from the orders recorded before `recorded_before`."""
    counts = cohort_counts(
        order_selectors.order_months_each_member(recorded_before=recorded_before)
    )
    for (cohort, offset), members in sorted(counts.items()):
        yield CohortFigure(cohort=cohort, offset=offset, members=members)


def lot_rows(member_ids: Iterable[int] | None = None) -> Iterator[PointsLotLeft]:
    for member_id, expires_at, left in benefit_selectors.points_lots_left(member_ids=member_ids):
        expires_on = timezone.localdate(expires_at) if expires_at is not None else None
        yield PointsLotLeft(member_id=member_id, expires_on=expires_on, points=left)


def history(interval: str = Interval.DAY) -> Period | None:
    """Whole buckets over every day anything the figures count can fall on, from the first
    member's joining or order to tomorrow (an order may be placed a little ahead)."""
    first = min(
        filter(
            None, [order_selectors.order_first_placed(), member_selectors.member_first_joined()]
        ),
        default=None,
    )
    if first is None:
        return None
    tomorrow = timezone.localdate() + timedelta(days=1)
    days = Period(max(timezone.localdate(first), EARLIEST), tomorrow, interval)
    start = days.bucket_of(days.start)
    return Period(start, days.next_bucket(days.bucket_of(days.end)) + timedelta(days=-1), interval)


def rule_figures(period: Period) -> dict[tuple[date, int], tuple[int, int, Decimal, int]]:
    """(bucket, rule id) → (firings, members, coupon value, points) of the rules that fired
    in the period."""
    # Coupons and points are read per firing (benefits knows nothing of rules or
    # buckets), through a subquery of the period's firing ids rather than a list of them,
    # then summed here in one pass over the period's firings.
    firing_ids = rule_selectors.rule_firing_ids(since=period.since, until=period.until)
    coupon_value = benefit_selectors.coupon_value_by_firing(firing_ids=firing_ids)
    points = benefit_selectors.points_awarded_by_firing(firing_ids=firing_ids)
    firings: Counter = Counter()
    members: dict[tuple[date, int], set[int]] = defaultdict(set)
    value: dict[tuple[date, int], Decimal] = defaultdict(Decimal)
    awarded: Counter = Counter()
    for firing_id, bucket, rule_id, member_id in rule_selectors.rule_firings_by_bucket(
        since=period.since, until=period.until, interval=period.interval
    ):
        key = (bucket, rule_id)
        firings[key] += 1
        members[key].add(member_id)
        value[key] += coupon_value.get(firing_id, 0)
        awarded[key] += points.get(firing_id, 0)
    return {
        key: (count, len(members[key]), money(value[key]), awarded[key])
        for key, count in firings.items()
    }


def rule_rows(period: Period) -> list[RuleFigure]:
    return [
        RuleFigure(
            interval=period.interval,
            bucket=bucket,
            rule_id=rule_id,
            firings=firings,
            members=members,
            coupon_value=coupon_value,
            points=points,
        )
        for (bucket, rule_id), (firings, members, coupon_value, points) in rule_figures(
            period
        ).items()
    ]


def points_day_rows(period: Period = ALL_DAYS) -> list[PointsDay]:
    moves = benefit_selectors.points_movements_by_bucket(
        since=period.since, until=period.until, interval=Interval.DAY
    )
    return [PointsDay(day=day, **figures) for day, figures in moves.items()]
