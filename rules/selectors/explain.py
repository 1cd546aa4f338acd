"""Test a rule on one member: each fact's value, each condition true or false, and the
actions that would run. Reads only; the engine's own evaluation, without applying it.

For a trigger about an event (an order, a refund, an engagement), the member's latest
such event stands in for the triggering one; for clock triggers, today."""

from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext

from members.models import Member
from orders.models import Order, Refund

from ..engine import clock_triggers, evaluate
from ..engine.facts import FactSource, Need, facts_compute
from ..engine.occurrences import Occurrence, firing_block, occurrence_key
from ..models import CLOCK_TRIGGERS, ActionKind, Rule, Trigger


@dataclass
class Explanation:
    facts: list[tuple[str, Any]]  # keyed as a firing records them: "spend_in_days[30]"
    labelled_facts: list[tuple[str, Any]]  # for people: "spend in the last 30 days"
    evaluation: evaluate.RuleEvaluation
    actions: list[str]
    would_fire: bool  # now, as the rule stands
    would_fire_when_active: bool  # the same, for a draft once it is switched on
    notes: list[str] = field(default_factory=list)


def rule_explain(rule: Rule, member: Member) -> Explanation:
    notes: list[str] = []
    occurrence = _stand_in(rule, member, notes)
    needs = evaluate.fact_needs([rule])
    source = FactSource(
        member=member,
        now=timezone.now(),
        needs=needs,
        order=occurrence.order if occurrence else None,
        refund=occurrence.refund if occurrence else None,
        event=occurrence.event if occurrence else None,
        tier_change=occurrence.tier_change if occurrence else None,
    )
    facts = facts_compute(source)
    evaluation = evaluate.rule_evaluate(rule, facts)
    blocked = (
        firing_block(rule, member, occurrence_key(rule, member, occurrence)) if occurrence else ""
    )
    if blocked == "already fired":
        notes.append(
            gettext("It already fired for this member (%(limit)s).")
            % {"limit": rule.get_firing_limit_display()}
        )
    elif blocked:
        notes.append(
            gettext("Its budget of %(budget)s firings is spent.") % {"budget": rule.budget}
        )
    possible = evaluation.matched and occurrence is not None and not blocked
    if not rule.is_live():
        notes.append(gettext("The rule is not active now, so it would not fire until it is."))
    return Explanation(
        facts=[(need.label, value) for need, value in sorted(facts.items(), key=_by_label)],
        labelled_facts=sorted(
            ((need.description, value) for need, value in facts.items()), key=lambda row: row[0]
        ),
        evaluation=evaluation,
        actions=[describe_action(action) for action in rule.actions.all()],
        would_fire=possible and rule.is_live(),
        would_fire_when_active=possible,
        notes=notes,
    )


def _by_label(item: tuple[Need, Any]) -> str:
    return item[0].label


def _stand_in(rule: Rule, member: Member, notes: list[str]) -> Occurrence | None:
    """The occurrence the rule is tested against, or None if its trigger cannot happen
    to the member now (no such order, refund or engagement; not the day)."""
    today = timezone.localdate()
    if rule.trigger == Trigger.ORDER_PAID:
        order = Order.objects.filter(member=member).order_by("-placed_at").first()
        if order is None:
            notes.append(gettext("The member has no orders."))
            return None
        notes.append(gettext("Triggering order: the latest, %(id)s.") % {"id": order.external_id})
        day = timezone.localdate(order.placed_at)
        return Occurrence(rule.trigger, f"order:{order.pk}", day, order=order)
    if rule.trigger == Trigger.ORDER_REFUNDED:
        refund = Refund.objects.filter(order__member=member).select_related("order").first()
        if refund is None:
            notes.append(gettext("The member has no refunds."))
            return None
        notes.append(gettext("Triggering refund: the latest, %(id)s.") % {"id": refund.external_id})
        day = timezone.localdate(refund.refunded_at)
        return Occurrence(
            rule.trigger, f"refund:{refund.pk}", day, order=refund.order, refund=refund
        )
    if rule.trigger == Trigger.ENGAGEMENT:
        events = member.engagements.select_related("kind")
        if rule.engagement_kind_id:
            events = events.filter(kind=rule.engagement_kind)
        event = events.first()
        if event is None:
            notes.append(gettext("The member has no such engagement."))
            return None
        notes.append(
            gettext("Triggering engagement: the latest, %(id)s.") % {"id": event.external_id}
        )
        return Occurrence(
            rule.trigger, f"event:{event.pk}", timezone.localdate(event.occurred_at), event=event
        )
    if rule.trigger == Trigger.TIER_CHANGED:
        change = member.tier_changes.select_related("from_tier", "to_tier").first()
        if change is None:
            notes.append(gettext("The member's tier has never changed."))
            return None
        notes.append(gettext("Triggering change: the latest, %(change)s.") % {"change": change})
        day = timezone.localdate(change.created_at)
        return Occurrence(rule.trigger, f"tier_change:{change.pk}", day, tier_change=change)
    if rule.trigger in CLOCK_TRIGGERS:
        if (
            clock_triggers.clock_occurrence_key(rule.trigger, rule.trigger_days, member, today)
            is None
        ):
            notes.append(
                gettext("Its trigger (%(trigger)s) does not happen to the member today.")
                % {"trigger": rule.get_trigger_display()}
            )
            return None
        return Occurrence(rule.trigger, f"{rule.trigger}:{today}", today)
    return Occurrence(rule.trigger, "joined", timezone.localdate(member.joined_at))


def describe_action(action) -> str:
    if action.kind == ActionKind.SET_TIER:
        target = f"{action.tier}" + (gettext(" (may move down)") if action.allow_downgrade else "")
    elif action.kind == ActionKind.NOTIFY:
        template = action.notification_template
        target = f"{template} ({action.channel or template.channel})"
    elif action.kind in (ActionKind.AWARD_POINTS, ActionKind.AWARD_GROWTH_POINTS):
        target = str(action.points)
    elif action.kind == ActionKind.WEBHOOK:
        target = action.webhook_url
    else:
        target = str(action.coupon_template or action.tag)
    return f"{action.get_kind_display()}: {target}"
