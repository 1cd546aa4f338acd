"""The programme file's shape, validated with DRF serializers so that every error comes
with the path to the value at fault. Cross-references (a rule naming a tier the file
does not define) are checked by the loader, which knows the whole file."""

from decimal import Decimal
from typing import Any

from rest_framework import serializers

from core.api import StrictSerializer
from members.models import MAX_RANK
from notifications.models import Channel
from notifications.rendering import template_errors

from ..conditions import OPERATORS
from ..facts import FACTS
from ..models import (
    MAX_DAYS,
    MAX_POINTS,
    MAX_PRIORITY,
    ActionKind,
    FiringLimit,
    RuleCondition,
    Trigger,
)

SECTIONS = ("tiers", "coupon_templates", "notification_templates", "rules")


class TierSpec(StrictSerializer):
    code = serializers.SlugField(max_length=50)
    name = serializers.CharField(max_length=100)
    rank = serializers.IntegerField(min_value=0, max_value=MAX_RANK)
    discount_percent = serializers.DecimalField(
        max_digits=5, decimal_places=2, min_value=Decimal(0), max_value=Decimal(100), default=0
    )


class CouponTemplateSpec(StrictSerializer):
    code = serializers.SlugField(max_length=50)
    name = serializers.CharField(max_length=100)
    min_spend = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal(0), default=0
    )
    amount_off = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0.01")
    )
    valid_days = serializers.IntegerField(min_value=1, max_value=3650)  # as the model


class NotificationTemplateSpec(StrictSerializer):
    code = serializers.SlugField(max_length=50)
    name = serializers.CharField(max_length=100, required=False, default="")
    channel = serializers.ChoiceField(choices=Channel.choices)
    body = serializers.CharField()

    def validate_body(self, value: str) -> str:
        if errors := template_errors(value):
            raise serializers.ValidationError(errors)
        return value


class ConditionValueField(serializers.Field):
    """A number or text, or a list of them for 'in', 'not_in' and 'between'."""

    def to_internal_value(self, data: Any) -> str:
        items = data if isinstance(data, list) else [data]
        if not items or any(isinstance(i, (dict, list, bool)) or i is None for i in items):
            raise serializers.ValidationError("Give a number or text, or a list of them.")
        text = ", ".join(str(item) for item in items)
        if len(text) > RuleCondition._meta.get_field("value").max_length:
            raise serializers.ValidationError("The value is too long (200 characters at most).")
        return text

    def to_representation(self, value: str) -> str:
        return value


class ConditionSpec(StrictSerializer):
    fact = serializers.ChoiceField(choices=sorted(FACTS))
    op = serializers.ChoiceField(choices=sorted(OPERATORS))
    value = ConditionValueField()
    days = serializers.IntegerField(
        min_value=1, max_value=MAX_DAYS, required=False, allow_null=True
    )


class ConditionTreeField(serializers.Field):
    """`{all: [...]}` or `{any: [...]}`, nesting freely; leaves are conditions.
    Returns the tree with validated leaves."""

    def to_internal_value(self, data: Any) -> dict:
        return self._node(data)

    def _node(self, data: Any) -> dict:
        if not isinstance(data, dict):
            raise serializers.ValidationError("Expected {all: [...]}, {any: [...]} or a condition.")
        groups = [key for key in ("all", "any") if key in data]
        if not groups:
            leaf = ConditionSpec(data=data)
            if not leaf.is_valid():
                raise serializers.ValidationError(leaf.errors)
            return dict(leaf.validated_data)
        if len(data) != 1:
            raise serializers.ValidationError("A group has exactly one key: 'all' or 'any'.")
        group = groups[0]
        children = data[group]
        if not isinstance(children, list) or not children:
            raise serializers.ValidationError({group: ["Give a non-empty list of conditions."]})
        parsed, errors = [], {}
        for index, child in enumerate(children):
            try:
                parsed.append(self._node(child))
            except serializers.ValidationError as exc:
                errors[index] = exc.detail
        if errors:
            raise serializers.ValidationError({group: errors})
        return {group: parsed}

    def to_representation(self, value: dict) -> dict:
        return value


class ActionSpec(StrictSerializer):
    # The reference each action type needs.
    NEEDS = {
        ActionKind.SET_TIER: "tier",
        ActionKind.ISSUE_COUPON: "template",
        ActionKind.AWARD_POINTS: "points",
        ActionKind.NOTIFY: "template",
    }

    type = serializers.ChoiceField(choices=ActionKind.choices)
    tier = serializers.SlugField(required=False)
    allow_downgrade = serializers.BooleanField(required=False, default=False)
    template = serializers.SlugField(required=False)
    points = serializers.IntegerField(min_value=1, max_value=MAX_POINTS, required=False)

    def validate(self, data: dict) -> dict:
        needed = self.NEEDS[data["type"]]
        errors = {}
        if needed not in data:
            errors[needed] = f"'{data['type']}' needs '{needed}'."
        for name in ("tier", "template", "points"):
            if name in data and name != needed:
                errors[name] = f"'{data['type']}' does not take '{name}'."
        if data.get("allow_downgrade") and data["type"] != ActionKind.SET_TIER:
            errors["allow_downgrade"] = "Only 'set_tier' takes 'allow_downgrade'."
        if errors:
            raise serializers.ValidationError(errors)
        return data


class RuleSpec(StrictSerializer):
    code = serializers.SlugField(max_length=50)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, default="", allow_blank=True)
    trigger = serializers.ChoiceField(choices=Trigger.choices)
    priority = serializers.IntegerField(
        min_value=-MAX_PRIORITY, max_value=MAX_PRIORITY, required=False, default=100
    )
    active = serializers.BooleanField(required=False, default=True)
    active_from = serializers.DateTimeField(required=False, allow_null=True, default=None)
    active_until = serializers.DateTimeField(required=False, allow_null=True, default=None)
    fires = serializers.ChoiceField(
        choices=FiringLimit.choices, required=False, default=FiringLimit.ONCE
    )
    stop_processing = serializers.BooleanField(required=False, default=False)
    conditions = ConditionTreeField(required=False, default=None)
    actions = ActionSpec(many=True, required=False, default=list)

    def validate(self, data: dict) -> dict:
        start, end = data.get("active_from"), data.get("active_until")
        if start and end and end <= start:
            raise serializers.ValidationError({"active_until": "Must be after 'active_from'."})
        return data


SPECS = {
    "tiers": TierSpec,
    "coupon_templates": CouponTemplateSpec,
    "notification_templates": NotificationTemplateSpec,
    "rules": RuleSpec,
}
