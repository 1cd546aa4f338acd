"""Evaluating a member: the one path by which rules take effect.

Every trigger comes here with the member, what happened (an order, a refund, an
engagement, joining, or a clock trigger on a day) and, for operators' backfill jobs, the
rule to apply. In one transaction holding the member row lock: the base effects of what
happened (points and growth points earned, a refund's reversals), then each live rule in
priority order; a rule that matches records a RuleFiring, unique per (rule, member,
occurrence), and applies its actions. The subject is marked evaluated in the same
transaction, so a task that runs twice changes nothing the second time.
"""

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db import transaction
from django.db.models import Count, Max, Prefetch, Sum
from django.utils import timezone

from benefits.models import EarningPolicy
from benefits.services import growth as growth_services
from benefits.services import points as points_services
from benefits.services import reversals
from core.days import start_of_day
from core.models import Evaluable, mark_evaluated
from core.queue import enqueue
from members import services as member_services
from members.models import EngagementEvent, Member, TierChange
from orders.models import Order, Refund

from .. import clock, engine
from ..actions import actions_apply, facts_touched
from ..facts import FactSource, facts_compute
from ..models import (
    CLOCK_TRIGGERS,
    ClockOccurrence,
    Rule,
    RuleAction,
    RuleCondition,
    RuleFiring,
    RuleJob,
    Trigger,
)
from ..occurrences import Occurrence, firing_block, occurrence_key
from . import lifecycle

logger = logging.getLogger(__name__)

# The subject each event-like trigger is about, and the path from it to its member.
SUBJECTS: dict[str, tuple[type[Evaluable], str]] = {
    Trigger.ORDER_PAID: (Order, "member_id"),
    Trigger.ORDER_REFUNDED: (Refund, "order__member_id"),
    Trigger.ENGAGEMENT: (EngagementEvent, "member_id"),
    Trigger.MEMBER_JOINED: (Member, "pk"),
    Trigger.TIER_CHANGED: (TierChange, "member_id"),
}


@dataclass
class Evaluated:
    fired: list[RuleFiring] = field(default_factory=list)
    skipped: bool = False  # the subject had already been evaluated


# Active rules per trigger, with their conditions, as last loaded by this process. Only a
# speed-up: every evaluation first asks the database (one small aggregate) whether they
# changed, so no process ever evaluates with rules it has not seen.
_RULES: dict[str, tuple[dict, list[Rule]]] = {}


def rules_live(*, trigger: str, at: datetime | None = None) -> list[Rule]:
    """Active rules for a trigger, with their conditions, in the order they apply."""
    at = at or timezone.now()
    active = Rule.objects.filter(trigger=trigger, is_active=True)
    # Which rules (ids are never reused) at which versions (every save bumps one).
    version = active.aggregate(
        n=Count("pk"), ids=Sum("pk"), versions=Sum("version"), changed=Max("updated_at")
    )
    cached = _RULES.get(trigger)
    if cached is None or cached[0] != version:
        rules = list(
            active.order_by("priority", "code")
            .select_related("engagement_kind")
            .prefetch_related(
                Prefetch("conditions", queryset=RuleCondition.objects.select_related("event_kind"))
            )
        )
        cached = _RULES[trigger] = (version, rules)
    return [rule for rule in cached[1] if rule.is_live(at)]


def rule_actions(rule: Rule) -> list[RuleAction]:
    """A firing rule's actions, loaded when it fires (rules rarely do)."""
    return list(
        RuleAction.objects.filter(rule=rule).select_related(
            "tier", "coupon_template", "notification_template", "tag"
        )
    )


