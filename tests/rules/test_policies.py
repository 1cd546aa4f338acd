"""Policies: what happens whatever the rules say (points and growth points earned), and
how rules are limited and ordered (firing limits by business date, budgets, priority,
stop_processing, the active window)."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from benefits.models import GrowthEntry, PointsEntry
from benefits.services.points import earning_policy_update
from members.models import EngagementEvent, EngagementKind
from members.services import engagement_record
from orders.models import Order, Refund
from orders.services import order_record, refund_record
from rules.models import Rule, RuleFiring
from rules.services.daily import clock_triggers_run
from rules.services.evaluation import member_evaluate
from tests.factories import MemberFactory, RuleFactory, TierFactory, action, condition

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 3, 10, 12, 0, tzinfo=SHANGHAI)


def local(year, month, day, hour=12, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def record(member, amount="100", placed_at=None) -> Order:
    order, _ = order_record(
        external_id=f"SO-{Order.objects.count() + 1}",
        member=member.external_id,
        amount=Decimal(amount),
        currency="CNY",
        placed_at=placed_at or timezone.now() - timedelta(minutes=5),
    )
    return order


def evaluate(order) -> list[str]:
    """Evaluate an order; the codes of the rules that fired, in order."""
    evaluated = member_evaluate(
        member_id=order.member_id, trigger="order_paid", subject_id=order.pk
    )
    return [firing.rule.code for firing in evaluated.fired]


def engagement(member, kind, occurred_at) -> EngagementEvent:
    event, _ = engagement_record(
        external_id=f"EV-{EngagementEvent.objects.count() + 1}",
        member=member.external_id,
        kind=kind,
        occurred_at=occurred_at,
    )
    member_evaluate(member_id=member.pk, trigger="engagement", subject_id=event.pk)
    return event


def keys(rule) -> list[str]:
    return sorted(RuleFiring.objects.filter(rule=rule).values_list("occurrence_key", flat=True))


# --- base effects ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "per_unit", "multiplier", "points"),
    [
        ("99.99", "1", "1", 99),
        ("100.00", "1.5", "1.20", 180),
        ("33.33", "3", "1", 99),
        ("250.00", "0.1", "2.5", 62),
        ("9.99", "0.1", "1", None),  # rounds down to nothing: no entry
    ],
)
def test_an_order_earns_points_at_the_base_rate_times_the_tier_multiplier(
    amount, per_unit, multiplier, points
):
    # given
    earning_policy_update(points_per_unit=Decimal(per_unit), points_expiry="never")
    tier = TierFactory(code="silver", rank=1, points_multiplier=Decimal(multiplier))
    member = MemberFactory(tier=tier)
    order = record(member, amount)

    # when
    evaluate(order)

    # then
    entries = list(PointsEntry.objects.filter(member=member).values_list("kind", "points", "order"))
    assert entries == ([("earn", points, order.pk)] if points else [])


def test_a_member_without_a_tier_earns_the_base_rate():
    earning_policy_update(points_per_unit=Decimal(2))
    member = MemberFactory(tier=None)
    evaluate(record(member, "10.50"))
    assert PointsEntry.objects.get(member=member).points == 21


@pytest.mark.parametrize(
    ("policy", "expires_at"),
    [
        ({"points_expiry": "never"}, None),
        ({"points_expiry": "days", "points_valid_days": 30}, local(2025, 4, 1, 0, 0)),
        ({"points_expiry": "end_of_following_year"}, local(2027, 1, 1, 0, 0)),
        # placed at 00:30 on 1 January 2025 here (still 2024 in UTC)
        (
            {"points_expiry": "end_of_following_year", "placed_at": local(2025, 1, 1, 0, 30)},
            local(2027, 1, 1, 0, 0),
        ),
    ],
)
def test_earned_points_expire_per_the_earning_policy_from_the_order(policy, expires_at):
    # given: an order placed on 1 March, evaluated ten days later
    placed_at = policy.pop("placed_at", local(2025, 3, 1, 9))
    earning_policy_update(points_per_unit=Decimal(1), **policy)
    member = MemberFactory()
    order = record(member, "100", placed_at=placed_at)

    # when
    with time_machine.travel(NOW, tick=False):
        evaluate(order)

    # then
    assert PointsEntry.objects.get(member=member).expires_at == expires_at


@pytest.mark.parametrize(
    ("amount", "per_unit", "growth"),
    [("2500.00", "0.1", 250), ("99.90", "0.1", 9), ("123.45", "1", 123), ("5.00", "0.1", None)],
)
def test_an_order_earns_growth_points(amount, per_unit, growth):
    # given
    earning_policy_update(growth_per_unit=Decimal(per_unit))
    member = MemberFactory(tier=TierFactory(code="gold", rank=2, points_multiplier=3))
    order = record(member, amount)

    # when
    evaluate(order)

    # then: growth points are not scaled by the tier
    entries = list(GrowthEntry.objects.filter(member=member).values_list("kind", "points", "order"))
    assert entries == ([("spend", growth, order.pk)] if growth else [])


def test_an_engagement_earns_its_kinds_growth_points_up_to_the_daily_cap():
    # given: one check-in a day earns 5; 23:30 and 00:10 here are one UTC day, two local ones
    EngagementKind.objects.create(code="check-in", name="签到", growth_points=5, daily_cap=1)
    member = MemberFactory()

    # when
    for occurred_at in (
        local(2025, 3, 3, 23, 30),
        local(2025, 3, 3, 23, 45),  # the cap is reached
        local(2025, 3, 4, 0, 10),  # a new local day
        local(2025, 3, 4, 20, 0),
    ):
        engagement(member, "check-in", occurred_at)

    # then
    earned = GrowthEntry.objects.filter(member=member).order_by("event__occurred_at")
    assert [e.event.occurred_at for e in earned] == [
        local(2025, 3, 3, 23, 30),
        local(2025, 3, 4, 0, 10),
    ]
    assert {e.points for e in earned} == {5}


def test_the_daily_cap_counts_each_kind_separately_and_no_cap_means_every_event():
    # given
    EngagementKind.objects.create(code="review", name="评价", growth_points=20, daily_cap=2)
    EngagementKind.objects.create(code="share", name="分享", growth_points=10)
    EngagementKind.objects.create(code="like", name="点赞", growth_points=0)
    member = MemberFactory()

    # when
    for kind in ["review"] * 3 + ["share"] * 4 + ["like"]:
        engagement(member, kind, local(2025, 3, 3, 10))

    # then
    assert GrowthEntry.objects.filter(member=member, kind="engagement").count() == 6
    assert sum(GrowthEntry.objects.values_list("points", flat=True)) == 2 * 20 + 4 * 10


# --- firing limits --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "first", "second", "expected"),
    [
        # 23:30 and 00:30 here are the same UTC day but two business days
        (
            "per_day",
            local(2025, 3, 3, 23, 30),
            local(2025, 3, 4, 0, 30),
            ["day:2025-03-03", "day:2025-03-04"],
        ),
        ("per_day", local(2025, 3, 4, 0, 30), local(2025, 3, 4, 23, 30), ["day:2025-03-04"]),
        (
            "per_week",
            local(2025, 3, 9, 23, 30),
            local(2025, 3, 10, 0, 30),
            ["week:2025-W10", "week:2025-W11"],
        ),
        ("per_week", local(2025, 3, 10, 0, 30), local(2025, 3, 16, 23, 30), ["week:2025-W11"]),
        ("per_week", local(2024, 12, 30), local(2025, 1, 5), ["week:2025-W01"]),  # ISO weeks
        (
            "per_month",
            local(2025, 3, 31, 23, 30),
            local(2025, 4, 1, 0, 30),
            ["month:2025-03", "month:2025-04"],
        ),
        ("per_month", local(2025, 3, 1, 0, 30), local(2025, 3, 31, 23, 30), ["month:2025-03"]),
        (
            "per_year",
            local(2024, 12, 31, 23, 30),
            local(2025, 1, 1, 0, 30),
            ["year:2024", "year:2025"],
        ),
        ("per_year", local(2025, 1, 1, 0, 30), local(2025, 12, 31, 23, 30), ["year:2025"]),
        ("once", local(2024, 1, 1), local(2025, 6, 1), ["once"]),
    ],
)
def test_firing_limits_count_by_the_orders_business_date(limit, first, second, expected):
    # given
    rule = RuleFactory(firing_limit=limit)
    action(rule, "award_points", points=10)
    member = MemberFactory()

    # when
    for placed_at in (first, second):
        evaluate(record(member, "100", placed_at=placed_at))

    # then
    assert keys(rule) == expected
    assert PointsEntry.objects.filter(member=member, firing__rule=rule).count() == len(expected)


def test_every_time_fires_for_each_order():
    rule = RuleFactory(firing_limit="every_time")
    action(rule, "award_points", points=10)
    member = MemberFactory()
    orders = [record(member) for _ in range(3)]
    for order in orders:
        evaluate(order)
    assert keys(rule) == sorted(f"order:{order.pk}" for order in orders)


def test_a_once_rule_fires_once_per_member_not_once_in_total():
    rule = RuleFactory(firing_limit="once")
    action(rule, "award_points", points=10)
    first, second = MemberFactory(), MemberFactory()
    for member in (first, second, first):
        evaluate(record(member))
    assert RuleFiring.objects.filter(rule=rule).count() == 2


@pytest.mark.parametrize(
    ("refunded", "expected"),
    [
        (
            (local(2025, 3, 3, 23, 30), local(2025, 3, 4, 0, 30)),
            ["day:2025-03-03", "day:2025-03-04"],
        ),
        ((local(2025, 3, 4, 0, 30), local(2025, 3, 4, 23, 30)), ["day:2025-03-04"]),
    ],
)
def test_a_refund_rule_counts_by_the_refunds_business_date(refunded, expected):
    # given
    rule = RuleFactory(trigger="order_refunded", firing_limit="per_day")
    action(rule, "award_growth_points", points=1)
    member = MemberFactory()
    order = record(member, "100", placed_at=local(2025, 3, 1))

    # when
    for n, refunded_at in enumerate(refunded):
        made, _ = refund_record(
            order_external_id=order.external_id,
            external_id=f"RF-{n}",
            amount=Decimal(10),
            refunded_at=refunded_at,
        )
        member_evaluate(member_id=member.pk, trigger="order_refunded", subject_id=made.pk)

    # then
    assert keys(rule) == expected
    assert all(made.is_evaluated for made in Refund.objects.all())


def test_an_engagement_rule_counts_by_the_events_business_date():
    # given
    EngagementKind.objects.create(code="check-in", name="签到", growth_points=1)
    rule = RuleFactory(trigger="engagement", firing_limit="per_day")
    action(rule, "award_points", points=1)
    member = MemberFactory()

    # when
    for occurred_at in (local(2025, 3, 3, 23, 30), local(2025, 3, 4, 0, 30), local(2025, 3, 4, 9)):
        engagement(member, "check-in", occurred_at)

    # then
    assert keys(rule) == ["day:2025-03-03", "day:2025-03-04"]


def test_a_clock_rule_counts_by_the_day_it_is_run_for():
    # given: 'no order for 10 days', at most once a month
    rule = RuleFactory(trigger="inactive", trigger_days=10, firing_limit="per_month")
    action(rule, "award_points", points=1)
    member = MemberFactory(joined_at=local(2025, 3, 1))

    # when: due on 11 March, on 25 March and on 4 April
    member_evaluate(member_id=member.pk, trigger="inactive", on_date=date(2025, 3, 11))
    for last_order_at, day in (
        (local(2025, 3, 15), date(2025, 3, 25)),
        (local(2025, 3, 25), date(2025, 4, 4)),
    ):
        member.last_order_at = last_order_at
        member.save()
        member_evaluate(member_id=member.pk, trigger="inactive", on_date=day)

    # then
    assert keys(rule) == ["month:2025-03", "month:2025-04"]


# --- budget ---------------------------------------------------------------------------


def test_a_budget_limits_the_firings_in_total():
    # given: a gift for the first two members
    rule = RuleFactory(budget=2)
    action(rule, "award_points", points=100)
    members = [MemberFactory() for _ in range(3)]

    # when
    for member in members:
        evaluate(record(member))

    # then
    assert RuleFiring.objects.filter(rule=rule).count() == 2
    assert [PointsEntry.objects.filter(member=m).count() for m in members] == [1, 1, 0]


def test_a_budget_counts_occurrences_and_is_not_spent_by_a_repeat():
    # given
    rule = RuleFactory(budget=3, firing_limit="per_day")
    action(rule, "award_points", points=1)
    member = MemberFactory()

    # when: two orders on one day (one occurrence), then three more days
    for placed_at in (
        local(2025, 3, 1, 9),
        local(2025, 3, 1, 18),
        local(2025, 3, 2),
        local(2025, 3, 3),
        local(2025, 3, 4),
    ):
        evaluate(record(member, placed_at=placed_at))

    # then
    assert keys(rule) == ["day:2025-03-01", "day:2025-03-02", "day:2025-03-03"]


def test_a_budget_set_later_counts_the_firings_before_it():
    # given: a rule that has already fired for two members
    rule = RuleFactory()
    action(rule, "award_points", points=100)
    for member in (MemberFactory(), MemberFactory()):
        evaluate(record(member))

    # when: the operator caps it at three firings in total, and three more members qualify
    rule = Rule.objects.get(pk=rule.pk)
    rule.budget = 3
    rule.save()
    for member in (MemberFactory(), MemberFactory(), MemberFactory()):
        evaluate(record(member))

    # then
    assert RuleFiring.objects.filter(rule=rule).count() == 3


# --- order of rules -------------------------------------------------------------------


def test_rules_apply_by_priority_then_code():
    # given
    for code, priority in (("b", 5), ("a", 5), ("z", -10), ("c", 100)):
        rule = RuleFactory(code=code, priority=priority, firing_limit="every_time")
        action(rule, "award_points", points=1)
    member = MemberFactory()

    # when
    fired = evaluate(record(member))

    # then
    assert fired == ["z", "a", "b", "c"]


def test_each_rule_sees_the_effects_of_the_rules_before_it():
    # given: a bonus, then a rule for members with at least 100 points and not Gold
    gold = TierFactory(code="gold", rank=2)
    bonus = RuleFactory(code="bonus", priority=1)
    action(bonus, "award_points", points=100)
    action(bonus, "award_growth_points", points=50)
    rich = RuleFactory(code="rich", priority=2, logic="1 and 2")
    condition(rich, "points_balance", "gte", 100)
    condition(rich, "growth_points", "gte", 50)
    action(rich, "set_tier", tier=gold)
    after_gold = RuleFactory(code="not-gold", priority=3)
    condition(after_gold, "tier_rank", "lt", 2)
    action(after_gold, "award_points", points=1)
    member = MemberFactory(tier=TierFactory(code="regular", rank=0))

    # when
    fired = evaluate(record(member))

    # then
    assert fired == ["bonus", "rich"]
    assert RuleFiring.objects.get(rule=rich).facts == {
        "points_balance": 100,
        "growth_points": 50,
        "tier_rank": 0,
    }


@pytest.mark.parametrize(("stopper_matches", "fired"), [(True, ["stop"]), (False, ["after"])])
def test_stop_processing_stops_lower_priority_rules_when_it_fires(stopper_matches, fired):
    # given
    stopper = RuleFactory(code="stop", priority=1, stop_processing=True)
    condition(stopper, "order_amount", "gte", 100 if stopper_matches else 10_000)
    action(stopper, "award_points", points=1)
    after = RuleFactory(code="after", priority=2)
    action(after, "award_points", points=1)
    before = RuleFactory(code="before", priority=0, is_active=False)
    action(before, "award_points", points=1)

    # when
    result = evaluate(record(MemberFactory(), "500"))

    # then
    assert result == fired


# --- the active window ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "fires"),
    [
        ({"is_active": False}, False),
        ({"is_active": True}, True),
        ({"active_from": NOW}, True),
        ({"active_from": NOW + timedelta(seconds=1)}, False),
        ({"active_until": NOW}, False),
        ({"active_until": NOW + timedelta(seconds=1)}, True),
        ({"active_from": NOW - timedelta(days=1), "active_until": NOW + timedelta(days=1)}, True),
        ({"is_active": False, "active_from": NOW - timedelta(days=1)}, False),
    ],
)
def test_only_rules_in_their_active_window_fire(window, fires):
    # given
    rule = RuleFactory(**{"is_active": True, **window})
    action(rule, "award_points", points=1)
    member = MemberFactory()
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        order = record(member)  # placed five minutes before: at NOW

    # when: evaluated an hour later, judged at the order's own moment
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        evaluate(order)

    # then
    assert RuleFiring.objects.filter(rule=rule).exists() is fires
    assert Rule.objects.get(pk=rule.pk).is_live(NOW) is fires


def test_a_clock_rule_outside_its_window_does_not_fire_in_the_daily_job():
    # given
    ended = RuleFactory(trigger="birthday", active_until=NOW - timedelta(days=1))
    live = RuleFactory(trigger="birthday", active_from=NOW - timedelta(days=1))
    for rule in (ended, live):
        action(rule, "award_points", points=1)
    member = MemberFactory(birthday=date(1990, 3, 10))

    # when
    with time_machine.travel(NOW, tick=False):
        clock_triggers_run(date(2025, 3, 10))

    # then
    assert list(RuleFiring.objects.filter(member=member).values_list("rule", flat=True)) == [
        live.pk
    ]
