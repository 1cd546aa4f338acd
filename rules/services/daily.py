"""The daily job. For a business day: first the points and tiers that lapsed at its
start (points written off, tiers renewed or moved down), then, for each live birthday,
anniversary, tier-expiring, inactivity and points-expiring rule, the members it may
concern that day are evaluated. Running a day twice changes nothing: what lapsed is
settled once, and firings are unique per occurrence."""

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from itertools import islice

from django.db import transaction

from benefits.models import PointsEntry
from benefits.services.points import points_expire
from core.days import start_of_day
from core.queue import enqueue
from members import journal

from ..engine import clock_triggers
from ..models import CLOCK_TRIGGERS
from ..selectors.live import rules_live
from .evaluation import members_evaluate_clock, members_tier_lapse
from .lifecycle import tier_lapses_due

# Members per transaction: the daily job runs at night, when longer locks hurt nobody.
BATCH = 1000
POINTS_EXPIRY, TIER_LAPSE = "points_expiry", "tier_lapse"


def clock_batches(on_date: date) -> Iterator[tuple[str, list[int]]]:
    """(work, member ids) in batches: the lapses first, then every member a live clock
    rule may concern."""
    yield from _batched(POINTS_EXPIRY, _points_lapsed(on_date))
    yield from _batched(TIER_LAPSE, tier_lapses_due(on_date))
    for trigger in sorted(CLOCK_TRIGGERS):
        rules = rules_live(trigger=trigger)
        member_ids: set[int] = set()
        for days in {rule.trigger_days for rule in rules}:
            member_ids.update(
                clock_triggers.candidates(trigger, days, on_date).values_list("pk", flat=True)
            )
        yield from _batched(trigger, sorted(member_ids))


def _batched(work: str, member_ids: list[int]) -> Iterator[tuple[str, list[int]]]:
    ordered = iter(member_ids)
    while batch := list(islice(ordered, BATCH)):
        yield work, batch


def _points_lapsed(on_date: date) -> list[int]:
    """Members with points lots that lapsed during the night before `on_date` began (a
    missed night is caught up by running its day)."""
    lots = PointsEntry.objects.filter(
        points__gt=0,
        expires_at__gt=start_of_day(on_date - timedelta(days=1)),
        expires_at__lte=start_of_day(on_date),
    )
    return sorted(set(lots.values_list("member_id", flat=True)))


def clock_triggers_enqueue(on_date: date) -> int:
    """Publish one task per batch (the Celery beat path). Returns the members concerned."""
    from ..tasks import evaluate_clock_batch  # tasks import services

    members = 0
    for trigger, member_ids in clock_batches(on_date):
        enqueue(evaluate_clock_batch, trigger, member_ids, on_date.isoformat())
        members += len(member_ids)
    return members


def clock_batch_evaluate(*, trigger: str, member_ids: list[int], on_date: date) -> int:
    """Run a batch, each member in its own transaction. Returns what it did: points
    write-offs, tier changes, or rules fired."""
    if trigger == POINTS_EXPIRY:
        with transaction.atomic():
            locked = journal.members_lock_only(member_ids=member_ids)
            return points_expire(member_ids=locked, at=start_of_day(on_date))
    if trigger == TIER_LAPSE:
        return len(members_tier_lapse(member_ids=member_ids, on_date=on_date))
    return members_evaluate_clock(trigger=trigger, member_ids=member_ids, on_date=on_date)


def clock_triggers_run(on_date: date, progress: Callable[[str, int], None] | None = None) -> dict:
    """Run the day in this process (the `run_daily` command). Returns, per kind of work,
    what it did (see clock_batch_evaluate)."""
    fired: dict[str, int] = {}
    for trigger, member_ids in clock_batches(on_date):
        fired[trigger] = fired.get(trigger, 0) + clock_batch_evaluate(
            trigger=trigger, member_ids=member_ids, on_date=on_date
        )
        if progress:
            progress(trigger, len(member_ids))
    return fired
