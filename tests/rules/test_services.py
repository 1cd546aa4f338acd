from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from benefits.models import Coupon, EarningPolicy, PointsEntry
from members.models import TierChange
from notifications.models import Notification
from orders.models import Order
from orders.services import order_record
from rules.models import RuleFiring
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


def record(member, amount, external_id=None, placed_at=None):
    """An order recorded the way the API records it, but not yet evaluated."""
    order, _ = order_record(
        external_id=external_id or f"SO-{Order.objects.count() + 1}",
        member=member.external_id,
        amount=Decimal(amount),
        currency="CNY",
        placed_at=placed_at or timezone.now() - timedelta(minutes=1),
    )
    return order


def evaluate(order):
    return member_evaluate(member_id=order.member_id, trigger="order_paid", subject_id=order.pk)


@pytest.fixture
def tiers():
    return {
        "regular": TierFactory(code="regular", rank=0),
        "silver": TierFactory(code="silver", rank=1, discount_percent=5),
        "gold": TierFactory(code="gold", rank=2, discount_percent=10),
    }


@pytest.fixture
def upgrade_rule(tiers):
    """Silver at 2000, with a coupon, 500 points and an SMS."""
    rule = RuleFactory(code="silver-at-2000", priority=20)
    condition(rule, "lifetime_spend", "gte", 2000)
    condition(rule, "tier_rank", "lt", 1)
    action(rule, "set_tier", tier=tiers["silver"])
    action(rule, "issue_coupon", coupon_template=CouponTemplateFactory())
    action(rule, "award_points", points=500)
    action(rule, "notify", notification_template=NotificationTemplateFactory())
    return rule


def effects(member) -> tuple[int, int, int, int, int]:
    return (
        RuleFiring.objects.filter(member=member).count(),
        TierChange.objects.filter(member=member).count(),
        Coupon.objects.filter(member=member).count(),
        PointsEntry.objects.filter(member=member).count(),
        Notification.objects.filter(member=member).count(),
    )


def test_crossing_the_threshold_applies_every_action_once(upgrade_rule, tiers):
    # given
    member = MemberFactory(tier=tiers["regular"])

    # when
    evaluate(record(member, "1500"))
    evaluate(record(member, "600"))

    # then
    member.refresh_from_db()
    assert member.tier == tiers["silver"]
    assert effects(member) == (1, 1, 1, 1, 1)
    firing = RuleFiring.objects.get(member=member)
    assert firing.facts == {"lifetime_spend": "2100.00", "tier_rank": 0}
    assert firing.rule_version == upgrade_rule.version


def test_below_the_threshold_nothing_happens(upgrade_rule, tiers):
    member = MemberFactory(tier=tiers["regular"])
    evaluate(record(member, "1999.99"))
    assert effects(member) == (0, 0, 0, 0, 0)


def test_evaluating_the_same_order_twice_changes_nothing_the_second_time(upgrade_rule, tiers):
    # given
    member = MemberFactory(tier=tiers["regular"])
    order = record(member, "2500")
    evaluate(order)

    # when
    again = evaluate(order)

    # then
    assert again.skipped
    assert effects(member) == (1, 1, 1, 1, 1)


def test_a_once_rule_does_not_fire_again_for_a_later_order(upgrade_rule, tiers):
    # given: the member qualifies again after being moved down by hand
    member = MemberFactory(tier=tiers["regular"])
    evaluate(record(member, "2500"))
    member.refresh_from_db()
    member.tier = tiers["regular"]
    member.save()

    # when
    evaluate(record(member, "100"))

    # then
    assert effects(member)[0] == 1


def test_an_every_time_rule_fires_once_per_order(tiers):
    # given
    rule = RuleFactory(firing_limit="every_time")
    condition(rule, "order_amount", "gte", 100)
    action(rule, "award_points", points=10)
    member = MemberFactory(tier=tiers["regular"])
    first, second = record(member, "150"), record(member, "120")

    # when
    for order in (first, second, first):
        evaluate(order)

    # then
    assert PointsEntry.objects.filter(member=member).count() == 2


def test_the_firing_record_is_unique_per_rule_member_and_occurrence(upgrade_rule, tiers):
    member = MemberFactory(tier=tiers["regular"])
    evaluate(record(member, "2500"))
    firing = RuleFiring.objects.get(member=member)
    with pytest.raises(IntegrityError):
        RuleFiring.objects.create(
            rule=firing.rule,
            member=member,
            occurrence_key=firing.occurrence_key,
            trigger="order_paid",
            rule_version=1,
        )


