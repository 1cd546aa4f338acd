"""`dump_programme`: the database's programme in the file format `load_programme` reads.
Loading a dump changes nothing. Keys that hold their default are left out."""

from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from benefits.models import CouponTemplate, EarningPolicy
from members.models import EngagementKind, Tag, Tier, Validity
from notifications.models import NotificationTemplate

from ..engine.condition_tree import rows_to_tree
from ..models import ActionKind, FiringLimit, Rule
from . import yaml_io
from .schema import CouponTemplateSpec, TierSpec

# Written by _tier itself; the rest of a tier's fields only when not at their default.
TIER_BASICS = {
    "code",
    "name",
    "rank",
    "discount_percent",
    "points_multiplier",
    "validity",
    "validity_days",
}


def programme_dump() -> str:
    rules = Rule.objects.order_by("priority", "code").select_related("engagement_kind")
    rules = rules.prefetch_related(
        "conditions__event_kind",
        "actions__tier",
        "actions__coupon_template",
        "actions__notification_template",
        "actions__tag",
    )
    return yaml_io.dump(
        {
            "earning": _earning(EarningPolicy.current()),
            "tiers": [_tier(tier) for tier in Tier.objects.order_by("rank")],
            "tags": [{"code": tag.code, "name": tag.name} for tag in Tag.objects.all()],
            "engagement_kinds": [_engagement_kind(kind) for kind in EngagementKind.objects.all()],
            "coupon_templates": [
                _coupon_template(t) for t in CouponTemplate.objects.order_by("code")
            ],
            "notification_templates": [
                {
                    "code": template.code,
                    **({"name": template.name} if template.name else {}),
                    "channel": template.channel,
                    **_non_default(template, ["purpose"]),
                    "body": template.body,
                    **({"body_en": template.body_en} if template.body_en else {}),
                }
                for template in NotificationTemplate.objects.order_by("code")
            ],
            "rules": [rule_as_data(rule) for rule in rules],
        }
    )


def _earning(policy: EarningPolicy) -> dict:
    data = {
        "points_per_unit": _number(policy.points_per_unit),
        "growth_per_unit": _number(policy.growth_per_unit),
        "points_expiry": policy.points_expiry,
    }
    if policy.points_valid_days:
        data["points_valid_days"] = policy.points_valid_days
    return data


def _tier(tier: Tier) -> dict:
    data = {
        "code": tier.code,
        "name": tier.name,
        "rank": tier.rank,
        "discount_percent": _number(tier.discount_percent),
    }
    if tier.points_multiplier != 1:
        data["points_multiplier"] = _number(tier.points_multiplier)
    if tier.validity != Validity.FOREVER:
        data["validity"] = tier.validity
    if tier.validity_days:
        data["validity_days"] = tier.validity_days
    return data | _non_default(tier, [f for f in TierSpec.Meta.fields if f not in TIER_BASICS])


def _non_default(obj, names: list[str]) -> dict:
    """The fields among `names` that differ from the model's default, as file values."""
    data = {}
    for name in names:
        value, default = getattr(obj, name), obj._meta.get_field(name).get_default()
        if value == default:
            continue
        if isinstance(value, Decimal):
            value = _number(value)
        elif isinstance(value, datetime):
            value = timezone.localtime(value).isoformat()
        data[name] = value
    return data


def _engagement_kind(kind: EngagementKind) -> dict:
    data = {"code": kind.code, "name": kind.name, "growth_points": kind.growth_points}
    if kind.daily_cap is not None:
        data["daily_cap"] = kind.daily_cap
    if not kind.is_active:
        data["active"] = False
    return data


def _coupon_template(template: CouponTemplate) -> dict:
    data = {"code": template.code, "name": template.name, "min_spend": _number(template.min_spend)}
    return data | _non_default(
        template, [f for f in CouponTemplateSpec.Meta.fields if f not in data]
    )


def rule_as_data(rule: Rule) -> dict:
    """One rule in the file's format (also what the rule's history records)."""
    data = {"code": rule.code, "name": rule.name}
    if rule.description:
        data["description"] = rule.description
    data["trigger"] = rule.trigger
    if rule.trigger_days:
        data["days"] = rule.trigger_days
    if rule.engagement_kind_id:
        data["kind"] = rule.engagement_kind.code
    data["priority"] = rule.priority
    if not rule.is_active:
        data["active"] = False
    if rule.active_from:
        data["active_from"] = rule.active_from.isoformat()
    if rule.active_until:
        data["active_until"] = rule.active_until.isoformat()
    if rule.firing_limit != FiringLimit.ONCE:
        data["fires"] = rule.firing_limit
    if rule.budget:
        data["budget"] = rule.budget
    if rule.stop_processing:
        data["stop_processing"] = True
    rows = [
        {
            "position": c.position,
            "fact": c.fact,
            "op": c.op,
            "value": c.value,
            "days": c.days,
            "kind": c.event_kind.code if c.event_kind_id else None,
        }
        for c in rule.conditions.all()
    ]
    if tree := rows_to_tree(rows, rule.logic, leaf=_condition):
        data["conditions"] = tree
    data["actions"] = [_action(action) for action in rule.actions.all()]
    return data


def _condition(row: dict) -> dict:
    parts = [part.strip() for part in row["value"].split(",")]
    values = [yaml_io.number_or_text(part) for part in parts]
    leaf = {"fact": row["fact"], "op": row["op"]}
    leaf["value"] = values if row["op"] in ("in", "not_in", "between") else values[0]
    if row["days"]:
        leaf["days"] = row["days"]
    if row["kind"]:
        leaf["kind"] = row["kind"]
    return leaf


def _action(action) -> dict:
    data = {"type": action.kind}
    if action.kind == ActionKind.SET_TIER:
        data["tier"] = action.tier.code
        if action.allow_downgrade:
            data["allow_downgrade"] = True
    elif action.kind == ActionKind.ISSUE_COUPON:
        data["template"] = action.coupon_template.code
    elif action.kind == ActionKind.NOTIFY:
        data["template"] = action.notification_template.code
        if action.channel:
            data["channel"] = action.channel
    elif action.kind in (ActionKind.ADD_TAG, ActionKind.REMOVE_TAG):
        data["tag"] = action.tag.code
    elif action.kind == ActionKind.WEBHOOK:
        data["url"] = action.webhook_url
    else:
        data["points"] = action.points
    return data


def _number(value: Decimal) -> int | float | str:
    return yaml_io.number_or_text(format(value.normalize(), "f"))
