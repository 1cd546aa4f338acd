"""The figures the reports show that are too costly to count from the raw rows on every
request: read from the roll-up (rollup.py) for the buckets nothing recorded since it ran
touches, and counted from the raw rows for the rest (the buckets touched since, and the
partial buckets at a period's ends). So a report is exact whenever it is read, and fast
when the roll-up is recent; before the first roll-up everything is counted raw."""

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, timedelta

from django.db.models import Case, CharField, Count, Sum, Value, When
from django.utils import timezone

from benefits import report_selectors as benefit_selectors
from core.days import start_of_day
from members import selectors as member_selectors
from orders import report_selectors as order_selectors

from . import recount
from .models import (
    BuyerFigure,
    CohortFigure,
    PointsDay,
    PointsLotLeft,
    RuleFigure,
    TierDelta,
    TierSpendFigure,
)
from .periods import Interval, Period
from .recount import cohort_counts, cohort_counts_as_of, whole_buckets
from .rollup import CHANGED_MEMBERS_LIMIT, Changes, rollup_mark

# More separate stretches of days changed since the roll-up than this: count it all raw.
LIVE_STRETCHES_LIMIT = 200


def _split(period: Period, dirty_days: set[date]) -> tuple[list[date], list[Period]]:
    """The period's whole buckets no dirty day falls in (by label), and the rest of the
    period as stretches of consecutive buckets clipped to it."""
    dirty = {period.bucket_of(day) for day in dirty_days}
    clean, live = [], []
    for label in period.buckets():
        whole = label >= period.start and period.next_bucket(label) <= period.end + timedelta(1)
        (clean if whole and label not in dirty else live).append(label)
    stretches = [
        Period(max(part.start, period.start), min(part.end, period.end), period.interval)
        for part in whole_buckets(live, period.interval)
    ]
    return clean, stretches


def _by_bucket(
    period: Period,
    dirty_days: Callable[[Changes], set[date] | None],
    stored: Callable[[list[date]], dict],
    live: Callable[[Period], dict],
) -> dict:
    mark = rollup_mark()
    days = dirty_days(Changes(mark)) if mark is not None else None
    if days is None:
        return live(period)
    clean, stretches = _split(period, days)
    if len(stretches) > LIVE_STRETCHES_LIMIT:
        return live(period)
    figures = stored(clean)
    for stretch in stretches:
        figures.update(live(stretch))
    return figures


def buyers_by_bucket(period: Period) -> dict[date, tuple[int, int]]:
    """order_buyers_by_bucket over the period."""

    def stored(labels: list[date]) -> dict:
        rows = BuyerFigure.objects.filter(interval=period.interval, bucket__in=labels)
        return {row.bucket: (row.buyers, row.repeat_buyers) for row in rows}

    def live(part: Period) -> dict:
        return order_selectors.order_buyers_by_bucket(
            since=part.since, until=part.until, interval=part.interval
        )

    return _by_bucket(period, lambda changes: changes.order_days, stored, live)


def spend_by_tier(period: Period) -> dict:
    """orders.selectors.spend_by_tier over the period."""

    def stored(labels: list[date]) -> dict:
        rows = TierSpendFigure.objects.filter(interval=period.interval, bucket__in=labels)
        return {
            (row.bucket, row.tier_id): {
                "orders": row.orders,
                "buyers": row.buyers,
                "spend": row.spend,
                "refunds": row.refunds,
            }
            for row in rows
        }

    def live(part: Period) -> dict:
        return order_selectors.spend_by_tier(
            since=part.since, until=part.until, interval=part.interval
        )

    return _by_bucket(period, lambda changes: changes.spend_days, stored, live)


def rule_figures(period: Period) -> dict:
    """recount.rule_figures over the period."""

    def stored(labels: list[date]) -> dict:
        rows = RuleFigure.objects.filter(interval=period.interval, bucket__in=labels)
        return {
            (row.bucket, row.rule_id): (row.firings, row.members, row.coupon_value, row.points)
            for row in rows
        }

    return _by_bucket(period, lambda changes: changes.firing_days, stored, recount.rule_figures)


