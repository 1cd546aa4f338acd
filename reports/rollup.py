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
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from functools import cached_property

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from benefits import report_selectors as benefit_selectors
from members import selectors as member_selectors
from orders import report_selectors as order_selectors
from rules.selectors import reports as rule_selectors

from .models import (
    BuyerFigure,
    CohortFigure,
    PointsDay,
    PointsLotLeft,
    RollupMark,
    RuleFigure,
    TierDelta,
    TierSpendFigure,
)
from .periods import EARLIEST, Interval, Period
from .recount import (
    buyer_rows,
    cohort_counts_as_of,
    cohort_rows,
    delta_rows,
    history,
    lot_rows,
    points_day_rows,
    rule_rows,
    spend_rows,
    whole_buckets,
)

logger = logging.getLogger(__name__)

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

    @cached_property
    def points_days(self) -> set[date]:
        return benefit_selectors.points_days_recorded_since(self.since)

    @cached_property
    def firing_days(self) -> set[date]:
        return rule_selectors.firing_days_since(self.since)


def _insert(model, rows: Iterable) -> int:
    count, batch = 0, []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            model.objects.bulk_create(batch)
            count, batch = count + len(batch), []
    model.objects.bulk_create(batch)
    return count + len(batch)


def _replace_all(model, rows: Iterable) -> None:
    model.objects.all().delete()
    _insert(model, rows)


def _rebuild(recorded_before: datetime, say: Say) -> None:
    for model in (BuyerFigure, TierSpendFigure, RuleFigure, TierDelta):
        model.objects.all().delete()
    for interval in Interval.values:
        if (span := history(interval)) is not None:
            say(f"Orders by {interval}…")
            _insert(BuyerFigure, buyer_rows(span))
            say(f"Spend by tier by {interval}…")
            _insert(TierSpendFigure, spend_rows(span))
            say(f"Rules by {interval}…")
            _insert(RuleFigure, rule_rows(span))
    if (span := history()) is not None:
        say("Tier history…")
        _insert(TierDelta, delta_rows(span))
    say("Points ledger by day…")
    _replace_all(PointsDay, points_day_rows())
    say("Cohorts…")
    _replace_all(CohortFigure, cohort_rows(recorded_before=recorded_before))
    say("Points lots…")
    _replace_all(PointsLotLeft, lot_rows())


# Figures kept per day (they add up over any period); the others are kept per bucket of
# each interval.
DAILY = (TierDelta, PointsDay)


def _recount(model, rows_for: Callable[[Period], list], periods: list[Period]) -> None:
    for period in periods:
        if model in DAILY:
            scope = {"day__gte": period.start, "day__lte": period.end}
        else:
            scope = {
                "interval": period.interval,
                "bucket__gte": period.start,
                "bucket__lte": period.end,
            }
        model.objects.filter(**scope).delete()
        _insert(model, rows_for(period))


def _catch_up(since: datetime, recorded_before: datetime, say: Say) -> None:
    changes = Changes(since)
    for interval in Interval.values:
        bucket_of = Period(EARLIEST, EARLIEST, interval).bucket_of
        buckets = {bucket_of(day) for day in changes.order_days}
        _recount(BuyerFigure, buyer_rows, whole_buckets(buckets, interval))
        if changes.spend_days is None:
            say(f"Many tier changes: spend by tier by {interval} recounted whole.")
            periods = [span] if (span := history(interval)) else []
        else:
            periods = whole_buckets({bucket_of(day) for day in changes.spend_days}, interval)
        _recount(TierSpendFigure, spend_rows, periods)
        buckets = {bucket_of(day) for day in changes.firing_days}
        _recount(RuleFigure, rule_rows, whole_buckets(buckets, interval))
    _recount(TierDelta, delta_rows, whole_buckets(changes.tier_days, Interval.DAY))
    _recount(PointsDay, points_day_rows, whole_buckets(changes.points_days, Interval.DAY))
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
