"""Small factories; each test builds the data it reads."""

from decimal import Decimal

import factory
from django.utils import timezone

from benefits.models import CouponTemplate
from members.models import Member, Tier
from notifications.models import NotificationTemplate
from rules.models import Rule, RuleAction, RuleCondition


class TierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tier
        django_get_or_create = ["code"]

    code = factory.Sequence(lambda n: f"tier-{n}")
    name = factory.LazyAttribute(lambda tier: tier.code.title())
    rank = factory.Sequence(lambda n: n)
    discount_percent = Decimal(0)


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member

    external_id = factory.Sequence(lambda n: f"M-{n}")
    name = "王先生"
    phone = "13800138000"
    joined_at = factory.LazyFunction(timezone.now)


class CouponTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CouponTemplate

    code = factory.Sequence(lambda n: f"coupon-{n}")
    name = "满300减50"
    min_spend = Decimal(300)
    amount_off = Decimal(50)
    valid_days = 15


class NotificationTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NotificationTemplate

    code = factory.Sequence(lambda n: f"message-{n}")
    channel = "sms"
    body = "{{ member.name }}: {{ tier.name }}"


class RuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rule

    code = factory.Sequence(lambda n: f"rule-{n:03d}")
    name = factory.LazyAttribute(lambda rule: rule.code)
    trigger = "order_paid"
    is_active = True


def condition(rule: Rule, fact: str, op: str, value, days: int | None = None) -> RuleCondition:
    return RuleCondition.objects.create(
        rule=rule,
        position=rule.conditions.count() + 1,
        fact=fact,
        op=op,
        value=str(value),
        days=days,
    )


def action(rule: Rule, kind: str, **target) -> RuleAction:
    return RuleAction.objects.create(
        rule=rule, position=rule.actions.count() + 1, kind=kind, **target
    )


def rule_form(**overrides) -> dict:
    """The admin's rule add form, posted: two conditions, one action."""
    data = {
        "code": "big-spender",
        "name": "Big spender",
        "description": "",
        "trigger": "order_paid",
        "is_active": "on",
        "priority": "5",
        "firing_limit": "once",
        "logic": "1 or 2",
        "conditions-TOTAL_FORMS": "2",
        "conditions-INITIAL_FORMS": "0",
        "conditions-0-position": "1",
        "conditions-0-fact": "lifetime_spend",
        "conditions-0-op": "gte",
        "conditions-0-value": "5000",
        "conditions-1-position": "2",
        "conditions-1-fact": "orders_in_days",
        "conditions-1-op": "gte",
        "conditions-1-value": "10",
        "conditions-1-days": "365",
        "actions-TOTAL_FORMS": "1",
        "actions-INITIAL_FORMS": "0",
        "revisions-TOTAL_FORMS": "0",
        "revisions-INITIAL_FORMS": "0",
        "actions-0-position": "1",
        "actions-0-kind": "award_points",
        "actions-0-points": "300",
    }
    data.update(overrides)
    return data
