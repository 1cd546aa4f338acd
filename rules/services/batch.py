"""Evaluating a batch of members: the one path by which rules take effect.

In the caller's transaction, holding the members' row locks (taken in id order): first
each member's waiting events, in the order they were recorded, each judged on the member
as they stood right after it (selectors.history); then, for the daily job or an
operator's job, the clock trigger or the rule being applied, on the member as they are.

For each event: its base effects (an order earns points and growth points, an engagement
growth points, a refund takes back its share and re-checks the tier), then each live
rule of its trigger in priority order; a rule that matches records a RuleFiring, unique
per (rule, member, occurrence), and applies its actions through the owning apps'
services. A tier change that makes is evaluated for the tier_changed rules at once, in
the same transaction. Rules, the earning policy and each fact source are read once per
batch; the base effects' ledger entries are written in bulk.
"""

import copy
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.utils import timezone

from benefits.models import EarningPolicy
from benefits.services import growth as growth_services
from benefits.services import points as points_services
from benefits.services import reversals
from core.days import start_of_day
from members import services as member_services
from members.models import Member, Tier, TierChange
from notifications.services.outbox import notifications_save

from ..engine import clock_triggers, evaluate
from ..engine.facts import PERIOD_FACTS, FactSource, Need, facts_compute
from ..engine.occurrences import Occurrence, occurrence_key, period_key
from ..models import CLOCK_TRIGGERS, ClockOccurrence, Rule, RuleFiring, RuleJob, Trigger
from ..selectors.history import AsOf, History, Waiting, waiting_events
from ..selectors.live import rule_actions, rules_active
from . import lifecycle
from .effects import actions_apply, facts_touched, messages_only

logger = logging.getLogger(__name__)

# A tier_changed rule that moves the member again is evaluated again, this many deep.
MAX_TIER_CHAIN = 5


@dataclass
class Evaluated:
    fired: list[RuleFiring] = field(default_factory=list)
    events: int = 0  # events evaluated
    skipped: bool = False  # nothing was left to evaluate


def occurrence_of(item: Waiting) -> Occurrence:
    """The occurrence a waiting event is, judged at the event's own moment."""
    subject = item.subject
    at = subject.happened_at
    day = timezone.localdate(at)
    common = {"day": day, "at": at, "seq": item.seq, "subject": subject}
    if item.trigger == Trigger.ORDER_PAID:
        return Occurrence(item.trigger, f"order:{subject.pk}", order=subject, **common)
    if item.trigger == Trigger.ORDER_REFUNDED:
        return Occurrence(
            item.trigger, f"refund:{subject.pk}", order=subject.order, refund=subject, **common
        )
    if item.trigger == Trigger.ENGAGEMENT:
        return Occurrence(item.trigger, f"event:{subject.pk}", event=subject, **common)
    if item.trigger == Trigger.TIER_CHANGED:
        return Occurrence(item.trigger, f"tier_change:{subject.pk}", tier_change=subject, **common)
    return Occurrence(item.trigger, "joined", **common)


def clock_moment(on_date: date) -> datetime:
    """When a clock trigger of `on_date` is judged: now, or the end of that day for a
    catch-up run."""
    end_of_day = start_of_day(on_date + timedelta(days=1))
    return min(timezone.now(), end_of_day - timedelta(microseconds=1))


