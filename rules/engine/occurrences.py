"""An occurrence: what happened to a member that the rules are asked about, and the key
that makes a firing unique for it under each firing limit."""

from dataclasses import dataclass, field
from datetime import date, datetime

from django.utils import timezone

from core.models import Evaluable
from members.models import EngagementEvent, Member, TierChange
from orders.models import Order, Refund

from ..models import CLOCK_TRIGGERS, FiringLimit, Rule, RuleFiring
from . import clock_triggers


@dataclass(frozen=True)
class Occurrence:
    """What happened to the member that the rules are asked about."""

    trigger: str
    key: str  # names this happening, for rules that fire every time
    day: date  # its business date, for rules that fire once per period
    order: Order | None = None
    refund: Refund | None = None
    event: EngagementEvent | None = None
    tier_change: TierChange | None = None
    subject: Evaluable | Member | None = None  # the event, or the member for joining
    by_job: bool = False  # an operator's "apply to existing members", not the trigger
    # When the facts are judged: the event's own moment (see happened_at); the end of the
    # day for a catch-up clock run; now for an operator's job.
    at: datetime = field(default_factory=timezone.now)
    # The member's event this is, or came right after: facts are as they stood then.
    seq: int = 0

    @property
    def event_specific(self) -> bool:
        """Whether its key names one event, which is evaluated only once."""
        return self.subject is not None or self.tier_change is not None


def period_key(limit: str, day: date) -> str | None:
    """The key of a firing limited to once per period, for an occurrence on `day`."""
    if limit == FiringLimit.ONCE:
        return "once"
    if limit == FiringLimit.PER_DAY:
        return f"day:{day.isoformat()}"
    if limit == FiringLimit.PER_WEEK:
        year, week, _ = day.isocalendar()
        return f"week:{year}-W{week:02d}"
    if limit == FiringLimit.PER_MONTH:
        return f"month:{day:%Y-%m}"
    if limit == FiringLimit.PER_YEAR:
        return f"year:{day.year}"
    return None


def occurrence_key(rule: Rule, member: Member, occurrence: Occurrence) -> str:
    """What makes a firing unique, by the rule's firing limit."""
    key = period_key(rule.firing_limit, occurrence.day)
    if key is not None:
        return key
    if rule.trigger in CLOCK_TRIGGERS and not occurrence.by_job:
        # Every time the clock trigger happens: once per birthday, per lapse date, …
        return clock_triggers.clock_occurrence_key(
            rule.trigger, rule.trigger_days, member, occurrence.day
        )
    return occurrence.key


def firing_block(rule: Rule, member: Member, key: str) -> str:
    """Why the rule cannot fire for this occurrence, or "" if it can: the engine and the
    admin's "test on a member" ask the same question."""
    if RuleFiring.objects.filter(rule=rule, member=member, occurrence_key=key).exists():
        return "already fired"
    if rule.budget is not None and RuleFiring.objects.filter(rule=rule).count() >= rule.budget:
        return "budget spent"
    return ""