def _kept_daily(
    period: Period,
    dirty_days: Callable[[Changes], set[date]],
    kept: Callable[[set[date], date], Iterable[tuple[date, Counter]]],
    live: Callable[[Period], dict[date, Counter]],
) -> tuple[Counter, dict[date, Counter]] | None:
    """Figures kept per day that add up (tier deltas, the ledger's movements): summed over
    the days before the period, and over each of its buckets; read from the roll-up for
    the days nothing recorded since touches (`kept`: those up to a day, but the dirty
    ones), and counted raw (`live`, by day) for the rest. None: no roll-up yet, or too
    many stretches changed since."""
    mark = rollup_mark()
    if mark is None:
        return None
    dirty = {day for day in dirty_days(Changes(mark)) if day <= period.end}
    stretches = whole_buckets(dirty, Interval.DAY)
    if len(stretches) > LIVE_STRETCHES_LIMIT:
        return None
    before: Counter = Counter()
    inside: dict[date, Counter] = defaultdict(Counter)

    def add(day: date, figures: Counter) -> None:
        (before if day < period.start else inside[period.bucket_of(day)]).update(figures)

    for day, figures in kept(dirty, period.end):
        add(day, figures)
    for stretch in stretches:
        for day, figures in live(stretch).items():
            add(day, figures)
    return before, inside


POINTS_MOVES = ("issued", "redeemed", "expired", "reversed")


def points_movements(period: Period) -> tuple[int, dict[date, dict[str, int]]]:
    """All members' points balances summed at the period's start, and the ledger's
    movements in each of its buckets (benefits' points_ledger_total and
    points_movements_by_bucket)."""

    def kept(dirty: set[date], end: date) -> Iterator[tuple[date, Counter]]:
        days = PointsDay.objects.exclude(day__in=dirty).filter(day__lte=end)
        for row in days.values("day", *POINTS_MOVES):
            yield row.pop("day"), Counter(row)

    def live(stretch: Period) -> dict[date, Counter]:
        daily = benefit_selectors.points_movements_by_bucket(
            since=stretch.since, until=stretch.until, interval=Interval.DAY
        )
        return {day: Counter(figures) for day, figures in daily.items()}

    found = _kept_daily(period, lambda changes: changes.points_days, kept, live)
    if found is None:
        opening = benefit_selectors.points_ledger_total(before=period.since)
        moves = benefit_selectors.points_movements_by_bucket(
            since=period.since, until=period.until, interval=period.interval
        )
        return opening, moves
    before, inside = found
    # Days add up: the balance at the start is every earlier day's net movement.
    opening = before["issued"] - sum(before[name] for name in POINTS_MOVES[1:])
    return opening, {b: {name: m[name] for name in POINTS_MOVES} for b, m in inside.items()}


def tier_counts(period: Period) -> tuple[Counter, dict[date, Counter]]:
    """The members on each tier (by id) at the period's start, and how that changed in
    each of its buckets (members_selectors.tier_counts_at and tier_count_deltas)."""

    def kept(dirty: set[date], end: date) -> Iterator[tuple[date, Counter]]:
        deltas = TierDelta.objects.exclude(day__in=dirty).filter(day__lte=end)
        for day, tier_id, members in deltas.values_list("day", "tier_id", "members"):
            yield day, Counter({tier_id: members})

    def live(stretch: Period) -> dict[date, Counter]:
        return member_selectors.tier_count_deltas(
            since=stretch.since, until=stretch.until, interval=Interval.DAY
        )

    found = _kept_daily(period, lambda changes: changes.tier_days, kept, live)
    if found is not None:
        return found  # a day's deltas add up: the counts at the start are the earlier days'
    at_start = member_selectors.tier_counts_at(moment=period.since)
    deltas = member_selectors.tier_count_deltas(
        since=period.since, until=period.until, interval=period.interval
    )
    return at_start, deltas


