"""Test a rule on one member: each fact, each condition, the actions, and whether it would
fire, all without writing anything."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from benefits.models import Coupon, GrowthEntry, PointsEntry
from members.models import EngagementKind, Member, Tag, TierChange
from members.services import engagement_record
from notifications.models import Notification
from orders.models import Order
from orders.services import order_record, refund_record
from rules.models import Rule, RuleCondition, RuleFiring
from rules.selectors.explain import rule_explain
from rules.services.evaluation import member_evaluate
from tests.factories import (
    CouponTemplateFactory,
    MemberFactory,
    NotificationTemplateFactory,
    RuleFactory,
    TierFactory,
    action,
    condition,
)

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2024, 6, 15, 10, 0, tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
def frozen_now():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def tiers():
    return {
        "regular": TierFactory(code="regular", rank=0),
        "silver": TierFactory(code="silver", rank=1),
        "gold": TierFactory(code="gold", rank=2),
    }


def record(member, amount, *, days_ago=0, external_id=None):
    order, _ = order_record(
        external_id=external_id or f"SO-{member.external_id}-{member.orders.count() + 1}",
        member=member.external_id,
        amount=Decimal(amount),
        currency="CNY",
        placed_at=NOW - timedelta(days=days_ago, minutes=5),
    )
    return order


def explain(rule: Rule, member: Member):
    rule = Rule.objects.prefetch_related("conditions__event_kind", "actions").get(pk=rule.pk)
    return rule_explain(rule, Member.objects.select_related("tier").get(pk=member.pk))


def outcomes(explanation) -> list[tuple[int, object, bool]]:
    return [(c.number, c.actual, c.passed) for c in explanation.evaluation.conditions]


def written_rows() -> tuple[int, ...]:
    return (
        RuleFiring.objects.count(),
        PointsEntry.objects.count(),
        GrowthEntry.objects.count(),
        Coupon.objects.count(),
        TierChange.objects.count(),
        Notification.objects.count(),
    )


def test_nothing_is_written(tiers):
    # given: a rule the member qualifies for, with every kind of effect
    rule = RuleFactory()
    condition(rule, "lifetime_spend", "gte", 2000)
    action(rule, "set_tier", tier=tiers["silver"])
    action(rule, "issue_coupon", coupon_template=CouponTemplateFactory())
    action(rule, "award_points", points=500)
    action(rule, "award_growth_points", points=50)
    action(rule, "notify", notification_template=NotificationTemplateFactory())
    action(rule, "add_tag", tag=Tag.objects.create(code="vip", name="VIP"))
    member = MemberFactory(tier=tiers["regular"])
    order = record(member, "2500")
    before = written_rows()

    # when
    with CaptureQueriesContext(connection) as queries:
        explanation = explain(rule, member)

    # then
    assert explanation.would_fire
    assert written_rows() == before
    statements = [query["sql"].split()[0].upper() for query in queries]
    assert set(statements) <= {"SELECT"}, statements
    member.refresh_from_db()
    order.refresh_from_db()
    assert (member.tier, member.tags.count()) == (tiers["regular"], 0)
    assert not order.is_evaluated


def test_each_fact_and_each_condition_is_shown(tiers):
    # given: (spend ≥ 2000 and 2 orders in 30 days) or (regular and vip and order ≥ 500)
    vip = Tag.objects.create(code="vip", name="VIP")
    rule = RuleFactory(logic="(1 and 2) or (3 and 4 and 5)")
    condition(rule, "lifetime_spend", "gte", 2000)
    condition(rule, "orders_in_days", "gte", 2, days=30)
    condition(rule, "tier", "eq", "regular")
    condition(rule, "tags", "in", "vip")
    condition(rule, "order_amount", "gte", 500)
    member = MemberFactory(tier=tiers["regular"])
    member.tags.add(vip)
    record(member, "1500", days_ago=40)
    record(member, "600", days_ago=10, external_id="SO-LATEST")

    # when
    explanation = explain(rule, member)

    # then
    assert explanation.facts == [
        ("lifetime_spend", Decimal("2100.00")),
        ("order_amount", Decimal("600.00")),
        ("orders_in_days[30]", 1),
        ("tags", frozenset({"vip"})),
        ("tier", "regular"),
    ]
    assert outcomes(explanation) == [
        (1, Decimal("2100.00"), True),
        (2, 1, False),
        (3, "regular", True),
        (4, frozenset({"vip"}), True),
        (5, Decimal("600.00"), True),
    ]
    descriptions = [c.description for c in explanation.evaluation.conditions]
    assert descriptions[1] == "orders in the last 30 days ≥ 2"
    assert explanation.evaluation.matched
    assert explanation.would_fire
    assert "Triggering order: the latest, SO-LATEST." in explanation.notes


def test_a_member_who_does_not_qualify_is_told_which_condition_fails(tiers):
    # given
    rule = RuleFactory()
    condition(rule, "lifetime_spend", "gte", 2000)
    condition(rule, "tier_rank", "lt", 1)
    member = MemberFactory(tier=tiers["silver"])
    record(member, "2500")

    # when
    explanation = explain(rule, member)

    # then
    assert outcomes(explanation) == [(1, Decimal("2500.00"), True), (2, 1, False)]
    assert not explanation.evaluation.matched
    assert not explanation.would_fire


def test_the_actions_are_described(tiers):
    # given
    rule = RuleFactory()
    action(rule, "set_tier", tier=tiers["gold"], allow_downgrade=True)
    action(rule, "issue_coupon", coupon_template=CouponTemplateFactory(name="满300减50"))
    action(rule, "award_points", points=500)
    action(
        rule,
        "notify",
        notification_template=NotificationTemplateFactory(code="gold-sms", channel="sms"),
        channel="push",
    )
    action(rule, "webhook", webhook_url="https://erp.example.com/hook")
    member = MemberFactory(tier=tiers["regular"])
    record(member, "10")

    # when
    explanation = explain(rule, member)

    # then
    assert explanation.actions == [
        "set tier: Gold (may move down)",
        "issue coupon: 满300减50",
        "award points: 500",
        "send message: gold-sms (push)",
        "call webhook: https://erp.example.com/hook",
    ]


@pytest.mark.parametrize(
    "changes",
    [
        {"is_active": False},
        {"active_until": NOW - timedelta(days=1)},
        {"active_from": NOW + timedelta(days=1)},
    ],
)
def test_a_rule_that_is_not_live_would_not_fire(tiers, changes):
    # given: the member qualifies
    rule = RuleFactory(**changes)
    condition(rule, "lifetime_spend", "gte", 100)
    member = MemberFactory(tier=tiers["regular"])
    record(member, "500")

    # when
    explanation = explain(rule, member)

    # then
    assert explanation.evaluation.matched
    assert not explanation.would_fire
    assert "The rule is not active now, so it would not fire until it is." in explanation.notes


def test_a_once_rule_that_already_fired_would_not_fire_again(tiers):
    # given
    rule = RuleFactory(firing_limit="once")
    member = MemberFactory(tier=tiers["regular"])
    record(member, "500")
    RuleFiring.objects.create(
        rule=rule,
        member=member,
        occurrence_key="once",
        trigger="order_paid",
        rule_version=1,
        fired_at=NOW - timedelta(days=3),
    )

    # when
    explanation = explain(rule, member)

    # then
    assert explanation.evaluation.matched
    assert not explanation.would_fire
    assert "It already fired for this member (once per member, ever)." in explanation.notes


def test_an_every_time_rule_that_fired_before_would_fire_again(tiers):
    # given
    rule = RuleFactory(firing_limit="every_time")
    member = MemberFactory(tier=tiers["regular"])
    order = record(member, "500")
    RuleFiring.objects.create(
        rule=rule,
        member=member,
        occurrence_key="order:0",
        trigger="order_paid",
        rule_version=1,
        order=order,
    )

    # when / then
    assert explain(rule, member).would_fire


def test_a_rule_whose_budget_is_spent_would_not_fire(tiers):
    # given: the first member only, and another member has had it
    rule = RuleFactory(budget=1)
    action(rule, "award_points", points=10)
    first = MemberFactory(tier=tiers["regular"])
    order = record(first, "500")
    member_evaluate(member_id=first.pk, trigger="order_paid", subject_id=order.pk)
    assert RuleFiring.objects.filter(rule=rule).count() == 1
    member = MemberFactory(tier=tiers["regular"])
    record(member, "500")

    # when
    explanation = explain(rule, member)

    # then: the engine would not fire it, so neither may the test say it would
    assert explanation.evaluation.matched
    assert not explanation.would_fire


def test_an_order_rule_for_a_member_without_orders_would_not_fire(tiers):
    # given
    rule = RuleFactory()
    member = MemberFactory(tier=tiers["regular"])

    # when
    explanation = explain(rule, member)

    # then
    assert not explanation.would_fire
    assert "The member has no orders." in explanation.notes


def test_the_latest_order_stands_in_for_the_triggering_one(tiers):
    # given
    rule = RuleFactory()
    condition(rule, "order_amount", "gte", 1000)
    member = MemberFactory(tier=tiers["regular"])
    record(member, "5000", days_ago=3)
    record(member, "20", days_ago=1, external_id="SO-LAST")

    # when
    explanation = explain(rule, member)

    # then
    assert outcomes(explanation) == [(1, Decimal("20.00"), False)]
    assert "Triggering order: the latest, SO-LAST." in explanation.notes


def test_the_latest_refund_stands_in_for_a_refund_rule(tiers):
    # given
    rule = RuleFactory(trigger="order_refunded")
    condition(rule, "refund_amount", "gte", 100)
    condition(rule, "lifetime_spend", "lt", 1000)
    member = MemberFactory(tier=tiers["regular"])
    record(member, "1000", external_id="SO-R")
    refund_record(order_external_id="SO-R", external_id="RF-1", amount=Decimal("300"))

    # when
    explanation = explain(rule, member)

    # then
    assert outcomes(explanation) == [
        (1, Decimal("300.00"), True),
        (2, Decimal("700.00"), True),
    ]
    assert explanation.would_fire
    assert "Triggering refund: the latest, RF-1." in explanation.notes


def test_an_engagement_rule_uses_the_latest_engagement_of_its_kind(tiers):
    # given
    review = EngagementKind.objects.create(code="review", name="Review")
    EngagementKind.objects.create(code="share", name="Share")
    rule = RuleFactory(trigger="engagement", engagement_kind=review)
    condition(rule, "engagement_kind", "eq", "review")
    RuleCondition.objects.create(
        rule=rule,
        position=2,
        fact="engagements_in_days",
        op="gte",
        value="1",
        days=7,
        event_kind=review,
    )
    member = MemberFactory(tier=tiers["regular"])
    for external_id, kind, days_ago in [("EV-R", "review", 2), ("EV-S", "share", 1)]:
        engagement_record(
            external_id=external_id,
            member=member.external_id,
            kind=kind,
            occurred_at=NOW - timedelta(days=days_ago),
        )

    # when
    explanation = explain(rule, member)

    # then
    assert outcomes(explanation) == [(1, "review", True), (2, 1, True)]
    assert explanation.would_fire
    assert "Triggering engagement: the latest, EV-R." in explanation.notes


def test_a_birthday_rule_fires_only_on_the_birthday(tiers):
    # given: one member born on this day, one the day after
    rule = RuleFactory(trigger="birthday")
    today = MemberFactory(tier=tiers["regular"], birthday=date(1990, 6, 15))
    tomorrow = MemberFactory(tier=tiers["regular"], birthday=date(1990, 6, 16))

    # when
    on_the_day, not_yet = explain(rule, today), explain(rule, tomorrow)

    # then
    assert on_the_day.would_fire
    assert not not_yet.would_fire
    assert "Its trigger (birthday) does not happen to the member today." in not_yet.notes


def test_a_tier_expiring_rule_fires_n_days_before_the_lapse(tiers):
    # given
    rule = RuleFactory(trigger="tier_expiring", trigger_days=15)
    condition(rule, "days_until_tier_lapses", "eq", 15)
    lapse = timezone.make_aware(datetime(2024, 6, 30, 23, 0))
    due = MemberFactory(tier=tiers["gold"], tier_expires_at=lapse)
    later = MemberFactory(tier=tiers["gold"], tier_expires_at=lapse + timedelta(days=1))

    # when
    due_explained, later_explained = explain(rule, due), explain(rule, later)

    # then
    assert due_explained.would_fire
    assert outcomes(due_explained) == [(1, 15, True)]
    assert not later_explained.would_fire
    assert outcomes(later_explained) == [(1, 16, False)]


def test_a_member_joined_rule_has_no_stand_in_to_find(tiers):
    # given
    rule = RuleFactory(trigger="member_joined")
    condition(rule, "days_since_joined", "eq", 0)
    member = MemberFactory(tier=tiers["regular"])

    # when
    explanation = explain(rule, member)

    # then
    assert outcomes(explanation) == [(1, 0, True)]
    assert explanation.would_fire
    assert not Order.objects.exists()
