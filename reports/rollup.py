"""The reports' roll-up: the figures that would otherwise be counted from millions of raw
rows for every request, kept per bucket (models.py). Each run finds what the rows recorded
since the last run touch (orders and refunds, members joining, tier changes, ledger
entries, by their `recorded_at`) and recomputes those buckets whole from the raw rows, so
no order ever waits on a shared counter and a back-dated order is counted where it
belongs. figures.py reads the figures back, and the raw rows for whatever changed since.
"""

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, timedelta
from functools import cached_property

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from benefits import report_selectors as benefit_selectors
from members import selectors as member_selectors
from orders import report_selectors as order_selectors

from .models import (
    BuyerFigure,
    CohortFigure,
    PointsLotLeft,
    RollupMark,
    TierDelta,
    TierSpendFigure,
)
from .periods import EARLIEST, Interval, Period

logger = logging.getLogger(__name__)

COHORT_MONTHS = 12
# More changed members than this and reading their rows one set at a time costs more than
# recounting everything.
CHANGED_MEMBERS_LIMIT = 20_000
BATCH = 10_000

Say = Callable[[str], None]


def _quiet(message: str) -> None:
    logger.info(message)


class Changes:
    """What the rows recorded at or after `since` touch, each read when first asked for."""

    def __init__(self, since: datetime) -> None:
        self.since = since

    @cached_property
    def order_days(self) -> set[date]:
        return order_selectors.order_days_recorded_since(self.since)

    @cached_property
    def tier_changes(self) -> dict[int, datetime | None]:
        return member_selectors.tier_changes_recorded_since(self.since)

    @cached_property
    def spend_days(self) -> set[date] | None:
        """Days of orders and refunds recorded since, and of the orders a tier change
        recorded since changed the tier held at (those placed after it; all the member's
        for their first change); None: too many to list, recount them all."""
        if len(self.tier_changes) > CHANGED_MEMBERS_LIMIT:
            return None
        refunds = order_selectors.refund_days_recorded_since(self.since)
        held = order_selectors.order_days_held_since(self.tier_changes)
        return self.order_days | refunds | held

    @cached_property
    def tier_days(self) -> set[date]:
        """Days members joined on and days tier changes count on, recorded since; and the
        joining day of a member whose first change is among them (it names the tier they
        joined on)."""
        firsts = [member for member, moment in self.tier_changes.items() if moment is None]
        return (
            member_selectors.member_join_days_recorded_since(self.since)
            | member_selectors.tier_change_days_recorded_since(self.since)
            | member_selectors.member_join_days(firsts)
        )

    @cached_property
    def order_members(self) -> set[int]:
        return order_selectors.order_member_ids_recorded_since(self.since)

    @cached_property
    def points_members(self) -> set[int]:
        return benefit_selectors.points_member_ids_recorded_since(self.since)


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


# Each figure's rows for a period of whole buckets, computed from the raw rows.


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


def _insert(model, rows: Iterable) -> int:
    count, batch = 0, []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            model.objects.bulk_create(batch)
            count, batch = count + len(batch), []
    model.objects.bulk_create(batch)
    return count + len(batch)


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


def _replace_all(model, rows: Iterable) -> None:
    model.objects.all().delete()
    _insert(model, rows)


def _rebuild(recorded_before: datetime, say: Say) -> None:
    for model in (BuyerFigure, TierSpendFigure, TierDelta):
        model.objects.all().delete()
    for interval in Interval.values:
        if (span := history(interval)) is not None:
            say(f"Orders by {interval}…")
            _insert(BuyerFigure, buyer_rows(span))
            say(f"Spend by tier by {interval}…")
            _insert(TierSpendFigure, spend_rows(span))
    if (span := history()) is not None:
        say("Tier history…")
        _insert(TierDelta, delta_rows(span))
    say("Cohorts…")
    _replace_all(CohortFigure, cohort_rows(recorded_before=recorded_before))
    say("Points lots…")
    _replace_all(PointsLotLeft, lot_rows())


def _recount(model, rows_for: Callable[[Period], list], periods: list[Period], key: str) -> None:
    for period in periods:
        scope = {f"{key}__gte": period.start, f"{key}__lte": period.end}
        if model is not TierDelta:
            scope["interval"] = period.interval
        model.objects.filter(**scope).delete()
        _insert(model, rows_for(period))