def cohort_figures(period: Period) -> Counter:
    """(cohort month, offset) → members, for the cohorts of the months of `period` (by
    month, whole months)."""
    months = period.buckets()
    mark = rollup_mark()
    members = Changes(mark).order_members if mark is not None else ()
    if mark is None or len(members) > CHANGED_MEMBERS_LIMIT:
        after = start_of_day(period.next_bucket(months[-1]))
        found = order_selectors.cohort_order_months(since=start_of_day(months[0]), until=after)
        return cohort_counts(found.values())
    counts = _cohorts_kept(months, mark)
    if counts is None:  # a roll-up finished meanwhile: read again as it left them
        return cohort_figures(period)
    # The members who ordered since the roll-up: what they count for now, not then.
    changed = order_selectors.order_months_of_members(member_ids=members)
    counts.update(cohort_counts(member.keys() for member in changed.values()))
    counts.subtract(cohort_counts_as_of(changed, mark))
    return counts


def _cohorts_kept(months: list[date], mark) -> Counter | None:
    """The kept cohort counts, if they are still those of `mark`: they are adjusted by
    each member's change since, which a roll-up finishing in between would count twice."""
    counts = Counter(
        {
            (row.cohort, row.offset): row.members
            for row in CohortFigure.objects.filter(cohort__in=months)
        }
    )
    # Read after the counts: a roll-up commits its counts and its mark together.
    return counts if rollup_mark() == mark else None


def points_by_expiry(
    end: date, rows: Sequence[tuple[str, date | None]], row_of: Callable[[date | None], str]
) -> dict[str, tuple[int, int]]:
    """The points outstanding at the end of the `end` date, as (points, members) per row:
    `rows` names each row with the day it ends before (None: the rest), for lots lapsing
    after `end`; row_of gives the row of a lapsing day (None: points that never lapse)."""
    before = Period(end, end).until
    mark = rollup_mark()
    members = Changes(mark).points_members if mark is not None else set()
    if mark is None or before <= mark or len(members) > CHANGED_MEMBERS_LIMIT:
        return _points_live(benefit_selectors.points_outstanding(before=before), row_of)
    # Members without ledger entries since the roll-up: their lots as it left them.
    lapsing = [When(expires_on__lt=bound, then=Value(name)) for name, bound in rows if bound]
    label = Case(*lapsing, default=Value(rows[-1][0]), output_field=CharField())
    lots = (
        PointsLotLeft.objects.exclude(member_id__in=members)
        .filter(expires_on__gt=end)
        .values(row=label)
        .annotate(points=Sum("points"), members=Count("member_id", distinct=True))
        .order_by()
    )
    found = {row["row"]: (row["points"], row["members"]) for row in lots}
    never = PointsLotLeft.objects.exclude(member_id__in=members).filter(expires_on__isnull=True)
    figures = never.aggregate(points=Sum("points"), members=Count("member_id", distinct=True))
    if figures["points"]:
        found[row_of(None)] = (figures["points"], figures["members"])
    # Those with entries since: counted from their ledger.
    changed = benefit_selectors.points_outstanding(before=before, member_ids=members)
    for name, (points, holders) in _points_live(changed, row_of).items():
        had_points, had_holders = found.get(name, (0, 0))
        found[name] = (had_points + points, had_holders + holders)
    return found


def _points_live(lots, row_of: Callable[[date | None], str]) -> dict[str, tuple[int, int]]:
    points: Counter = Counter()
    holders: dict[str, set[int]] = defaultdict(set)
    for member_id, expires_at, left in lots:
        name = row_of(timezone.localdate(expires_at) if expires_at is not None else None)
        points[name] += left
        holders[name].add(member_id)
    return {name: (points[name], len(holders[name])) for name in points}
