"""Saving rules: the programme loader and the admin both come through `rule_upsert`, so
every change is validated the same way, stored in one canonical form, versioned, and
kept in the rule's history."""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext

from ..engine import condition_tree, logic_line
from ..engine.conditions import codes_from_names, normalize_value
from ..models import Rule, RuleAction, RuleCondition, RuleRevision

RULE_FIELDS = (
    "name",
    "description",
    "trigger",
    "trigger_days",
    "engagement_kind",
    "priority",
    "is_active",
    "active_from",
    "active_until",
    "firing_limit",
    "stop_processing",
    "budget",
    "logic",
)
CONDITION_FIELDS = ("position", "fact", "op", "value", "days", "event_kind")
ACTION_FIELDS = (
    "position",
    "kind",
    "tier",
    "allow_downgrade",
    "coupon_template",
    "points",
    "notification_template",
    "channel",
    "tag",
    "webhook_url",
)


@transaction.atomic
def rule_upsert(
    *,
    code: str,
    conditions: list[dict],
    actions: list[dict],
    changed_by: AbstractBaseUser | None = None,
    source: str = "programme",
    **fields,
) -> tuple[Rule, bool]:
    """Create or update a rule by code with its full set of conditions and actions.
    Returns (rule, changed); an unchanged rule keeps its version and history."""
    if problem := logic_line.check(fields.get("logic", ""), {c["position"] for c in conditions}):
        raise ValidationError({"logic": problem})
    conditions, fields["logic"] = condition_tree.canonical(
        [{**c, "value": _value(c)} for c in conditions],
        fields.get("logic", ""),
    )
    rule = Rule.objects.filter(code=code).first()
    if rule is not None and _rule_state(rule) == _desired_state(fields, conditions, actions):
        return rule, False
    before = rule_snapshot(rule) if rule else None
    rule = rule or Rule(code=code, version=0)
    for name in RULE_FIELDS:
        setattr(rule, name, fields.get(name, Rule._meta.get_field(name).get_default()))
    rule.version += 1
    if rule.is_active and not actions:
        raise ValidationError({"is_active": gettext("An active rule needs at least one action.")})
    rule.full_clean()
    rule.save()
    rule.conditions.all().delete()
    rule.actions.all().delete()
    for values in conditions:
        condition = RuleCondition(
            rule=rule, **{f: values.get(f) for f in CONDITION_FIELDS if f in values}
        )
        condition.full_clean(exclude=["rule"])
        condition.save()
    for values in actions:
        action = RuleAction(rule=rule, **values)
        action.full_clean(exclude=["rule"])
        action.save()
    RuleRevision.objects.create(
        rule=rule,
        version=rule.version,
        changed_by=changed_by,
        source=source,
        before=before,
        after=rule_snapshot(rule),
    )
    return rule, True


def _value(condition: dict) -> str:
    """The value as stored: names of tiers, tags and kinds as their codes, lists as "a, b"."""
    value = codes_from_names(condition["fact"], condition["op"], condition["value"])
    return normalize_value(condition["op"], value)


def rule_snapshot(rule: Rule) -> dict:
    """The rule as the programme file writes it."""
    from ..programme.dump import rule_as_data  # the file format knows the rule's shape

    fresh = Rule.objects.prefetch_related("conditions__event_kind", "actions").get(pk=rule.pk)
    return rule_as_data(fresh)


def _rule_state(rule: Rule) -> tuple:
    return (
        {name: getattr(rule, name) for name in RULE_FIELDS},
        [{f: getattr(c, f) for f in CONDITION_FIELDS} for c in rule.conditions.all()],
        [{f: getattr(a, f) for f in ACTION_FIELDS} for a in rule.actions.all()],
    )


def _desired_state(fields: dict, conditions: list[dict], actions: list[dict]) -> tuple:
    def default(model, name):
        return model._meta.get_field(name).get_default()

    return (
        {name: fields.get(name, default(Rule, name)) for name in RULE_FIELDS},
        [{f: c.get(f, default(RuleCondition, f)) for f in CONDITION_FIELDS} for c in conditions],
        [{f: a.get(f, default(RuleAction, f)) for f in ACTION_FIELDS} for a in actions],
    )
