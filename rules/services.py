"""Every write in the rules app: evaluating a member (which applies firings) and saving
rules."""

import logging
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Prefetch, Q
from django.utils import timezone

from core.queue import enqueue
from members import services as member_services
from orders import services as order_services
from orders.models import Order

from . import engine, logic, tree
from .actions import actions_apply
from .conditions import normalize_value
from .facts import FactSource, fact_label, facts_compute
from .models import FiringLimit, Rule, RuleAction, RuleCondition, RuleFiring, Trigger

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evaluated:
    fired: list[RuleFiring]
    skipped: bool = False  # the order had already been evaluated


def rules_live(*, trigger: str, at=None) -> list[Rule]:
    """Active rules for a trigger in the order they apply, with conditions and actions."""
    at = at or timezone.now()
    return list(
        Rule.objects.filter(trigger=trigger, is_active=True)
        .filter(Q(active_from__isnull=True) | Q(active_from__lte=at))
        .filter(Q(active_until__isnull=True) | Q(active_until__gt=at))
        .order_by("priority", "code")
        .prefetch_related(
            "conditions",
            Prefetch(
                "actions",
                queryset=RuleAction.objects.select_related(
                    "tier", "coupon_template", "notification_template"
                ),
            ),
        )
    )


def member_evaluate(*, member_id: int, trigger: str, order_id: int | None = None) -> Evaluated:
    """Evaluate the live rules for one member and apply every rule that matches, at most
    once per (rule, member, occurrence).

    Runs in one transaction holding the member row lock, so concurrent evaluations of one
    member queue up: the second sees the first's firings and totals. Safe to run twice.
    """
    with transaction.atomic():
        member = member_services.member_lock(member_id=member_id)
        order = None
        if order_id is not None:
            order = Order.objects.get(pk=order_id)
            if order.is_evaluated:
                return Evaluated(fired=[], skipped=True)
        now = timezone.now()
        rules = rules_live(trigger=trigger, at=now)
        needs = engine.fact_needs(rules)
        windows = {days for _, days in needs if days}
        source = FactSource(member=member, order=order, now=now, windows=windows)
        facts = facts_compute(source, needs)
        fired = []
        for rule in rules:
            if not engine.rule_evaluate(rule, facts).matched:
                continue
            firing = _firing_record(
                rule=rule, member=member, trigger=trigger, order=order, facts=facts
            )
            if firing is None:
                continue
            actions_apply(firing=firing, member=member, order=order)
            fired.append(firing)
            if rule.stop_processing:
                break
            # The next rule sees the tier and points this one just gave.
            source = source.after_effects()
            facts = facts_compute(source, needs)
        if order is not None:
            order_services.order_mark_evaluated(order_id=order.pk)
    if fired:
        logger.info(
            "member #%s %s: fired %s", member_id, trigger, ", ".join(f.rule.code for f in fired)
        )
    return Evaluated(fired=fired)


def _firing_record(*, rule, member, trigger, order, facts) -> RuleFiring | None:
    """Record the firing, or return None if this occurrence already fired. The member lock
    makes the check reliable; the unique constraint backs it up."""
    key = _occurrence_key(rule, order)
    if RuleFiring.objects.filter(rule=rule, member=member, occurrence_key=key).exists():
        return None
    return RuleFiring.objects.create(
        rule=rule,
        member=member,
        occurrence_key=key,
        trigger=trigger,
        order=order,
        rule_version=rule.version,
        facts={fact_label(key, days): _json(value) for (key, days), value in facts.items()},
    )


def _occurrence_key(rule: Rule, order: Order | None) -> str:
    if rule.firing_limit == FiringLimit.ONCE:
        return "once"
    return f"order:{order.pk}" if order else "event"


def _json(value):
    return value if value is None or isinstance(value, (bool, int, str)) else str(value)


def evaluation_enqueue(*, member_id: int, trigger: str, order_id: int | None = None) -> bool:
    from .tasks import evaluate  # tasks import services

    return enqueue(evaluate, member_id, trigger, order_id)


def order_evaluation_enqueue(*, order_id: int, member_id: int) -> bool:
    return evaluation_enqueue(
        member_id=member_id, trigger=Trigger.ORDER_PAID.value, order_id=order_id
    )


# --- Saving rules ---------------------------------------------------------------------------


RULE_FIELDS = (
    "name",
    "description",
    "trigger",
    "priority",
    "is_active",
    "active_from",
    "active_until",
    "firing_limit",
    "stop_processing",
    "logic",
)
CONDITION_FIELDS = ("position", "fact", "op", "value", "days")
ACTION_FIELDS = (
    "position",
    "kind",
    "tier",
    "allow_downgrade",
    "coupon_template",
    "points",
    "notification_template",
)


@transaction.atomic
def rule_upsert(
    *, code: str, conditions: list[dict], actions: list[dict], **fields
) -> tuple[Rule, bool]:
    """Create or update a rule by code with its full set of conditions and actions.
    Returns (rule, changed); an unchanged rule keeps its version."""
    if problem := logic.check(fields.get("logic", ""), {c["position"] for c in conditions}):
        raise ValidationError({"logic": problem})
    conditions, fields["logic"] = tree.canonical(
        [{**c, "value": normalize_value(c["op"], c["value"])} for c in conditions],
        fields.get("logic", ""),
    )
    rule = Rule.objects.filter(code=code).first()
    if rule is not None and _rule_state(rule) == _desired_state(fields, conditions, actions):
        return rule, False
    rule = rule or Rule(code=code, version=0)
    for name in RULE_FIELDS:
        setattr(rule, name, fields.get(name, Rule._meta.get_field(name).get_default()))
    rule.version += 1
    rule.full_clean()
    rule.save()
    rule.conditions.all().delete()
    rule.actions.all().delete()
    for values in conditions:
        condition = RuleCondition(rule=rule, **values)
        condition.full_clean(exclude=["rule"])
        condition.save()
    for values in actions:
        action = RuleAction(rule=rule, **values)
        action.full_clean(exclude=["rule"])
        action.save()
    return rule, True


def _rule_state(rule: Rule) -> tuple:
    return (
        {name: getattr(rule, name) for name in RULE_FIELDS},
        [{f: getattr(c, f) for f in CONDITION_FIELDS} for c in rule.conditions.all()],
        [{f: getattr(a, f) for f in ACTION_FIELDS} for a in rule.actions.all()],
    )


def _desired_state(fields: dict, conditions: list[dict], actions: list[dict]) -> tuple:
    defaults = {name: Rule._meta.get_field(name).get_default() for name in RULE_FIELDS}
    return (
        {**defaults, **{k: v for k, v in fields.items() if k in RULE_FIELDS}},
        [
            {f: c.get(f, RuleCondition._meta.get_field(f).get_default()) for f in CONDITION_FIELDS}
            for c in conditions
        ],
        [
            {f: a.get(f, RuleAction._meta.get_field(f).get_default()) for f in ACTION_FIELDS}
            for a in actions
        ],
    )