def member_evaluate(
    *,
    member_id: int,
    trigger: str,
    subject_id: int | None = None,
    on_date: date | None = None,
) -> Evaluated:
    """Evaluate the live rules of `trigger` for one member. `subject_id` is the order,
    refund or engagement event for those triggers; `on_date` the business day for clock
    triggers. Safe to run twice."""
    with transaction.atomic():
        member = member_services.member_lock(member_id=member_id)
        occurrence = _occurrence(trigger, member, subject_id, on_date)
        if occurrence is None:
            return Evaluated(skipped=True)
        if occurrence.tier_change and _superseded(occurrence.tier_change):
            # A catch-up run moved the member several times: only the latest move is
            # news (the facts, and any message, describe the member as they are now).
            mark_evaluated(TierChange, occurrence.tier_change.pk)
            return Evaluated(skipped=True)
        policy = EarningPolicy.current()
        _base_effects(member, occurrence, policy)
        rules = rules_live(trigger=trigger, at=occurrence.at)
        applicable = [rule for rule in rules if _rule_applies(rule, member, occurrence)]
        evaluated = _fire(member, occurrence, applicable, policy)
        if trigger == Trigger.ORDER_PAID:
            # A refund evaluated before its order found nothing to take back yet: take back
            # now its share of what the order and its rules just gave.
            reversals.order_reversals_apply(member=member, order=occurrence.order)
        if occurrence.subject is not None:
            mark_evaluated(type(occurrence.subject), occurrence.subject.pk)
    if evaluated.fired:
        codes = ", ".join(firing.rule.code for firing in evaluated.fired)
        logger.info("member #%s %s: fired %s", member_id, trigger, codes)
    return evaluated


def member_apply_rule(*, member_id: int, rule: Rule, job: RuleJob) -> RuleFiring | None:
    """Fire `rule` for a member who qualifies now, outside its trigger: an operator's
    "apply to existing members" job. The firing limit still holds (a once-only rule the
    member already had does not fire again)."""
    with transaction.atomic():
        member = member_services.member_lock(member_id=member_id)
        occurrence = Occurrence(
            trigger=rule.trigger, key=f"job:{job.pk}", day=timezone.localdate(), by_job=True
        )
        if not rule.is_live():
            return None
        evaluated = _fire(member, occurrence, [rule], EarningPolicy.current(), job=job)
    return evaluated.fired[0] if evaluated.fired else None


def _occurrence(trigger: str, member: Member, subject_id: int | None, on_date: date | None):
    """The occurrence to evaluate, or None if its subject was already evaluated."""
    if trigger in CLOCK_TRIGGERS:
        # Once per member, trigger and day (the member row lock makes the check reliable).
        _, created = ClockOccurrence.objects.get_or_create(
            member=member, trigger=trigger, day=on_date
        )
        if not created:
            return None
        # A catch-up run for a past day judges the facts as they stood at that day's end.
        end_of_day = start_of_day(on_date + timedelta(days=1))
        at = min(timezone.now(), end_of_day - timedelta(microseconds=1))
        return Occurrence(trigger=trigger, key=f"{trigger}:{on_date}", day=on_date, at=at)
    if trigger == Trigger.MEMBER_JOINED:
        if member.is_evaluated:
            return None
        return Occurrence(trigger, "joined", timezone.localdate(member.joined_at), subject=member)
    model, _ = SUBJECTS[trigger]
    subject = model.objects.get(pk=subject_id)
    if subject.is_evaluated:
        return None
    if trigger == Trigger.ORDER_PAID:
        day = timezone.localdate(subject.placed_at)
        return Occurrence(trigger, f"order:{subject.pk}", day, order=subject, subject=subject)
    if trigger == Trigger.ORDER_REFUNDED:
        day = timezone.localdate(subject.refunded_at)
        return Occurrence(
            trigger,
            f"refund:{subject.pk}",
            day,
            order=subject.order,
            refund=subject,
            subject=subject,
        )
    if trigger == Trigger.TIER_CHANGED:
        day = timezone.localdate(subject.created_at)
        return Occurrence(
            trigger, f"tier_change:{subject.pk}", day, tier_change=subject, subject=subject
        )
    day = timezone.localdate(subject.occurred_at)
    return Occurrence(trigger, f"event:{subject.pk}", day, event=subject, subject=subject)


def _superseded(change: TierChange) -> bool:
    # Changes are written under the member lock, so a higher id is a later change.
    return TierChange.objects.filter(member_id=change.member_id, pk__gt=change.pk).exists()