class Batch:
    """One batch evaluation over locked members. `up_to` evaluates a single member's
    events only up to that number; `clock` is (trigger, day) for the daily job; `job` an
    operator's rule job applying its rule."""

    def __init__(
        self,
        members: list[Member],
        *,
        up_to: int | None = None,
        clock: tuple[str, date] | None = None,
        job: RuleJob | None = None,
        lapse: date | None = None,
    ) -> None:
        self.members, self.clock, self.job, self.lapse = members, clock, job, lapse
        self.lapsed: list[TierChange] = []
        self.rules = rules_active()
        self.policy = EarningPolicy.current()
        waiting = waiting_events(members)
        self.todo = {
            member_id: [item for item in events if up_to is None or item.seq <= up_to]
            for member_id, events in waiting.items()
        }
        self.moments = {
            (item.trigger, item.seq, member_id): occurrence_of(item)
            for member_id, events in self.todo.items()
            for item in events
        }
        day = clock[1] if clock else lapse
        self.now = clock_moment(day) if day else timezone.now()
        at = [occurrence.at for occurrence in self.moments.values()] or [self.now]
        if clock or job or lapse:
            at.append(self.now)
        self.points_entries, self.growth_entries = [], []
        self.firings: list[RuleFiring] = []
        self.messages: list = []
        self.history = History(
            members,
            waiting,
            span=(min(at), max(at)),
            horizon=self._horizon(min(at)),
            before_load=self.flush,
        )
        self.fired_keys: set[tuple[int, int, str]] | None = None
        self.checked_keys: set[str] = set()
        self.budgets: dict[int, int] = {}
        self.evaluated = Evaluated()

    def _horizon(self, earliest: datetime) -> datetime:
        """How far back the rules' windows and tier periods reach, for loading rows."""
        needs = {need for rules in self.rules.values() for need in evaluate.fact_needs(rules)}
        days = [need.days for need in needs if need.days]
        horizon = earliest - timedelta(days=max(days, default=0))
        if self.lapse or any(need.fact in PERIOD_FACTS for need in needs):
            starts = [m.tier_period_start or m.tier_since or m.joined_at for m in self.members]
            horizon = min([horizon, *starts])
        return horizon

    # --- the walk ------------------------------------------------------------------

    def run(self) -> Evaluated:
        clock_done = self._clock_done() if self.clock else set()
        for member in self.members:
            for item in self.todo[member.pk]:
                self._event(member, self.moments[(item.trigger, item.seq, member.pk)])
            if self.clock and member.pk not in clock_done:
                self._clock(member, *self.clock)
            if self.job:
                self._apply(member, self.job)
        if self.lapse:
            self._lapse_all(self.lapse)
        self.flush()
        if self.clock:
            trigger, day = self.clock
            ClockOccurrence.objects.bulk_create(
                ClockOccurrence(member=member, trigger=trigger, day=day)
                for member in self.members
                if member.pk not in clock_done
            )
        self.evaluated.skipped = not self.evaluated.events and not (
            self.clock or self.job or self.lapse
        )
        return self.evaluated

    def _event(self, member: Member, occurrence: Occurrence) -> None:
        self.evaluated.events += 1
        if occurrence.tier_change is not None and _superseded(occurrence.tier_change):
            return  # a later move is the news: its facts describe the member as they are
        view = AsOf(self.history, member.pk, occurrence.seq, occurrence.at)
        changes = self._base_effects(member, occurrence, view)
        changes += self._fire(member, occurrence, view, self._live(member, occurrence))
        self._tier_changed(member, occurrence, view, changes)

    def _clock(self, member: Member, trigger: str, on_date: date) -> None:
        occurrence = Occurrence(
            trigger, f"{trigger}:{on_date}", on_date, at=self.now, seq=member.event_seq
        )
        view = AsOf(self.history, member.pk, member.event_seq, self.now)
        changes = self._fire(member, occurrence, view, self._live(member, occurrence))
        self._tier_changed(member, occurrence, view, changes)

    def _apply(self, member: Member, job: RuleJob) -> None:
        rule = job.rule
        if not rule.is_live(self.now):
            return
        occurrence = Occurrence(
            rule.trigger,
            f"job:{job.pk}",
            timezone.localdate(self.now),
            at=self.now,
            seq=member.event_seq,
            by_job=True,
        )
        view = AsOf(self.history, member.pk, member.event_seq, self.now)
        changes = self._fire(member, occurrence, view, [rule])
        self._tier_changed(member, occurrence, view, changes)

    def _lapse_all(self, on_date: date) -> None:
        """The daily job's renewals and moves down: decided for each member from the
        batch's rows, saved for all at once, then each member's tier_changed rules."""
        tiers = list(Tier.objects.all())
        moves = {}
        for member in self.members:
            view = AsOf(self.history, member.pk, member.event_seq, self.now)
            moves[member.pk] = lifecycle.member_tier_lapse(
                member=member, on_date=on_date, figures=view.period_figures, tiers=tiers
            )
        moved = [member for member in self.members if moves[member.pk]]
        self.lapsed = [change for member in moved for change in moves[member.pk]]
        member_services.tier_changes_save(changes=self.lapsed, members=moved)
        for member in moved:
            cause = Occurrence(
                Trigger.TIER_CHANGED, "lapse", on_date, at=self.now, seq=member.event_seq
            )
            view = AsOf(self.history, member.pk, member.event_seq, self.now)
            self._tier_changed(member, cause, view, moves[member.pk])

    def _tier_changed(self, member, cause: Occurrence, view: AsOf, changes, depth=0) -> None:
        """Evaluate the tier_changed rules for the latest of the moves just made (a catch-up
        that moved the member several times notifies only where they landed)."""
        if not changes:
            return
        if depth >= MAX_TIER_CHAIN:
            logger.warning("member #%s: tier_changed rules keep moving the tier", member.pk)
            return
        change = changes[-1]
        occurrence = Occurrence(
            Trigger.TIER_CHANGED,
            f"tier_change:{change.pk}",
            timezone.localdate(change.created_at),
            tier_change=change,
            at=cause.at,
            seq=cause.seq,
        )
        more = self._fire(member, occurrence, view, self._live(member, occurrence))
        self._tier_changed(member, occurrence, view, more, depth + 1)

    def _live(self, member: Member, occurrence: Occurrence) -> list[Rule]:
        return [
            rule
            for rule in self.rules.get(occurrence.trigger, [])
            if rule.is_live(occurrence.at) and _rule_applies(rule, member, occurrence)
        ]

    # --- effects -------------------------------------------------------------------

    def _base_effects(self, member: Member, occurrence: Occurrence, view: AsOf) -> list:
        """What happens whatever the rules say; returns the tier changes it made."""
        at = occurrence.at
        if occurrence.trigger == Trigger.ORDER_PAID:
            order = occurrence.order
            for entry in points_services.order_points_entries(
                member=member, order=order, policy=self.policy, at=at
            ):
                self._points(member, entry)
            entry = growth_services.order_growth_entry(
                member=member, order=order, policy=self.policy, at=at
            )
            if entry is not None:
                self._growth(member, entry)
        elif occurrence.trigger == Trigger.ORDER_REFUNDED:
            self.flush()
            # The order as it stood right after this refund: later refunds are still to come.
            order = copy.copy(occurrence.order)
            order.refunded_amount = self.history.refunded(
                order.pk, order.refunded_amount, occurrence.seq
            )
            reversals.order_reversals_apply(member=member, order=order, at=at)
            self.history.reload(member.pk, {"points_balance", "growth_points"})
            change = lifecycle.tier_recheck_after_refund(
                member=member, order=order, data=view, at=at
            )
            return [change] if change else []
        elif occurrence.trigger == Trigger.ENGAGEMENT:
            if occurrence.event.kind.daily_cap is not None:
                self.flush()  # the cap counts the saved entries
            entry = growth_services.engagement_growth_entry(
                member=member, event=occurrence.event, at=at
            )
            if entry is not None:
                self._growth(member, entry)
        return []

    def _points(self, member: Member, entry) -> None:
        self.points_entries.append(entry)
        if self.history.has_points:
            self.history.points(member.pk).add(entry.points, entry.expires_at)

    def _growth(self, member: Member, entry) -> None:
        self.growth_entries.append(entry)
        if self.history.has_growth:
            self.history.growth(member.pk).add(entry.points, entry.created_at)

    def flush(self) -> None:
        """Write what was held back for bulk: the ledger entries of base effects, and the
        firings that only send messages with their messages; one INSERT for each kind."""
        if self.points_entries:
            points_services.points_entries_create(self.points_entries)
            self.points_entries = []
        if self.growth_entries:
            growth_services.growth_entries_create(self.growth_entries)
            self.growth_entries = []
        if self.firings:
            RuleFiring.objects.bulk_create(self.firings)
            notifications_save(self.messages)
            self.firings, self.messages = [], []

    def _fire(self, member, occurrence: Occurrence, view: AsOf, rules: list[Rule]) -> list:
        """Fire the matching rules in order; returns the tier changes they made."""
        if not rules:
            return []
        needs = evaluate.fact_needs(rules)
        facts = facts_compute(_source(member, occurrence, view, needs))
        changes: list[TierChange] = []
        for rule in rules:
            if not evaluate.rule_evaluate(rule, facts).matched:
                continue
            actions = rule_actions(rule)
            in_bulk = messages_only(actions)
            firing = self._firing_record(rule, member, occurrence, facts, save=not in_bulk)
            if firing is None:
                continue
            if not in_bulk:
                self.flush()  # what the actions read and refer to is saved
            effects = actions_apply(
                firing=firing,
                actions=actions,
                member=member,
                order=occurrence.order,
                policy=self.policy,
                at=occurrence.at,
                send_notifications=self.job is None or self.job.send_notifications,
                save=not in_bulk,
            )
            self.evaluated.fired.append(firing)
            if in_bulk:
                self.firings.append(firing)
                self.messages += effects.messages
            else:
                self.history.reload(member.pk, facts_touched(actions))
                changes += effects.tier_changes
            if rule.stop_processing:
                break
            # The next rule sees the tier, points and tags this one just gave.
            facts = facts_compute(_source(member, occurrence, view, needs))
        return changes

    def _firing_record(self, rule, member, occurrence, facts, save=True) -> RuleFiring | None:
        """Record the firing (built only, without `save`, for flush to write in bulk), or
        return None if this occurrence already fired or the rule's budget is spent. The
        member lock makes the checks reliable; the unique constraint backs them up."""
        key = occurrence_key(rule, member, occurrence)
        if self._already_fired(rule, member, occurrence, key):
            return None
        if rule.budget is not None:
            if rule.pk not in self.budgets:
                # The rule row lock (taken after the members', as always) queues concurrent
                # firings of a budgeted rule, so its count of firings cannot be overtaken.
                Rule.objects.select_for_update().filter(pk=rule.pk).exists()
                self.budgets[rule.pk] = RuleFiring.objects.filter(rule=rule).count()
            if self.budgets[rule.pk] >= rule.budget:
                return None
            self.budgets[rule.pk] += 1
        firing = RuleFiring(
            rule=rule,
            member=member,
            occurrence_key=key,
            trigger=occurrence.trigger,
            order=occurrence.order,
            event=occurrence.event,
            job=self.job,
            rule_version=rule.version,
            facts={need.label: _json(value) for need, value in facts.items()},
        )
        if save:
            firing.save()
        self.fired_keys.add((rule.pk, member.pk, key))
        return firing

    def _already_fired(self, rule, member, occurrence: Occurrence, key: str) -> bool:
        if self.fired_keys is None:
            self.fired_keys = self._load_fired_keys()
        if (rule.pk, member.pk, key) in self.fired_keys:
            return True
        if key in self.checked_keys or (occurrence.event_specific and not occurrence.by_job):
            # Loaded for the batch; or it names one event, which is evaluated only once.
            return False
        return RuleFiring.objects.filter(rule=rule, member=member, occurrence_key=key).exists()

    def _load_fired_keys(self) -> set[tuple[int, int, str]]:
        """The firings this batch could repeat, for all its members, in one query: of
        once-only and once-per-period rules, for the periods of the batch's events."""
        days = {occurrence.day for occurrence in self.moments.values()}
        days.add(timezone.localdate(self.now))
        limits = {rule.firing_limit for rules in self.rules.values() for rule in rules}
        self.checked_keys = {period_key(limit, day) for limit in limits for day in days} - {None}
        if self.job:
            self.checked_keys.add(f"job:{self.job.pk}")
        return set(
            RuleFiring.objects.filter(
                member_id__in=[member.pk for member in self.members],
                occurrence_key__in=self.checked_keys,
            ).values_list("rule_id", "member_id", "occurrence_key")
        )

    def _clock_done(self) -> set[int]:
        """Members this clock trigger was already evaluated for that day."""
        trigger, day = self.clock
        return set(
            ClockOccurrence.objects.filter(
                member__in=self.members, trigger=trigger, day=day
            ).values_list("member_id", flat=True)
        )


def _source(member, occurrence: Occurrence, view: AsOf, needs: set[Need]) -> FactSource:
    return FactSource(
        member=member,
        now=occurrence.at,
        needs=needs,
        data=view,
        order=occurrence.order,
        refund=occurrence.refund,
        event=occurrence.event,
        tier_change=occurrence.tier_change,
    )


def _superseded(change: TierChange) -> bool:
    # Changes are written under the member lock, so a higher id is a later change.
    return TierChange.objects.filter(member_id=change.member_id, pk__gt=change.pk).exists()


def _rule_applies(rule: Rule, member: Member, occurrence: Occurrence) -> bool:
    """Whether the trigger, with the rule's own parameters, happened to this member."""
    if rule.trigger == Trigger.ENGAGEMENT:
        return rule.engagement_kind_id in (None, occurrence.event.kind_id)
    if rule.trigger in CLOCK_TRIGGERS and not occurrence.by_job:
        return (
            clock_triggers.clock_occurrence_key(
                rule.trigger, rule.trigger_days, member, occurrence.day
            )
            is not None
        )
    return True


def _json(value):
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, frozenset):
        return sorted(value)
    return str(value)
