"""Simulation: replay the last N days as if the rule had been live, with the facts as they
stood at each moment, and count what it would have done and cost. Nothing is written."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from benefits.models import Coupon, EarningPolicy, GrowthEntry, PointsEntry
from members.models import EngagementKind, TierChange
from members.services import engagement_record
from notifications.models import Notification
from orders.services import order_record, refund_record
from rules.models import Rule, RuleCondition, RuleFiring
from rules.selectors import simulation
from rules.selectors.simulation import rule_simulate
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
NOW = datetime(2024, 6, 30, 12, 0, tzinfo=SHANGHAI)
NOTHING = {
    "occurrences": 0,
    "firings": 0,
    "members": 0,
    "coupons": 0,
    "coupon_value": "0.00",
    "points": 0,
    "growth_points": 0,
    "tier_changes": 0,
    "messages": 0,
    "over_budget": 0,
}


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


def record(member, amount, days_ago, *, hours=0):
    order, _ = order_record(
        external_id=f"SO-{member.external_id}-{member.orders.count() + 1}",
        member=member.external_id,
        amount=Decimal(amount),
        currency="CNY",
        placed_at=NOW - timedelta(days=days_ago, hours=hours),
    )
    return order


def simulate(rule: Rule, days: int = 30, **kwargs) -> dict:
    rule = Rule.objects.prefetch_related("conditions__event_kind", "actions").get(pk=rule.pk)
    return rule_simulate(rule, days=days, **kwargs)


def counts(result: dict) -> dict:
    return {key: result[key] for key in NOTHING}


def test_a_member_crossing_2000_on_their_third_order_is_counted_once(tiers):
    # given: Silver at 2000, with a coupon, points, growth points and an SMS
    rule = RuleFactory(is_active=False)
    condition(rule, "lifetime_spend", "gte", 2000)
    condition(rule, "tier_rank", "lt", 1)
    action(rule, "set_tier", tier=tiers["silver"])
    action(rule, "issue_coupon", coupon_template=CouponTemplateFactory(amount_off=Decimal(50)))
    action(rule, "award_points", points=500)
    action(rule, "award_growth_points", points=100)
    action(rule, "notify", notification_template=NotificationTemplateFactory())
    member = MemberFactory(tier=tiers["regular"])
    record(member, "1000", days_ago=40)  # before the window, but part of lifetime spend
    record(member, "600", days_ago=20)
    record(member, "500", days_ago=10)  # 2100: crosses here
    record(member, "300", days_ago=5)

    # when
    result = simulate(rule, days=30)

    # then
    assert counts(result) == {
        "occurrences": 3,
        "firings": 1,
        "members": 1,
        "coupons": 1,
        "coupon_value": "50.00",
        "points": 500,
        "growth_points": 100,
        "tier_changes": 1,
        "messages": 1,
        "over_budget": 0,
    }
    assert result["days"] == 30
    assert datetime.fromisoformat(result["to"]) == NOW
    assert datetime.fromisoformat(result["from"]) == NOW - timedelta(days=30)


def test_orders_before_the_window_count_toward_lifetime_spend(tiers):
    # given: without the old order, the member never reaches 2000
    rule = RuleFactory()
    condition(rule, "lifetime_spend", "gte", 2000)
    with_history, without = MemberFactory(), MemberFactory()
    record(with_history, "1500", days_ago=100)
    for member in (with_history, without):
        record(member, "600", days_ago=3)

    # when / then
    assert counts(simulate(rule))["firings"] == 1


def test_facts_are_taken_as_they_stood_at_each_order(tiers):
    # given: an every-time rule that holds only at the third order: 3 orders, 2100 spent,
    # 1100 of it in the 15 days before
    rule = RuleFactory(firing_limit="every_time")
    condition(rule, "order_count", "eq", 3)
    condition(rule, "lifetime_spend", "eq", "2100")
    condition(rule, "spend_in_days", "eq", "1100", days=15)
    member = MemberFactory(tier=tiers["regular"])
    record(member, "1000", days_ago=40)
    record(member, "600", days_ago=20)
    record(member, "500", days_ago=10)
    record(member, "300", days_ago=5)

    # when
    result = simulate(rule)

    # then
    assert (result["occurrences"], result["firings"]) == (3, 1)


def test_the_tier_comes_from_the_tier_history(tiers):
    # given: Silver today, but Regular until 15 days ago
    rule = RuleFactory(firing_limit="every_time")
    condition(rule, "tier", "eq", "regular")
    member = MemberFactory(tier=tiers["silver"])
    TierChange.objects.create(
        member=member,
        from_tier=tiers["regular"],
        to_tier=tiers["silver"],
        reason="by hand",
        created_at=NOW - timedelta(days=15),
    )
    record(member, "100", days_ago=20)
    record(member, "100", days_ago=10)
    record(member, "100", days_ago=5)

    # when / then: only the order placed while Regular
    assert simulate(rule)["firings"] == 1


def test_balances_come_from_the_ledgers_as_they_stood(tiers):
    # given: 300 points, 250 of them earned 10 days ago
    rule = RuleFactory(firing_limit="every_time")
    condition(rule, "points_balance", "gte", 300)
    member = MemberFactory(tier=tiers["regular"])
    PointsEntry.objects.create(
        member=member, kind="bonus", points=50, reason="t", created_at=NOW - timedelta(days=60)
    )
    PointsEntry.objects.create(
        member=member, kind="bonus", points=250, reason="t", created_at=NOW - timedelta(days=10)
    )
    record(member, "100", days_ago=20)
    record(member, "100", days_ago=5)

    # when / then
    assert simulate(rule)["firings"] == 1


def test_the_rules_own_earlier_effects_are_carried_forward(tiers):
    # given: every time, while below Silver: move to Silver; while under 1000 points: 600
    upgrade = RuleFactory(code="upgrade", firing_limit="every_time")
    condition(upgrade, "tier_rank", "lt", 1)
    action(upgrade, "set_tier", tier=tiers["silver"])
    points = RuleFactory(code="points", firing_limit="every_time")
    condition(points, "points_balance", "lt", 1000)
    action(points, "award_points", points=600)
    member = MemberFactory(tier=tiers["regular"])
    for days_ago in (20, 10, 5):
        record(member, "100", days_ago=days_ago)

    # when
    upgraded, awarded = simulate(upgrade), simulate(points)

    # then
    assert (upgraded["firings"], upgraded["tier_changes"]) == (1, 1)
    assert (awarded["firings"], awarded["points"]) == (2, 1200)


def test_a_member_the_rule_already_fired_for_once_is_not_counted(tiers):
    # given
    rule = RuleFactory(firing_limit="once")
    action(rule, "award_points", points=10)
    fired, fresh = MemberFactory(), MemberFactory()
    RuleFiring.objects.create(
        rule=rule, member=fired, occurrence_key="once", trigger="order_paid", rule_version=1
    )
    for member in (fired, fresh):
        record(member, "100", days_ago=10)
        record(member, "100", days_ago=5)

    # when
    result = simulate(rule)

    # then
    assert counts(result) == {
        **NOTHING,
        "occurrences": 4,
        "firings": 1,
        "members": 1,
        "points": 10,
    }


def test_the_firing_limit_holds_per_period(tiers):
    # given: once a month, orders on 10 and 20 May and on 5 and 25 June
    rule = RuleFactory(firing_limit="per_month")
    member = MemberFactory()
    for day in (date(2024, 5, 10), date(2024, 5, 20), date(2024, 6, 5), date(2024, 6, 25)):
        record(member, "100", days_ago=(NOW.date() - day).days)

    # when
    result = simulate(rule, days=60)

    # then
    assert (result["occurrences"], result["firings"], result["members"]) == (4, 2, 1)


def test_the_budget_caps_firings_in_time_order(tiers):
    # given: a budget of 2; the member created last ordered first, twice
    rule = RuleFactory(firing_limit="every_time", budget=2)
    action(rule, "award_points", points=10)
    early_y, early_z = MemberFactory(), MemberFactory()
    first = MemberFactory()
    record(first, "100", days_ago=20)
    record(first, "100", days_ago=19)
    record(early_y, "100", days_ago=5)
    record(early_z, "100", days_ago=4)

    # when
    result = simulate(rule)

    # then: the two earliest firings, both the first member's
    assert counts(result) == {
        **NOTHING,
        "occurrences": 4,
        "firings": 2,
        "members": 1,
        "points": 20,
        "over_budget": 2,
    }


def test_firings_already_made_are_taken_off_the_budget(tiers):
    # given: 3 in all, 1 spent live 40 days ago
    rule = RuleFactory(budget=3)
    action(rule, "award_points", points=10)
    earlier = MemberFactory()
    order = record(earlier, "100", days_ago=40)
    member_evaluate(member_id=earlier.pk, trigger="order_paid", subject_id=order.pk)
    for _ in range(4):
        record(MemberFactory(), "100", days_ago=2)

    # when
    result = simulate(rule)

    # then
    assert (result["firings"], result["over_budget"]) == (2, 2)


def test_coupon_value_is_the_sum_of_the_coupons_as_a_decimal_string(tiers):
    # given
    rule = RuleFactory()
    action(rule, "issue_coupon", coupon_template=CouponTemplateFactory(amount_off="33.33"))
    action(rule, "webhook", webhook_url="https://erp.example.com/hook")
    for _ in range(3):
        record(MemberFactory(), "100", days_ago=2)

    # when
    result = simulate(rule)

    # then
    assert (result["coupons"], result["coupon_value"], result["webhooks"]) == (3, "99.99", 3)


def test_nothing_is_written(tiers):
    # given
    rule = RuleFactory(budget=100)
    action(rule, "set_tier", tier=tiers["silver"])
    action(rule, "issue_coupon", coupon_template=CouponTemplateFactory())
    action(rule, "award_points", points=500)
    action(rule, "award_growth_points", points=5)
    action(rule, "notify", notification_template=NotificationTemplateFactory())
    member = MemberFactory(tier=tiers["regular"])
    record(member, "2500", days_ago=3)
    rows = (Coupon, GrowthEntry, PointsEntry, TierChange, Notification, RuleFiring)
    before = [model.objects.count() for model in rows]

    # when
    with CaptureQueriesContext(connection) as queries:
        result = simulate(rule)

    # then
    assert result["firings"] == 1
    assert [model.objects.count() for model in rows] == before
    assert {query["sql"].split()[0].upper() for query in queries} == {"SELECT"}
    member.refresh_from_db()
    assert member.tier == tiers["regular"]


def test_a_refund_rule_replays_the_refunds_in_the_window(tiers):
    # given: a refund 40 days ago, and two in the window, one of them of at least 100
    rule = RuleFactory(trigger="order_refunded", firing_limit="every_time")
    condition(rule, "refund_amount", "gte", 100)
    member = MemberFactory()
    order = record(member, "1000", days_ago=50)
    for n, (amount, days_ago) in enumerate([("100", 40), ("150", 10), ("20", 5)]):
        refund_record(
            order_external_id=order.external_id,
            external_id=f"RF-{n}",
            amount=Decimal(amount),
            refunded_at=NOW - timedelta(days=days_ago),
        )

    # when
    result = simulate(rule)

    # then
    assert (result["occurrences"], result["firings"]) == (2, 1)


def test_an_engagement_rule_replays_the_engagements_of_its_kind(tiers):
    # given: exactly 2 reviews in the 7 days up to each review; a share is not a review
    review = EngagementKind.objects.create(code="review", name="Review")
    EngagementKind.objects.create(code="share", name="Share")
    rule = RuleFactory(trigger="engagement", engagement_kind=review, firing_limit="every_time")
    RuleCondition.objects.create(
        rule=rule,
        position=1,
        fact="engagements_in_days",
        op="eq",
        value="2",
        days=7,
        event_kind=review,
    )
    member = MemberFactory()
    events = [("review", 9), ("share", 7), ("review", 6), ("review", 4), ("review", 1)]
    for n, (kind, days_ago) in enumerate(events):
        engagement_record(
            external_id=f"EV-{n}",
            member=member.external_id,
            kind=kind,
            occurred_at=NOW - timedelta(days=days_ago),
        )

    # when
    result = simulate(rule, days=8)

    # then: the reviews 6, 4 and 1 days ago are replayed; only the first sees exactly two
    # (9 and 6 days ago); the later ones see three
    assert (result["occurrences"], result["firings"]) == (3, 1)


def test_a_member_joined_rule_replays_the_new_members(tiers):
    # given
    rule = RuleFactory(trigger="member_joined")
    action(rule, "award_points", points=100)
    MemberFactory(joined_at=NOW - timedelta(days=40))
    MemberFactory(joined_at=NOW - timedelta(days=10))
    MemberFactory(joined_at=NOW - timedelta(days=1))

    # when
    result = simulate(rule)

    # then
    assert (result["occurrences"], result["firings"], result["points"]) == (2, 2, 200)


def test_a_birthday_rule_replays_each_day(tiers):
    # given: birthdays in the window (10 June), before it (20 May) and after it (1 July)
    rule = RuleFactory(trigger="birthday", firing_limit="every_time")
    action(rule, "award_points", points=88)
    MemberFactory(birthday=date(1990, 6, 10))
    MemberFactory(birthday=date(1990, 5, 20))
    MemberFactory(birthday=date(1990, 7, 1))

    # when
    result = simulate(rule)

    # then
    assert (result["occurrences"], result["firings"], result["points"]) == (1, 1, 88)


def test_an_inactivity_rule_replays_the_days_the_member_had_gone_without_an_order(tiers):
    # given: no order for 30 days, as of 40 days ago (orders 70 and 10 days ago)
    rule = RuleFactory(trigger="inactive", trigger_days=30, firing_limit="every_time")
    action(rule, "award_points", points=5)
    member = MemberFactory(joined_at=NOW - timedelta(days=100))
    record(member, "100", days_ago=70)
    record(member, "100", days_ago=10)

    # when
    result = simulate(rule, days=60)

    # then: the reminder the live rule would have sent 40 days ago
    assert (result["occurrences"], result["firings"]) == (1, 1)


def test_members_are_replayed_in_batches_with_progress(tiers, monkeypatch):
    # given
    monkeypatch.setattr(simulation, "MEMBERS_PER_BATCH", 2)
    rule = RuleFactory()
    condition(rule, "lifetime_spend", "gte", 100)
    for _ in range(5):
        record(MemberFactory(), "100", days_ago=1)
    seen = []

    # when
    result = simulate(rule, progress=lambda done, total: seen.append((done, total)))

    # then
    assert result["firings"] == 5
    assert seen == [(2, 5), (4, 5), (5, 5)]


def test_a_draft_agrees_with_what_the_same_rule_live_did(tiers):
    # given: growth points from spend (1 per 10), a live rule at 150 growth points, and
    # a draft twin; each order is evaluated a minute after it is placed, as the ERP posts
    EarningPolicy.objects.update_or_create(pk=1, defaults={"growth_per_unit": Decimal("0.1")})
    live, draft = RuleFactory(code="live"), RuleFactory(code="draft", is_active=False)
    for rule in (live, draft):
        condition(rule, "growth_points", "gte", 150)
        action(rule, "award_points", points=10)
    member = MemberFactory()
    for amount, days_ago in (("1000", 20), ("600", 10)):
        order = record(member, amount, days_ago=days_ago)
        with time_machine.travel(order.placed_at + timedelta(minutes=1), tick=False):
            member_evaluate(member_id=member.pk, trigger="order_paid", subject_id=order.pk)
    assert RuleFiring.objects.filter(rule=live).count() == 1

    # when
    result = simulate(draft)

    # then: the engine saw the growth points the second order itself earned
    assert result["firings"] == 1


def test_a_rule_with_nothing_in_the_window_costs_nothing(tiers):
    rule = RuleFactory()
    record(MemberFactory(), "100", days_ago=45)
    assert counts(simulate(rule)) == NOTHING
