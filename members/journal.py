"""A member's journal: the events the rules are evaluated for, numbered in the order they
were recorded (core.models.Evaluable), and how far the evaluation has got.

Whoever records an event holds the member row lock, takes the next number, and bumps the
member's `event_seq` in the same UPDATE that changes its totals; `pending_since` says the
member has events waiting. An evaluation locks the members it takes (always in id
order), evaluates their waiting events in order, and brings `evaluated_seq` up to
`event_seq` for the whole batch in one statement. The receivers of `events_recorded`
(the rules app) publish the evaluation once the recording commits."""

from datetime import timedelta
from typing import Any

from django.db.models import F, Subquery, Value
from django.db.models.functions import Coalesce
from django.dispatch import Signal
from django.utils import timezone

from .models import Member

# Sent with `member_id` once an event is numbered; receivers act on commit.
events_recorded = Signal()

# The claim looks among this many times more waiting members than it takes, so that
# concurrent evaluations, each skipping the members another holds, still fill batches.
CLAIM_SPREAD = 4


def member_event_recorded(*, member: Member, seq: int, **changes: Any) -> None:
    """Record that the locked `member`'s event `seq` (their `event_seq` + 1) waits for
    evaluation, together with `changes` to their row (relative updates of the totals),
    in one UPDATE."""
    now = timezone.now()
    Member.objects.filter(pk=member.pk).update(
        event_seq=seq,
        pending_since=Coalesce(F("pending_since"), Value(now)),
        updated_at=now,
        **changes,
    )
    member.event_seq = seq
    member.pending_since = member.pending_since or now
    events_recorded.send(sender=Member, member_id=member.pk)


def members_evaluation_requested(*, member_ids: list[int]) -> None:
    """Ask again for the members' waiting events to be evaluated (an operator's "evaluate
    now"): the receivers publish an evaluation after commit."""
    for member_id in member_ids:
        events_recorded.send(sender=Member, member_id=member_id)


def members_lock(*, member_ids: list[int]) -> list[Member]:
    """Lock the members (SELECT ... FOR UPDATE, in id order, waiting for other holders),
    then read them with their tiers: the lock first, the join after (see member_lock)."""
    return _read(members_lock_only(member_ids=member_ids))


def members_lock_only(*, member_ids: list[int]) -> list[int]:
    """Lock the members as members_lock does, without reading them: the ids locked."""
    return list(
        Member.objects.select_for_update()
        .filter(pk__in=member_ids)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def members_lock_waiting(*, limit: int) -> list[Member]:
    """Lock up to `limit` members with events waiting, among the longest-waiting ones,
    skipping those another evaluation holds (it will evaluate them), in id order."""
    longest_waiting = (
        Member.objects.filter(pending_since__lte=timezone.now())
        .order_by("pending_since", "pk")
        .values("pk")[: limit * CLAIM_SPREAD]
    )
    locked = list(
        Member.objects.select_for_update(skip_locked=True)
        # Checked again on the row as locked: another evaluation may have just finished.
        .filter(pk__in=Subquery(longest_waiting), pending_since__isnull=False)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    return _read(locked)


def _read(member_ids: list[int]) -> list[Member]:
    if not member_ids:
        return []
    return list(Member.objects.select_related("tier").filter(pk__in=member_ids).order_by("pk"))


def members_evaluated(*, member_ids: list[int]) -> None:
    """Mark every event of the locked members evaluated, in one statement."""
    Member.objects.filter(pk__in=member_ids).update(
        evaluated_seq=F("event_seq"), pending_since=None
    )


def member_evaluated_up_to(*, member: Member, seq: int) -> None:
    """Mark the locked member's events evaluated up to `seq` (later ones still wait)."""
    waiting = seq < member.event_seq
    member.evaluated_seq = seq
    member.pending_since = member.pending_since if waiting else None
    Member.objects.filter(pk=member.pk).update(
        evaluated_seq=seq, pending_since=member.pending_since
    )


def member_waits_again(*, member_id: int, after: timedelta) -> None:
    """Put a member whose evaluation failed at the back of the line, and out of it for
    `after` (no batch takes a member whose `pending_since` is still to come)."""
    Member.objects.filter(pk=member_id, pending_since__isnull=False).update(
        pending_since=timezone.now() + after
    )


def members_waiting(*, older_than: timedelta | None = None) -> int:
    """Members with events waiting (for longer than `older_than`, if given)."""
    waiting = Member.objects.filter(pending_since__isnull=False)
    if older_than is not None:
        waiting = waiting.filter(pending_since__lt=timezone.now() - older_than)
    return waiting.count()
