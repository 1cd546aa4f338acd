"""Facts: what a condition can test about a member, computed from the member row, the
orders, the ledgers, the engagements and the tags; and the operators that compare them
with the values operators type."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from benefits.models import GrowthEntry, PointsEntry
from members.models import EngagementEvent, EngagementKind, Member, Tag
from members.services import engagement_record
from orders.models import Order, Refund
from orders.services import order_record, refund_record
from rules.engine.facts import FactSource, Need, facts_compute
from rules.models import RuleCondition, RuleFiring
from rules.services.evaluation import member_evaluate
from tests.factories import MemberFactory, RuleFactory, TierFactory, action, condition

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 3, 10, 12, 0, tzinfo=SHANGHAI)


def local(year, month, day, hour=12, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def record(member, amount, placed_at=None) -> Order:
    order, _ = order_record(
        external_id=f"SO-{Order.objects.count() + 1}",
        member=member.external_id,
        amount=Decimal(amount),
        currency="CNY",
        placed_at=placed_at or timezone.now() - timedelta(minutes=5),
    )
    return order


def refund(order, amount) -> Refund:
    made, _ = refund_record(
        order_external_id=order.external_id,
        external_id=f"RF-{Refund.objects.count() + 1}",
        amount=Decimal(amount),
    )
    return made


def engagement(member, kind, occurred_at=None) -> EngagementEvent:
    event, _ = engagement_record(
        external_id=f"EV-{EngagementEvent.objects.count() + 1}",
        member=member.external_id,
        kind=kind,
        occurred_at=occurred_at or timezone.now() - timedelta(minutes=5),
    )
    return event


def fact(member, key, days=None, event_kind=None, **subjects):
    """One fact's value for the member now, as the engine computes it."""
    need = Need(key, days, event_kind)
    source = FactSource(
        member=Member.objects.select_related("tier").get(pk=member.pk),
        now=timezone.now(),
        needs={need},
        **subjects,
    )
    return facts_compute(source)[need]


def evaluate_order(order):
    return member_evaluate(member_id=order.member_id, trigger="order_paid", subject_id=order.pk)


def rule_with(fact_key, op, value, *, trigger="order_paid", days=None, event_kind=None):
    rule = RuleFactory(trigger=trigger, firing_limit="every_time")
    RuleCondition.objects.create(
        rule=rule, position=1, fact=fact_key, op=op, value=value, days=days, event_kind=event_kind
    )
    action(rule, "award_points", points=1)
    return rule


# --- spend and orders ------------------------------------------------------------------


def test_lifetime_totals_are_net_of_refunds():
    # given: three orders; one refunded in part, one in full
    member = MemberFactory()
    partly, fully, _ = record(member, "1000"), record(member, "500"), record(member, "300")
    refund(partly, "400")
    refund(fully, "200")
    refund(fully, "300")

    # then
    assert fact(member, "lifetime_spend") == Decimal("900.00")
    assert fact(member, "order_count") == 2  # the order refunded in full no longer counts
    assert fact(member, "avg_order_value") == Decimal("450.00")


def test_the_average_order_value_is_rounded_to_the_cent():
    member = MemberFactory()
    for amount in ("10.00", "10.00", "10.01"):
        record(member, amount)
    assert fact(member, "avg_order_value") == Decimal("10.00")


@time_machine.travel(NOW, tick=False)
def test_windowed_order_facts_cover_the_last_n_days_up_to_now():
    # given
    member = MemberFactory(joined_at=NOW - timedelta(days=100))
    record(member, "1000", placed_at=NOW - timedelta(days=30))  # just outside
    record(member, "100", placed_at=NOW - timedelta(days=30) + timedelta(seconds=1))
    record(member, "200", placed_at=NOW - timedelta(days=6))
    refund(record(member, "50", placed_at=NOW - timedelta(days=1)), "50")  # in full
    refund(record(member, "300", placed_at=NOW), "100")  # in part

    # then
    assert fact(member, "spend_in_days", days=30) == Decimal("500.00")
    assert fact(member, "orders_in_days", days=30) == 3
    assert fact(member, "avg_order_value_in_days", days=30) == Decimal("166.67")
    assert fact(member, "spend_in_days", days=7) == Decimal("400.00")
    assert fact(member, "orders_in_days", days=7) == 2
    assert fact(member, "avg_order_value_in_days", days=7) == Decimal("200.00")


