"""Evaluating the same member for the same occurrence twice never changes the outcome: the
second run adds no firing, ledger entry, coupon, tier change or message, and leaves the
member's facts as the first run left them."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from benefits.models import Coupon, EarningPolicy, GrowthEntry, PointsEntry
from members.models import Member, Tag, TierChange
from notifications.models import Notification
from orders.services import order_record
from rules.engine.facts import FACTS, FactSource, Need, facts_compute
from rules.models import RuleAction, RuleCondition, RuleFiring
from rules.services.evaluation import member_evaluate
from tests.factories import (
    CouponTemplateFactory,
    MemberFactory,
    NotificationTemplateFactory,
    RuleFactory,
    TierFactory,
)

pytestmark = pytest.mark.django_db

TIER_CODES = ["regular", "silver", "gold"]
TAG_CODES = ["vip", "lapsed"]
# Facts the random rules test, with the values they compare against.
CONDITION_VALUES = {
    "lifetime_spend": st.sampled_from(["0", "100", "500", "2000"]),
    "order_count": st.integers(0, 4).map(str),
    "spend_in_days": st.sampled_from(["0", "100", "500"]),
    "points_balance": st.sampled_from(["0", "100", "500", "1000"]),
    "growth_points": st.sampled_from(["0", "10", "50", "100"]),
    "tier_rank": st.integers(0, 2).map(str),
    "tier": st.sampled_from(TIER_CODES),
    "tags": st.sampled_from(TAG_CODES),
}
ORDERED = ["gte", "gt", "lte", "lt", "eq", "ne"]


@st.composite
def conditions(draw) -> dict:
    fact = draw(st.sampled_from(sorted(CONDITION_VALUES)))
    if fact == "tags":
        op = draw(st.sampled_from(["in", "not_in"]))
    elif fact == "tier":
        op = draw(st.sampled_from(["eq", "ne"]))
    else:
        op = draw(st.sampled_from(ORDERED))
    days = 30 if FACTS[fact].windowed else None
    return {"fact": fact, "op": op, "value": draw(CONDITION_VALUES[fact]), "days": days}


actions = st.one_of(
    st.fixed_dictionaries(
        {
            "kind": st.just("set_tier"),
            "tier": st.sampled_from(TIER_CODES),
            "allow_downgrade": st.booleans(),
        }
    ),
    st.fixed_dictionaries(
        {
            "kind": st.sampled_from(["award_points", "award_growth_points"]),
            "points": st.sampled_from([10, 100, 500]),
        }
    ),
    st.fixed_dictionaries({"kind": st.sampled_from(["issue_coupon", "notify"])}),
    st.fixed_dictionaries(
        {"kind": st.sampled_from(["add_tag", "remove_tag"]), "tag": st.sampled_from(TAG_CODES)}
    ),
)
rules = st.fixed_dictionaries(
    {
        "priority": st.integers(1, 5),
        "firing_limit": st.sampled_from(["once", "per_day", "per_month", "every_time"]),
        "stop_processing": st.booleans(),
        "budget": st.one_of(st.none(), st.integers(1, 2)),
        "conditions": st.lists(conditions(), max_size=2),
        "logic_or": st.booleans(),
        "actions": st.lists(actions, min_size=1, max_size=3),
    }
)
histories = st.fixed_dictionaries(
    {
        "tier": st.sampled_from(TIER_CODES),
        "tags": st.sets(st.sampled_from(TAG_CODES)),
        "orders": st.lists(
            st.tuples(st.sampled_from(["50", "300", "1500"]), st.integers(1, 60)), max_size=3
        ),
        "points": st.lists(st.sampled_from([100, 400, -50]), max_size=2),
    }
)
# The subject evaluated twice: a new order, or today's birthday (a clock trigger).
subjects = st.sampled_from(["order_paid", "birthday"])


@pytest.fixture
def programme():
    EarningPolicy.objects.update_or_create(
        pk=1, defaults={"points_per_unit": Decimal("0.1"), "growth_per_unit": Decimal("0.05")}
    )
    return {
        "tiers": {code: TierFactory(code=code, rank=rank) for rank, code in enumerate(TIER_CODES)},
        "tags": {code: Tag.objects.create(code=code, name=code) for code in TAG_CODES},
        "coupon": CouponTemplateFactory(),
        "message": NotificationTemplateFactory(body="{{ member.name }}"),
    }


def build_rule(spec: dict, index: int, trigger: str, programme: dict) -> None:
    rule = RuleFactory(
        code=f"rule-{index}",
        trigger=trigger,
        priority=spec["priority"],
        firing_limit=spec["firing_limit"],
        stop_processing=spec["stop_processing"],
        budget=spec["budget"],
        logic="1 or 2" if spec["logic_or"] and len(spec["conditions"]) == 2 else "",
    )
    for position, row in enumerate(spec["conditions"], start=1):
        RuleCondition.objects.create(rule=rule, position=position, **row)
    for position, row in enumerate(spec["actions"], start=1):
        target = {
            "set_tier": {"tier": programme["tiers"].get(row.get("tier"))},
            "issue_coupon": {"coupon_template": programme["coupon"]},
            "notify": {"notification_template": programme["message"]},
        }.get(row["kind"], {})
        if "tag" in row:
            target = {"tag": programme["tags"][row["tag"]]}
        if "points" in row:
            target = {"points": row["points"]}
        RuleAction.objects.create(
            rule=rule,
            position=position,
            kind=row["kind"],
            allow_downgrade=row.get("allow_downgrade", False),
            **target,
        )


def build_member(spec: dict, programme: dict) -> Member:
    today = timezone.localdate()
    member = MemberFactory(
        tier=programme["tiers"][spec["tier"]],
        birthday=today.replace(year=2000),  # a leap year: 29 February exists
        joined_at=timezone.now() - timedelta(days=400),
    )
    member.tags.set([programme["tags"][code] for code in spec["tags"]])
    for n, (amount, days_ago) in enumerate(spec["orders"]):
        order_record(
            external_id=f"SO-{member.pk}-{n}",
            member=member.external_id,
            amount=Decimal(amount),
            currency="CNY",
            placed_at=timezone.now() - timedelta(days=days_ago),
        )
    for points in spec["points"]:
        PointsEntry.objects.create(member=member, kind="bonus", points=points, reason="t")
    return member


def outcome(member: Member) -> dict:
    """Everything a run may change, and the facts the rules see."""
    member = Member.objects.select_related("tier").get(pk=member.pk)
    needs = {Need(key, 30 if fact.windowed else None) for key, fact in FACTS.items()}
    needs = {need for need in needs if need.fact not in ("order_amount", "refund_amount")}
    facts = facts_compute(FactSource(member=member, now=timezone.now(), needs=needs))
    return {
        "firings": sorted(
            RuleFiring.objects.filter(member=member).values_list("rule__code", "occurrence_key")
        ),
        "points entries": PointsEntry.objects.filter(member=member).count(),
        "growth entries": GrowthEntry.objects.filter(member=member).count(),
        "coupons": Coupon.objects.filter(member=member).count(),
        "tier changes": TierChange.objects.filter(member=member).count(),
        "messages": Notification.objects.filter(member=member).count(),
        "facts": {need.label: value for need, value in facts.items()},
    }


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    # No shrinking: it costs minutes against the database, and the examples below pin the
    # smallest failures found so far.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(
    trigger=subjects,
    rule_specs=st.lists(rules, min_size=1, max_size=3),
    history=histories,
)
def test_evaluating_the_same_occurrence_twice_changes_nothing(
    programme, trigger, rule_specs, history
):
    # Each example builds its data in a savepoint rolled back at the end.
    with transaction.atomic():
        # given
        for index, spec in enumerate(rule_specs):
            build_rule(spec, index, trigger, programme)
        member = build_member(history, programme)
        if trigger == "order_paid":
            order, _ = order_record(
                external_id=f"SO-{member.pk}-new",
                member=member.external_id,
                amount=Decimal("800"),
                currency="CNY",
                placed_at=timezone.now() - timedelta(minutes=1),
            )
            subject = {"subject_id": order.pk}
        else:
            subject = {"on_date": timezone.localdate()}
        member_evaluate(member_id=member.pk, trigger=trigger, **subject)
        first = outcome(member)

        # when
        member_evaluate(member_id=member.pk, trigger=trigger, **subject)

        # then
        assert outcome(member) == first
        transaction.set_rollback(True)


def test_a_birthday_evaluated_twice_fires_each_rule_once(programme):
    # given: a birthday rule with points and a message
    rule = RuleFactory(trigger="birthday", firing_limit="per_year")
    RuleAction.objects.create(rule=rule, position=1, kind="award_points", points=88)
    RuleAction.objects.create(
        rule=rule, position=2, kind="notify", notification_template=programme["message"]
    )
    member = build_member({"tier": "regular", "tags": set(), "orders": [], "points": []}, programme)

    # when
    for _ in range(2):
        member_evaluate(member_id=member.pk, trigger="birthday", on_date=timezone.localdate())

    # then
    assert outcome(member)["firings"] == [(rule.code, f"year:{timezone.localdate().year}")]
    assert PointsEntry.objects.filter(member=member).count() == 1
    assert Notification.objects.filter(member=member).count() == 1


def test_a_rule_that_stops_the_others_still_stops_them_the_second_time(programme):
    # given: the first rule stops lower-priority ones when it fires
    first = RuleFactory(code="first", trigger="birthday", priority=1, stop_processing=True)
    RuleAction.objects.create(rule=first, position=1, kind="award_points", points=10)
    second = RuleFactory(code="second", trigger="birthday", priority=2)
    RuleAction.objects.create(rule=second, position=1, kind="award_points", points=10)
    member = build_member({"tier": "regular", "tags": set(), "orders": [], "points": []}, programme)
    today = timezone.localdate()
    member_evaluate(member_id=member.pk, trigger="birthday", on_date=today)

    # when: the daily job runs twice (two beats, a redelivered task)
    member_evaluate(member_id=member.pk, trigger="birthday", on_date=today)

    # then
    assert [code for code, _ in outcome(member)["firings"]] == ["first"]
    assert not RuleFiring.objects.filter(rule=second).exists()


def test_a_rule_enabled_by_a_later_rules_effect_does_not_fire_on_a_second_run(programme):
    # given: rule 1 (checked first) wants 100 points; rule 2 (checked next) gives them
    wants = RuleFactory(code="wants-points", trigger="birthday", priority=1)
    RuleCondition.objects.create(
        rule=wants, position=1, fact="points_balance", op="gte", value="100"
    )
    RuleAction.objects.create(
        rule=wants, position=1, kind="issue_coupon", coupon_template=programme["coupon"]
    )
    gives = RuleFactory(code="gives-points", trigger="birthday", priority=2)
    RuleAction.objects.create(rule=gives, position=1, kind="award_points", points=100)
    member = build_member({"tier": "regular", "tags": set(), "orders": [], "points": []}, programme)
    today = timezone.localdate()
    member_evaluate(member_id=member.pk, trigger="birthday", on_date=today)
    first = outcome(member)

    # when
    member_evaluate(member_id=member.pk, trigger="birthday", on_date=today)

    # then
    assert outcome(member) == first
    assert Coupon.objects.filter(member=member).count() == 0
