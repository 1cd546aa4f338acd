"""The daily job's clock triggers: for each live birthday, anniversary, tier-expiring,
inactivity and points-expiring rule, the members it may concern that day are evaluated.
Running a day twice changes nothing: firings are unique per occurrence."""

from collections.abc import Callable, Iterator
from datetime import date
from itertools import islice

from core.queue import enqueue

from .. import clock
from ..models import CLOCK_TRIGGERS
from .evaluation import member_evaluate, rules_live

BATCH = 500


def clock_batches(on_date: date) -> Iterator[tuple[str, list[int]]]:
    """(trigger, member ids) in batches: every member a live clock rule may concern."""
    for trigger in sorted(CLOCK_TRIGGERS):
        rules = rules_live(trigger=trigger)
        member_ids: set[int] = set()
        for days in {rule.trigger_days for rule in rules}:
            member_ids.update(clock.candidates(trigger, days, on_date).values_list("pk", flat=True))
        ordered = iter(sorted(member_ids))
        while batch := list(islice(ordered, BATCH)):
            yield trigger, batch


def clock_triggers_enqueue(on_date: date) -> int:
    """Publish one task per batch (the Celery beat path). Returns the members concerned."""
    from ..tasks import evaluate_clock_batch  # tasks import services

    members = 0
    for trigger, member_ids in clock_batches(on_date):
        enqueue(evaluate_clock_batch, trigger, member_ids, on_date.isoformat())
        members += len(member_ids)
    return members


def clock_batch_evaluate(*, trigger: str, member_ids: list[int], on_date: date) -> int:
    """Evaluate a batch, each member in its own transaction. Returns the rules fired."""
    return sum(
        len(member_evaluate(member_id=member_id, trigger=trigger, on_date=on_date).fired)
        for member_id in member_ids
    )


def clock_triggers_run(on_date: date, progress: Callable[[str, int], None] | None = None) -> dict:
    """Run the day in this process (the `run_daily` command). Returns firings by trigger."""
    fired: dict[str, int] = {}
    for trigger, member_ids in clock_batches(on_date):
        fired[trigger] = fired.get(trigger, 0) + clock_batch_evaluate(
            trigger=trigger, member_ids=member_ids, on_date=on_date
        )
        if progress:
            progress(trigger, len(member_ids))
    return fired
