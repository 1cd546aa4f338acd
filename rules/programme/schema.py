"""The programme file's shape, validated with DRF serializers so that every error comes
with the path to the value at fault. Most sections take their fields, limits and
defaults from the models; rules use the file's own, shorter names. Cross-references (a
rule naming a tier the file does not define) are checked by the loader, which knows the
whole file."""

from typing import Any

from rest_framework import serializers

from benefits.models import CouponTemplate, EarningPolicy
from core.api import StrictModelSerializer, StrictSerializer
from members import services as member_services
from members.models import EngagementKind, Tag, Tier
from notifications.models import Channel, NotificationTemplate
from notifications.rendering import template_errors

from ..engine.conditions import OPERATORS
from ..engine.facts import FACTS
from ..models import (
    MAX_DAYS,
    MAX_POINTS,
    MAX_PRIORITY,
    ActionKind,
    FiringLimit,
    RuleCondition,
    Trigger,
)

# In the order they load: later sections may refer to earlier ones.
LIST_SECTIONS = (
    "tiers",
    "tags",
    "engagement_kinds",
    "coupon_templates",
    "notification_templates",
    "rules",
)
SECTIONS = ("earning", *LIST_SECTIONS)


class TierSpec(StrictModelSerializer):
    class Meta:
        model = Tier
        fields = ["code", *member_services.TIER_FIELDS]


class TagSpec(StrictModelSerializer):
    class Meta:
        model = Tag
        fields = ["code", "name"]


class EngagementKindSpec(StrictModelSerializer):
    active = serializers.BooleanField(source="is_active", required=False, default=True)

    class Meta:
        model = EngagementKind
        fields = ["code", "name", "growth_points", "daily_cap", "active"]


class EarningSpec(StrictModelSerializer):
    class Meta:
        model = EarningPolicy
        fields = ["points_per_unit", "growth_per_unit", "points_expiry", "points_valid_days"]


class CouponTemplateSpec(StrictModelSerializer):
    class Meta:
        model = CouponTemplate
        fields = [
            "code",
            "name",
            "discount",
            "min_spend",
            "amount_off",
            "percent_off",
            "max_discount",
            "valid_days",
            "valid_from",
            "valid_until",
            "per_member_limit",
            "budget",
            "stacking",
        ]


class NotificationTemplateSpec(StrictModelSerializer):
    class Meta:
        model = NotificationTemplate
        fields = ["code", "name", "channel", "purpose", "body", "body_en"]

    def validate_body(self, value: str) -> str:
        if errors := template_errors(value):
            raise serializers.ValidationError(errors)
        return value

    def validate_body_en(self, value: str) -> str:
        return self.validate_body(value) if value else value


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
    kind = serializers.SlugField(
        required=False, help_text="An engagement kind, for engagements_in_days."
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
    # The key each action type needs.
    NEEDS = {
        ActionKind.SET_TIER: "tier",
        ActionKind.ISSUE_COUPON: "template",
        ActionKind.AWARD_POINTS: "points",
        ActionKind.AWARD_GROWTH_POINTS: "points",
        ActionKind.NOTIFY: "template",
        ActionKind.ADD_TAG: "tag",
        ActionKind.REMOVE_TAG: "tag",
        ActionKind.WEBHOOK: "url",
    }
    OPTIONAL = {ActionKind.SET_TIER: {"allow_downgrade"}, ActionKind.NOTIFY: {"channel"}}

    type = serializers.ChoiceField(choices=ActionKind.choices)
    tier = serializers.SlugField(required=False)
    allow_downgrade = serializers.BooleanField(required=False)
    template = serializers.SlugField(required=False)
    points = serializers.IntegerField(min_value=1, max_value=MAX_POINTS, required=False)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)
    tag = serializers.SlugField(required=False)
    url = serializers.URLField(max_length=500, required=False)

    def validate(self, data: dict) -> dict:
        kind = data["type"]
        needed = self.NEEDS[kind]
        errors = {}
        if needed not in data:
            errors[needed] = f"'{kind}' needs '{needed}'."
        allowed = {"type", needed, *self.OPTIONAL.get(kind, ())}
        for name in sorted(set(data) - allowed):
            errors[name] = f"'{kind}' does not take '{name}'."
        if errors:
            raise serializers.ValidationError(errors)
        return data


class RuleSpec(StrictSerializer):
    code = serializers.SlugField(max_length=50)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, default="", allow_blank=True)
    trigger = serializers.ChoiceField(choices=Trigger.choices)
    days = serializers.IntegerField(min_value=1, max_value=MAX_DAYS, required=False, default=None)
    kind = serializers.SlugField(required=False, default=None)
    priority = serializers.IntegerField(
        min_value=-MAX_PRIORITY, max_value=MAX_PRIORITY, required=False, default=100
    )
    active = serializers.BooleanField(required=False, default=True)
    active_from = serializers.DateTimeField(required=False, allow_null=True, default=None)
    active_until = serializers.DateTimeField(required=False, allow_null=True, default=None)
    fires = serializers.ChoiceField(
        choices=FiringLimit.choices, required=False, default=FiringLimit.ONCE
    )
    budget = serializers.IntegerField(min_value=1, required=False, default=None)
    stop_processing = serializers.BooleanField(required=False, default=False)
    conditions = ConditionTreeField(required=False, default=None)
    actions = ActionSpec(many=True, required=False, default=list)

    def validate(self, data: dict) -> dict:
        start, end = data.get("active_from"), data.get("active_until")
        if start and end and end <= start:
            raise serializers.ValidationError({"active_until": "Must be after 'active_from'."})
        trigger = data["trigger"]
        # tier_expiring without days uses each tier's remind_days_before
        needs_days = trigger in (Trigger.INACTIVE, Trigger.POINTS_EXPIRING)
        if needs_days and data["days"] is None:
            raise serializers.ValidationError({"days": f"'{trigger}' needs 'days' (N)."})
        if not needs_days and data["days"] is not None:
            raise serializers.ValidationError({"days": f"'{trigger}' does not take 'days'."})
        if data["kind"] is not None and trigger != Trigger.ENGAGEMENT:
            raise serializers.ValidationError({"kind": "Only the engagement trigger takes 'kind'."})
        return data


SPECS = {
    "earning": EarningSpec,
    "tiers": TierSpec,
    "tags": TagSpec,
    "engagement_kinds": EngagementKindSpec,
    "coupon_templates": CouponTemplateSpec,
    "notification_templates": NotificationTemplateSpec,
    "rules": RuleSpec,
}
