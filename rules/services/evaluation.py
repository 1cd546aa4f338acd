"""Evaluating members: taking a batch of those with waiting events, one member at once
(admin actions, tests), the daily job's batches and an operator's "apply to existing
members" chunks. Each locks its members in id order, runs a batch (services.batch) and
marks what it evaluated in the same transaction, so a task that runs twice changes
nothing the second time.

Publishing is coalesced: every recorded event asks for an evaluation after commit, but
while one task is already on its way no other is published, and a task whose batch came
out full publishes the next before it starts work, so a backlog is drained by every
worker in batches rather than one task per event."""

import logging
import time
from datetime import date, timedelta

from django.conf import settings
from django.db import OperationalError, transaction

from core.queue import enqueue, enqueue_coalesced
from members import journal
from members.models import EngagementEvent, TierChange
from orders.models import Order, Refund

from ..models import CLOCK_TRIGGERS, Rule, RuleFiring, RuleJob, Trigger
from .batch import Batch, Evaluated

logger = logging.getLogger(__name__)

SUBJECTS = {
    Trigger.ORDER_PAID: Order,
    Trigger.ORDER_REFUNDED: Refund,
    Trigger.ENGAGEMENT: EngagementEvent,
    Trigger.TIER_CHANGED: TierChange,
}


def waiting_evaluate(*, limit: int | None = None) -> tuple[Evaluated, bool]:
    """Evaluate a batch of the members with waiting events (at most `limit`, default
    TIERFLOW_EVALUATION_BATCH). Returns what it did and whether the batch was full, so
    that more may be waiting."""
    limit = limit or settings.TIERFLOW_EVALUATION_BATCH
    members: list = []
    try:
        with transaction.atomic():
            members = journal.members_lock_waiting(limit=limit)
            if not members:
                return Evaluated(skipped=True), False
            evaluated = Batch(members).run()
            journal.members_evaluated(member_ids=[member.pk for member in members])
    except OperationalError:
        raise  # a lock timeout, a deadlock, a lost connection: the task retries
    except Exception:
        return _one_by_one([member.pk for member in members]), True
    _log(evaluated, len(members))
    return evaluated, len(members) == limit


def _one_by_one(member_ids: list[int]) -> Evaluated:
    """A batch failed: evaluate its members one at a time, so that a member whose
    evaluation keeps failing (bad data, a bug) holds up nobody else. That member goes to
    the back of the line, out of it for the sweeper's grace period, and is tried again
    then; the error is logged."""
    logger.exception("a batch of %s members failed; evaluating them one by one", len(member_ids))
    done = Evaluated()
    for member_id in member_ids:
        try:
            evaluated = member_evaluate(member_id=member_id)
        except OperationalError:
            raise
        except Exception:
            logger.exception("member #%s: evaluation failed; trying again later", member_id)
            journal.member_waits_again(
                member_id=member_id,
                after=timedelta(seconds=settings.TIERFLOW_PENDING_GRACE_SECONDS),
            )
            continue
        done.fired += evaluated.fired
        done.events += evaluated.events
    return done


def waiting_drain(*, seconds: float) -> int:
    """What an evaluation task does: batch after batch while members wait, for at most
    about `seconds`. A full batch first publishes another task, so that idle workers join
    in; a drain stopped by the clock publishes one to carry on. Returns events done."""
    deadline = time.monotonic() + seconds
    done = 0
    while True:
        evaluated, more = waiting_evaluate()
        done += evaluated.events
        if not more:
            return done
        evaluation_enqueue()
        if time.monotonic() > deadline:
            return done


def member_evaluate(
    *,
    member_id: int,
    trigger: str | None = None,
    subject_id: int | None = None,
    on_date: date | None = None,
) -> Evaluated:
    """Evaluate one member now: their waiting events (only up to and including the
    given subject, an order, refund, engagement or tier change, or joining), or a clock
    trigger on `on_date`. Safe to run twice: what was evaluated is skipped."""
    with transaction.atomic():
        (member,) = journal.members_lock(member_ids=[member_id])
        if trigger in CLOCK_TRIGGERS:
            evaluated = Batch([member], clock=(trigger, on_date)).run()
            journal.members_evaluated(member_ids=[member.pk])
            return evaluated
        up_to = member.event_seq
        if trigger == Trigger.MEMBER_JOINED:
            up_to = 1
        elif subject_id is not None:
            up_to = SUBJECTS[trigger].objects.values_list("seq", flat=True).get(pk=subject_id)
        if up_to <= member.evaluated_seq:
            return Evaluated(skipped=True)
        evaluated = Batch([member], up_to=up_to).run()
        journal.member_evaluated_up_to(member=member, seq=up_to)
    _log(evaluated, 1)
    return evaluated


def members_evaluate_clock(*, trigger: str, member_ids: list[int], on_date: date) -> int:
    """The daily job's batch for one clock trigger: returns the rules fired."""
    with transaction.atomic():
        members = journal.members_lock(member_ids=member_ids)
        evaluated = Batch(members, clock=(trigger, on_date)).run()
        journal.members_evaluated(member_ids=[member.pk for member in members])
    _log(evaluated, len(members))
    return len(evaluated.fired)


def members_tier_lapse(*, member_ids: list[int], on_date: date) -> list[TierChange]:
    """The daily job's tier lapses for a batch: each member's waiting events first, then
    their renewal or move down (period by period if far behind), whose tier_changed rules
    are evaluated in the same transaction. Returns the changes made."""
    with transaction.atomic():
        members = journal.members_lock(member_ids=member_ids)
        batch = Batch(members, lapse=on_date)
        evaluated = batch.run()
        journal.members_evaluated(member_ids=[member.pk for member in members])
    _log(evaluated, len(members))
    return batch.lapsed


def members_apply_rule(*, member_ids: list[int], rule: Rule, job: RuleJob) -> list[RuleFiring]:
    """Fire `rule` (with its conditions and actions prefetched) for the members who
    qualify now, outside its trigger: an operator's "apply to existing members" job. The
    firing limit still holds (a once-only rule a member already had does not fire
    again)."""
    with transaction.atomic():
        members = journal.members_lock(member_ids=member_ids)
        job.rule = rule
        evaluated = Batch(members, job=job).run()
        journal.members_evaluated(member_ids=[member.pk for member in members])
    return [firing for firing in evaluated.fired if firing.job_id == job.pk]


def _log(evaluated: Evaluated, members: int) -> None:
    if evaluated.fired:
        codes = ", ".join(sorted({firing.rule.code for firing in evaluated.fired}))
        logger.info(
            "%s members, %s events: fired %s", members, evaluated.events, codes or "nothing"
        )


def evaluation_enqueue() -> bool:
    """Ask for the waiting members to be evaluated (after commit), unless a task is
    already on its way."""
    from ..tasks import evaluate_waiting  # tasks import services

    return enqueue_coalesced(evaluate_waiting)


def waiting_enqueue(*, older_than: timedelta) -> int:
    """The sweeper: if members have waited longer than `older_than` (their task was never
    published, or was lost with its worker), publish an evaluation; the batches that
    follow pick up everything waiting, longest-waiting first. Returns members waiting."""
    from ..tasks import evaluate_waiting

    waiting = journal.members_waiting(older_than=older_than)
    if waiting:
        enqueue(evaluate_waiting)
    return waiting
