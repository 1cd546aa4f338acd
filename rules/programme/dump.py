"""`dump_programme`: the database's programme in the file format `load_programme` reads.
Loading a dump changes nothing."""

from decimal import Decimal

from benefits.models import CouponTemplate
from members.models import Tier
from notifications.models import NotificationTemplate

from ..models import ActionKind, FiringLimit, Rule
from ..tree import rows_to_tree
from . import yaml_io


def programme_dump() -> str:
    return yaml_io.dump(
        {
            "tiers": [
                {
                    "code": tier.code,
                    "name": tier.name,
                    "rank": tier.rank,
                    "discount_percent": _number(tier.discount_percent),
                }
                for tier in Tier.objects.order_by("rank")
            ],
            "coupon_templates": [
                {
                    "code": template.code,
                    "name": template.name,
                    "min_spend": _number(template.min_spend),
                    "amount_off": _number(template.amount_off),
                    "valid_days": template.valid_days,
                }
                for template in CouponTemplate.objects.order_by("code")
            ],
            "notification_templates": [
                {
                    "code": template.code,
                    **({"name": template.name} if template.name else {}),
                    "channel": template.channel,
                    "body": template.body,
                }
                for template in NotificationTemplate.objects.order_by("code")
            ],
            "rules": [
                _rule(rule)
                for rule in Rule.objects.order_by("priority", "code").prefetch_related(
                    "conditions",
                    "actions__tier",
                    "actions__coupon_template",
                    "actions__notification_template",
                )
            ],
        }
    )


def _rule(rule: Rule) -> dict:
    data = {"code": rule.code, "name": rule.name}
    if rule.description:
        data["description"] = rule.description
    data.update(trigger=rule.trigger, priority=rule.priority)
    if not rule.is_active:
        data["active"] = False
    if rule.active_from:
        data["active_from"] = rule.active_from.isoformat()
    if rule.active_until:
        data["active_until"] = rule.active_until.isoformat()
    if rule.firing_limit != FiringLimit.ONCE:
        data["fires"] = rule.firing_limit
    if rule.stop_processing:
        data["stop_processing"] = True
    rows = [
        {"position": c.position, "fact": c.fact, "op": c.op, "value": c.value, "days": c.days}
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
    return leaf


def _action(action) -> dict:
    if action.kind == ActionKind.SET_TIER:
        data = {"type": action.kind, "tier": action.tier.code}
        if action.allow_downgrade:
            data["allow_downgrade"] = True
        return data
    if action.kind == ActionKind.ISSUE_COUPON:
        return {"type": action.kind, "template": action.coupon_template.code}
    if action.kind == ActionKind.NOTIFY:
        return {"type": action.kind, "template": action.notification_template.code}
    return {"type": action.kind, "points": action.points}


def _number(value: Decimal) -> int | float | str:
    return yaml_io.number_or_text(format(value.normalize(), "f"))