def _base_effects(member: Member, occurrence: Occurrence, policy: EarningPolicy) -> None:
    """What happens whatever the rules say: an order earns points and growth points, an
    engagement earns growth points, a refund takes back its share."""
    if occurrence.trigger == Trigger.ORDER_PAID:
        points_services.order_earn_points(member=member, order=occurrence.order, policy=policy)
        growth_services.order_earn_growth(member=member, order=occurrence.order, policy=policy)
    elif occurrence.trigger == Trigger.ORDER_REFUNDED:
        order = Order.objects.get(pk=occurrence.order.pk)  # with all refunds so far
        reversals.order_reversals_apply(member=member, order=order)
        lifecycle.tier_recheck_after_refund(member=member, order=order)
    elif occurrence.trigger == Trigger.ENGAGEMENT:
        growth_services.engagement_earn_growth(member=member, event=occurrence.event)


def _rule_applies(rule: Rule, member: Member, occurrence: Occurrence) -> bool:
    """Whether the trigger, with the rule's own parameters, happened to this member."""
    if rule.trigger == Trigger.ENGAGEMENT:
        return rule.engagement_kind_id in (None, occurrence.event.kind_id)
    if rule.trigger in CLOCK_TRIGGERS:
        return (
            clock.occurrence_key(rule.trigger, rule.trigger_days, member, occurrence.day)
            is not None
        )
    return True


def _fire(
    member: Member,
    occurrence: Occurrence,
    rules: list[Rule],
    policy: EarningPolicy,
    *,
    job: RuleJob | None = None,
) -> Evaluated:
    needs = engine.fact_needs(rules)
    source = FactSource(
        member=member,
        now=occurrence.at,
        needs=needs,
        order=occurrence.order,
        refund=occurrence.refund,
        event=occurrence.event,
        tier_change=occurrence.tier_change,
    )
    facts = facts_compute(source)
    evaluated = Evaluated()
    for rule in rules:
        if not engine.rule_evaluate(rule, facts).matched:
            continue
        firing = _firing_record(rule, member, occurrence, facts, job)
        if firing is None:
            continue
        actions = rule_actions(rule)
        actions_apply(
            firing=firing,
            actions=actions,
            member=member,
            order=occurrence.order,
            policy=policy,
            send_notifications=job is None or job.send_notifications,
        )
        evaluated.fired.append(firing)
        if rule.stop_processing:
            break
        # The next rule sees the tier, points and tags this one just gave.
        source = source.after_effects(facts_touched(actions))
        facts = facts_compute(source)
    return evaluated


def _firing_record(rule, member, occurrence, facts, job) -> RuleFiring | None:
    """Record the firing, or return None if this occurrence already fired or the rule's
    budget is spent. The member lock makes the check reliable; the unique constraint
    backs it up."""
    key = occurrence_key(rule, member, occurrence)
    if rule.budget is not None:
        # The rule row lock (taken after the member's, as always) queues concurrent firings
        # of a budgeted rule, so its count of firings cannot be overtaken.
        Rule.objects.select_for_update().filter(pk=rule.pk).exists()
    if firing_block(rule, member, key):
        return None
    return RuleFiring.objects.create(
        rule=rule,
        member=member,
        occurrence_key=key,
        trigger=occurrence.trigger,
        order=occurrence.order,
        event=occurrence.event,
        job=job,
        rule_version=rule.version,
        facts={need.label: _json(value) for need, value in facts.items()},
    )


def _json(value):
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, frozenset):
        return sorted(value)
    return str(value)


def evaluation_enqueue(
    *, member_id: int, trigger: str, subject_id: int | None = None, on_date: date | None = None
) -> bool:
    from ..tasks import evaluate  # tasks import services

    return enqueue(evaluate, member_id, str(trigger), subject_id, on_date and on_date.isoformat())


def pending_enqueue(*, older_than: timedelta, limit: int) -> int:
    """Publish again the evaluations of subjects left pending (the broker was down, a
    worker died): the longest-waiting first, at most `limit` of each kind."""
    from core.models import pending_evaluation

    published = 0
    for trigger, (model, member_field) in SUBJECTS.items():
        for subject_id, member_id in pending_evaluation(
            model, member_field=member_field, older_than=older_than, limit=limit
        ):
            subject = None if trigger == Trigger.MEMBER_JOINED else subject_id
            evaluation_enqueue(member_id=member_id, trigger=trigger, subject_id=subject)
            published += 1
    return published