@time_machine.travel(NOW, tick=False)
def test_several_windows_in_one_rule_set_each_get_their_own_value():
    # given
    rule = RuleFactory(logic="1 and 2")
    condition(rule, "spend_in_days", "gte", 300, days=30)
    condition(rule, "spend_in_days", "lt", 200, days=7)
    action(rule, "award_points", points=1)
    member = MemberFactory()
    record(member, "250", placed_at=NOW - timedelta(days=20))
    order = record(member, "100", placed_at=NOW - timedelta(hours=1))

    # when
    evaluate_order(order)

    # then
    firing = RuleFiring.objects.get(rule=rule)
    assert firing.facts == {"spend_in_days[30]": "350.00", "spend_in_days[7]": "100.00"}


def test_the_triggering_order_and_refund_amounts():
    # given
    member = MemberFactory()
    order = record(member, "180.50")
    made = refund(order, "30.25")

    # then
    assert fact(member, "order_amount", order=order) == Decimal("180.50")
    assert fact(member, "refund_amount", order=order, refund=made) == Decimal("30.25")
    assert fact(member, "order_amount") is None
    assert fact(member, "refund_amount", order=order) is None


# --- balances, tier, dates ------------------------------------------------------------


def test_balances_are_the_sums_of_their_ledgers():
    # given
    member = MemberFactory()
    for points, kind in ((500, "bonus"), (-120, "redeem"), (30, "earn")):
        PointsEntry.objects.create(member=member, kind=kind, points=points, reason="t")
    for points, kind in ((200, "spend"), (-50, "reverse"), (5, "engagement")):
        GrowthEntry.objects.create(member=member, kind=kind, points=points, reason="t")
    other = MemberFactory()
    PointsEntry.objects.create(member=other, kind="bonus", points=999, reason="t")

    # then
    assert fact(member, "points_balance") == 410
    assert fact(member, "growth_points") == 155


def test_tier_and_tier_rank():
    on_gold = MemberFactory(tier=TierFactory(code="gold", rank=2))
    no_tier = MemberFactory(tier=None)
    assert (fact(on_gold, "tier"), fact(on_gold, "tier_rank")) == ("gold", 2)
    assert (fact(no_tier, "tier"), fact(no_tier, "tier_rank")) == (None, 0)


@pytest.mark.parametrize(
    ("joined_at", "expected"),
    [
        (local(2025, 3, 9, 23, 30), 1),  # yesterday in Shanghai, 30 minutes ago
        (datetime(2025, 3, 9, 16, 30, tzinfo=UTC), 0),  # 9 March in UTC, 10th here
        (local(2024, 3, 10, 8), 365),
    ],
)
def test_days_since_joined_counts_business_days(joined_at, expected):
    with time_machine.travel(local(2025, 3, 10, 0, 30), tick=False):
        assert fact(MemberFactory(joined_at=joined_at), "days_since_joined") == expected


@pytest.mark.parametrize(
    ("expires_at", "expected"),
    [
        (local(2025, 3, 25, 0, 10), 15),
        (datetime(2025, 3, 24, 16, 10, tzinfo=UTC), 15),  # 00:10 on 25 March here
        (local(2025, 3, 10, 23, 59), 0),
        (None, None),  # the tier never lapses
    ],
)
def test_days_until_tier_lapses(expires_at, expected):
    with time_machine.travel(local(2025, 3, 10, 23, 50), tick=False):
        member = MemberFactory(tier=TierFactory(code="silver", rank=1), tier_expires_at=expires_at)
        assert fact(member, "days_until_tier_lapses") == expected


def test_birthday_month():
    assert fact(MemberFactory(birthday=date(1990, 11, 3)), "birthday_month") == 11
    assert fact(MemberFactory(birthday=None), "birthday_month") is None


def test_tags_are_the_set_of_the_members_tag_codes():
    member = MemberFactory()
    member.tags.add(Tag.objects.create(code="vip", name="VIP"))
    member.tags.add(Tag.objects.create(code="staff", name="员工"))
    Tag.objects.create(code="other", name="其他")
    assert fact(member, "tags") == frozenset({"vip", "staff"})