def test_rules_apply_by_priority_and_see_each_others_effects(upgrade_rule, tiers):
    # given: a Gold rule checked before Silver
    gold = RuleFactory(code="gold-at-10000", priority=10)
    condition(gold, "lifetime_spend", "gte", 10000)
    condition(gold, "tier_rank", "lt", 2)
    action(gold, "set_tier", tier=tiers["gold"])
    member = MemberFactory(tier=tiers["regular"])

    # when: one order crosses both lines
    evaluate(record(member, "12000"))

    # then: straight to Gold; the Silver rule sees rank 2 and does not fire
    member.refresh_from_db()
    assert member.tier == tiers["gold"]
    assert list(RuleFiring.objects.values_list("rule__code", flat=True)) == ["gold-at-10000"]


def test_equal_priorities_apply_in_code_order(tiers):
    # given
    fired = []
    for code in ("b-rule", "a-rule"):
        rule = RuleFactory(code=code, priority=5)
        action(rule, "award_points", points=1)
        fired.append(rule)
    member = MemberFactory(tier=tiers["regular"])

    # when
    evaluate(record(member, "10"))

    # then
    codes = RuleFiring.objects.order_by("pk").values_list("rule__code", flat=True)
    assert list(codes) == ["a-rule", "b-rule"]


def test_stop_processing_skips_lower_priority_rules(tiers):
    # given
    first = RuleFactory(code="first", priority=1, stop_processing=True)
    action(first, "award_points", points=1)
    second = RuleFactory(code="second", priority=2)
    action(second, "award_points", points=1)
    member = MemberFactory(tier=tiers["regular"])

    # when
    evaluate(record(member, "10"))

    # then
    assert list(RuleFiring.objects.values_list("rule__code", flat=True)) == ["first"]


@pytest.mark.parametrize(
    ("changes", "fires"),
    [
        ({"is_active": False}, False),
        ({"active_from": timezone.now() + timedelta(days=1)}, False),
        ({"active_until": timezone.now() - timedelta(days=1)}, False),
        ({"active_from": timezone.now() - timedelta(days=1)}, True),
        ({"trigger": "order_paid"}, True),
    ],
)
def test_only_live_rules_fire(tiers, changes, fires):
    rule = RuleFactory(**changes)
    action(rule, "award_points", points=1)
    member = MemberFactory(tier=tiers["regular"])
    evaluate(record(member, "10"))
    assert RuleFiring.objects.exists() is fires


def test_a_downgrade_needs_the_rule_to_allow_it(tiers):
    # given
    member = MemberFactory(tier=tiers["gold"])
    rule = RuleFactory(code="down", firing_limit="every_time")
    action(rule, "set_tier", tier=tiers["silver"])

    # when
    evaluate(record(member, "10"))
    member.refresh_from_db()
    stayed = member.tier
    rule.actions.update(allow_downgrade=True)
    rule.save()  # as every edit of a rule does: the engine sees the rule changed
    evaluate(record(member, "10"))

    # then
    member.refresh_from_db()
    assert stayed == tiers["gold"]
    assert member.tier == tiers["silver"]


def test_windowed_facts_count_only_recent_orders(tiers):
    # given: 3 orders in the last 30 days, one older
    rule = RuleFactory(code="frequent", logic="1 and 2")
    condition(rule, "orders_in_days", "gte", 3, days=30)
    condition(rule, "spend_in_days", "between", "250, 400", days=30)
    action(rule, "award_points", points=100)
    member = MemberFactory(tier=tiers["regular"])
    record(member, "1000", placed_at=timezone.now() - timedelta(days=45))
    record(member, "100")
    record(member, "100")

    # when
    evaluate(record(member, "100"))

    # then
    firing = RuleFiring.objects.get(member=member)
    assert firing.facts == {"orders_in_days[30]": 3, "spend_in_days[30]": "300.00"}


def test_logic_line_combines_conditions(tiers):
    # given: (spend >= 5000 or orders >= 3) and rank < 1
    rule = RuleFactory(logic="(1 or 2) and 3")
    condition(rule, "lifetime_spend", "gte", 5000)
    condition(rule, "order_count", "gte", 3)
    condition(rule, "tier_rank", "lt", 1)
    action(rule, "award_points", points=1)
    small = MemberFactory(tier=tiers["regular"])
    frequent = MemberFactory(tier=tiers["regular"])

    # when
    evaluate(record(small, "10"))
    for _ in range(3):
        evaluate(record(frequent, "10"))

    # then
    assert not RuleFiring.objects.filter(member=small).exists()
    assert RuleFiring.objects.filter(member=frequent).count() == 1


def test_fact_queries_do_not_grow_with_the_number_of_rules(tiers):
    # given
    EarningPolicy.current()  # created on first use; not part of what is measured

    def queries_for(rule_count: int) -> int:
        for n in range(rule_count):
            rule = RuleFactory()
            condition(rule, "spend_in_days", "gte", 10**9, days=30 + n % 3)
            condition(rule, "points_balance", "gte", 10**9)
        member = MemberFactory(tier=tiers["regular"])
        order = record(member, "10")
        with CaptureQueriesContext(connection) as queries:
            evaluate(order)
        return len(queries)

    # then
    assert queries_for(3) == queries_for(30)
