"""Test a rule on one member: each fact's value, each condition true or false, and the
actions that would run. Reads only; the engine's own evaluation, without applying it.

For a trigger about an event (an order, a refund, an engagement), the member's latest
such event stands in for the triggering one; for clock triggers, today."""

from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from members.models import Member
from orders.models import Order, Refund

from .. import clock, engine
from ..facts import FactSource, Need, facts_compute
from ..models import CLOCK_TRIGGERS, ActionKind, Rule, RuleFiring, Trigger


@dataclass
class Explanation:
    facts: list[tuple[str, Any]]
    evaluation: engine.RuleEvaluation
    actions: list[str]
    would_fire: bool
    notes: list[str] = field(default_factory=list)


def rule_explain(rule: Rule, member: Member) -> Explanation:
    notes = []
    subjects, trigger_ok = _stand_in(rule, member, notes)
    needs = engine.fact_needs([rule])
    facts = facts_compute(FactSource(member=member, now=timezone.now(), needs=needs, **subjects))
    evaluation = engine.rule_evaluate(rule, facts)
    already = _already_fired(rule, member)
    if already:
        notes.append(f"It already fired for this member ({already}); it fires only once.")
    if not rule.is_live():
        notes.append("The rule is not active now, so it would not fire until it is.")
    would_fire = evaluation.matched and trigger_ok and not already and rule.is_live()
    return Explanation(
        facts=[(need.label, value) for need, value in sorted(facts.items(), key=_by_label)],
        evaluation=evaluation,
        actions=[describe_action(action) for action in rule.actions.all()],
        would_fire=would_fire,
        notes=notes,
    )


def _by_label(item: tuple[Need, Any]) -> str:
    return item[0].label


def _stand_in(rule: Rule, member: Member, notes: list[str]) -> tuple[dict, bool]:
    """The subject the rule is tested against, and whether its trigger holds for it."""
    if rule.trigger == Trigger.ORDER_PAID:
        order = Order.objects.filter(member=member).order_by("-placed_at").first()
        notes.append(
            f"Triggering order: the latest, {order.external_id}."
            if order
            else "The member has no orders."
        )
        return {"order": order}, order is not None
    if rule.trigger == Trigger.ORDER_REFUNDED:
        refund = Refund.objects.filter(order__member=member).select_related("order").first()
        notes.append(
            f"Triggering refund: the latest, {refund.external_id}."
            if refund
            else "The member has no refunds."
        )
        return ({"refund": refund, "order": refund.order} if refund else {}), refund is not None
    if rule.trigger == Trigger.ENGAGEMENT:
        events = member.engagements.select_related("kind")
        if rule.engagement_kind_id:
            events = events.filter(kind=rule.engagement_kind)
        event = events.first()
        notes.append(
            f"Triggering engagement: the latest, {event.external_id}."
            if event
            else "No such engagement."
        )
        return {"event": event}, event is not None
    if rule.trigger in CLOCK_TRIGGERS:
        today = timezone.localdate()
        happens = clock.occurrence_key(rule.trigger, rule.trigger_days, member, today) is not None
        if not happens:
            notes.append(
                f"Its trigger ({rule.get_trigger_display()}) does not happen to the member today."
            )
        return {}, happens
    return {}, True


def _already_fired(rule: Rule, member: Member) -> str:
    if rule.firing_limit != "once":
        return ""
    firing = RuleFiring.objects.filter(rule=rule, member=member, occurrence_key="once").first()
    return timezone.localtime(firing.fired_at).strftime("%Y-%m-%d %H:%M") if firing else ""


def describe_action(action) -> str:
    if action.kind == ActionKind.SET_TIER:
        target = f"{action.tier}" + (" (may move down)" if action.allow_downgrade else "")
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