# --- engagements ---------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_engagements_in_days_may_be_narrowed_to_one_kind():
    # given
    for code in ("review", "share"):
        EngagementKind.objects.create(code=code, name=code)
    member = MemberFactory()
    engagement(member, "review", NOW - timedelta(days=7))  # just outside 7 days
    engagement(member, "review", NOW - timedelta(days=6, hours=23))
    engagement(member, "share", NOW - timedelta(days=1))
    latest = engagement(member, "review", NOW)

    # then
    assert fact(member, "engagements_in_days", days=7) == 3
    assert fact(member, "engagements_in_days", days=7, event_kind="review") == 2
    assert fact(member, "engagements_in_days", days=8, event_kind="review") == 3
    assert fact(member, "engagements_in_days", days=7, event_kind="share") == 1
    assert fact(member, "engagement_kind", event=latest) == "review"
    assert fact(member, "engagement_kind") is None


def test_a_condition_counts_engagements_of_its_own_kind():
    # given: 3 reviews in a week earn a reward; shares do not count
    review = EngagementKind.objects.create(code="review", name="评价")
    EngagementKind.objects.create(code="share", name="分享")
    rule = rule_with(
        "engagements_in_days", "gte", "3", trigger="engagement", days=7, event_kind=review
    )
    member = MemberFactory()
    for kind in ("review", "share", "review", "share"):
        event = engagement(member, kind)
        member_evaluate(member_id=member.pk, trigger="engagement", subject_id=event.pk)
    fired_before = RuleFiring.objects.filter(rule=rule).count()

    # when
    event = engagement(member, "review")
    member_evaluate(member_id=member.pk, trigger="engagement", subject_id=event.pk)

    # then
    firing = RuleFiring.objects.get(rule=rule)
    assert fired_before == 0
    assert firing.facts == {"engagements_in_days[7,review]": 3}


@pytest.mark.parametrize(
    ("op", "value", "fires"),
    [
        ("in", "review, share", True),
        ("eq", "share", False),
        ("ne", "share", True),
        ("not_in", "check-in", True),
    ],
)
def test_the_triggering_engagements_kind(op, value, fires):
    # given
    for code in ("review", "share", "check-in"):
        EngagementKind.objects.create(code=code, name=code)
    rule = rule_with("engagement_kind", op, value, trigger="engagement")
    member = MemberFactory()
    event = engagement(member, "review")

    # when
    member_evaluate(member_id=member.pk, trigger="engagement", subject_id=event.pk)

    # then
    assert RuleFiring.objects.filter(rule=rule).exists() is fires


# --- operators, through rules --------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "value", "fires"),
    [
        ("gte", "2000", True),
        ("gte", "2000.01", False),
        ("gt", "2000", False),
        ("gt", "1999.99", True),
        ("lte", "2000", True),
        ("lt", "2000", False),
        ("lt", "2000.01", True),
        ("eq", "2000.00", True),
        ("eq", "2000", True),
        ("ne", "2000", False),
        ("ne", "1999", True),
        ("in", "100, 2000", True),
        ("in", "100,1999.99", False),
        ("not_in", "100, 2000", False),
        ("not_in", "100, 500", True),
        ("between", "100, 2000", True),
        ("between", "2000, 2000", True),
        ("between", "2000.01, 3000", False),
        ("between", "100，1999.99", False),  # a full-width comma separates too
    ],
)
def test_operators_compare_money_as_typed(op, value, fires):
    # given: lifetime spend of exactly 2000 after this order
    rule = rule_with("lifetime_spend", op, value)
    member = MemberFactory()
    record(member, "1500")
    order = record(member, "500")

    # when: the first order is evaluated first, as of its own spend
    evaluate_order(order)

    # then
    assert RuleFiring.objects.filter(rule=rule, order=order).exists() is fires


@pytest.mark.parametrize(
    ("op", "value", "fires"),
    [
        ("gte", "3", True),
        ("gt", "3", False),
        ("lte", "2", False),
        ("eq", "3", True),
        ("in", "1, 3, 5", True),
        ("not_in", "1, 3, 5", False),
        ("between", "4, 10", False),
    ],
)
def test_operators_compare_counts(op, value, fires):
    # given: the third order
    rule = rule_with("order_count", op, value)
    member = MemberFactory()
    orders = [record(member, "10") for _ in range(3)]

    # when: the earlier orders are evaluated first, each as of its own count
    evaluate_order(orders[-1])

    # then
    assert RuleFiring.objects.filter(rule=rule, order=orders[-1]).exists() is fires