def _catch_up(since: datetime, recorded_before: datetime, say: Say) -> None:
    changes = Changes(since)
    for interval in Interval.values:
        bucket_of = Period(EARLIEST, EARLIEST, interval).bucket_of
        buckets = {bucket_of(day) for day in changes.order_days}
        _recount(BuyerFigure, buyer_rows, whole_buckets(buckets, interval), "bucket")
        if changes.spend_days is None:
            say(f"Many tier changes: spend by tier by {interval} recounted whole.")
            periods = [span] if (span := history(interval)) else []
        else:
            periods = whole_buckets({bucket_of(day) for day in changes.spend_days}, interval)
        _recount(TierSpendFigure, spend_rows, periods, "bucket")
    _recount(TierDelta, delta_rows, whole_buckets(changes.tier_days, Interval.DAY), "day")
    if len(changes.order_members) > CHANGED_MEMBERS_LIMIT:
        say("Many members ordered: cohorts recounted whole.")
        _replace_all(CohortFigure, cohort_rows(recorded_before=recorded_before))
    else:
        _cohorts_catch_up(changes.order_members, since, recorded_before)
    if len(changes.points_members) > CHANGED_MEMBERS_LIMIT:
        say("Many ledger entries: points lots recounted whole.")
        _replace_all(PointsLotLeft, lot_rows())
    else:
        PointsLotLeft.objects.filter(member_id__in=changes.points_members).delete()
        _insert(PointsLotLeft, lot_rows(changes.points_members))


def _cohorts_catch_up(member_ids: set[int], since: datetime, recorded_before: datetime) -> None:
    """Cohort counts are sums over members: take out what the changed members counted
    for as of the last run, and add what they count for now."""
    months = order_selectors.order_months_of_members(member_ids=member_ids)
    change = cohort_counts_as_of(months, recorded_before)
    change.subtract(cohort_counts_as_of(months, since))
    touched = {cohort for (cohort, _offset), members in change.items() if members}
    if not touched:
        return
    counts = Counter(
        {
            (row.cohort, row.offset): row.members
            for row in CohortFigure.objects.filter(cohort__in=touched)
        }
    )
    counts.update(change)
    CohortFigure.objects.filter(cohort__in=touched).delete()
    _insert(
        CohortFigure,
        (
            CohortFigure(cohort=cohort, offset=offset, members=members)
            for (cohort, offset), members in sorted(counts.items())
            if cohort in touched and members
        ),
    )


def reports_rollup(
    *, rebuild: bool = False, lag: timedelta | None = None, say: Say = _quiet
) -> RollupMark:
    """Bring the figures up to what was recorded until `lag` ago (default
    TIERFLOW_REPORTS_ROLLUP_LAG_SECONDS; on PostgreSQL never after the start of a
    transaction still open), or recount them all (`rebuild`, and the first run). One run
    at a time: a second waits for the first, then has little left to do."""
    if lag is None:
        lag = timedelta(seconds=settings.TIERFLOW_REPORTS_ROLLUP_LAG_SECONDS)
    started = time.perf_counter()
    with transaction.atomic():
        RollupMark.objects.get_or_create(pk=1)
        mark = RollupMark.objects.select_for_update().get(pk=1)
        recorded_before = min(
            filter(None, [timezone.now() - lag, _oldest_open_transaction()]),
        )
        if rebuild or mark.recorded_before is None:
            _rebuild(recorded_before, say)
        elif recorded_before > mark.recorded_before:
            _catch_up(mark.recorded_before, recorded_before, say)
        else:
            return mark
        mark.recorded_before = recorded_before
        mark.finished_at = timezone.now()
        mark.seconds = time.perf_counter() - started
        mark.save()
    return mark


def _oldest_open_transaction() -> datetime | None:
    """When the oldest transaction of another session began (PostgreSQL): rows it writes
    are stamped after that, but are seen only once it commits, so the mark stays before
    it however long it runs."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(xact_start) FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def rollup_mark() -> datetime | None:
    """What the figures cover: rows recorded before this moment (None: never rolled up)."""
    return RollupMark.objects.filter(pk=1).values_list("recorded_before", flat=True).first()