@pytest.mark.parametrize(
    ("op", "value", "fires"),
    [
        ("eq", "silver", True),
        ("ne", "silver", False),
        ("in", "silver, gold", True),
        ("in", "silver，gold", True),
        ("not_in", "silver, gold", False),
        ("not_in", "gold", True),
    ],
)
def test_tier_codes_are_compared_by_equality_and_lists(op, value, fires):
    # given
    TierFactory(code="gold", rank=2)
    rule = rule_with("tier", op, value)
    member = MemberFactory(tier=TierFactory(code="silver", rank=1))

    # when
    evaluate_order(record(member, "10"))

    # then
    assert RuleFiring.objects.filter(rule=rule).exists() is fires


@pytest.mark.parametrize(
    ("has", "op", "value", "fires"),
    [
        ({"vip"}, "in", "vip, staff", True),
        ({"vip", "staff"}, "in", "staff", True),
        (set(), "in", "vip, staff", False),
        ({"blocked"}, "in", "vip, staff", False),
        ({"vip"}, "not_in", "blocked, staff", True),
        ({"vip", "blocked"}, "not_in", "blocked, staff", False),
        (set(), "not_in", "blocked", True),
    ],
)
def test_tags_in_means_has_any_and_not_in_means_has_none(has, op, value, fires):
    # given
    tags = {code: Tag.objects.create(code=code, name=code) for code in ("vip", "staff", "blocked")}
    rule = rule_with("tags", op, value)
    member = MemberFactory()
    member.tags.set([tags[code] for code in has])

    # when
    evaluate_order(record(member, "10"))

    # then
    assert RuleFiring.objects.filter(rule=rule).exists() is fires


@pytest.mark.parametrize(
    ("fact_key", "op", "value"),
    [
        ("refund_amount", "ne", "5"),  # an order paid has no refund
        ("refund_amount", "not_in", "1, 2"),
        ("refund_amount", "lt", "1000000"),
        ("engagement_kind", "ne", "review"),  # nor an engagement
        ("engagement_kind", "not_in", "review"),
        ("tier", "ne", "gold"),  # the member has no tier
        ("tier", "not_in", "gold"),
        ("days_until_tier_lapses", "gte", "0"),  # no tier that lapses
        ("birthday_month", "ne", "5"),  # no birthday given
        ("birthday_month", "not_in", "5"),
    ],
)
def test_a_fact_with_no_value_satisfies_no_condition(fact_key, op, value):
    # given
    TierFactory(code="gold", rank=2)
    EngagementKind.objects.create(code="review", name="评价")
    rule = rule_with(fact_key, op, value)
    member = MemberFactory(tier=None, birthday=None)

    # when
    evaluate_order(record(member, "10"))

    # then
    assert not RuleFiring.objects.filter(rule=rule).exists()


def test_a_refund_lowers_the_spend_the_refund_rules_see():
    # given: a rule for members whose spend drops below 1000 through a refund
    rule = rule_with("lifetime_spend", "lt", "1000", trigger="order_refunded")
    member = MemberFactory()
    order = record(member, "1200")
    made = refund(order, "300")

    # when
    member_evaluate(member_id=member.pk, trigger="order_refunded", subject_id=made.pk)

    # then
    firing = RuleFiring.objects.get(rule=rule)
    assert firing.facts == {"lifetime_spend": "900.00"}


def test_the_firing_records_the_facts_the_rule_saw():
    # given
    rule = RuleFactory(logic="1 and 2 and 3")
    condition(rule, "order_amount", "gte", 100)
    condition(rule, "tier", "in", "silver")
    condition(rule, "tags", "not_in", "blocked")
    action(rule, "award_points", points=1)
    Tag.objects.create(code="blocked", name="黑名单")
    member = MemberFactory(tier=TierFactory(code="silver", rank=1))
    member.tags.add(Tag.objects.create(code="vip", name="VIP"))

    # when
    evaluate_order(record(member, "120"))

    # then
    assert RuleFiring.objects.get(rule=rule).facts == {
        "order_amount": "120.00",
        "tier": "silver",
        "tags": ["vip"],
    }
