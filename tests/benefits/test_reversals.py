"""Refunds and what they take back: the points and growth points an order earned and
those rules awarded for it, in proportion to the share refunded (rounded down; in full
once refunded in full), and the unused coupons those rules issued once nothing is left.
The reversal is a reconciliation, so the outcome does not depend on which of the order
and its refunds is evaluated first."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from benefits.models import Coupon, GrowthEntry, PointsEntry
from benefits.selectors import growth_balance, points_balance
from benefits.services.points import earning_policy_update
from members.models import Member
from orders.models import Order, Refund
from orders.services import order_record, refund_record
from rules.services.evaluation import member_evaluate
from tests.factories import (
    CouponTemplateFactory,
    MemberFactory,
    RuleFactory,
    TierFactory,
    action,
)

pytestmark = pytest.mark.django_db


def record(member, amount, external_id=None) -> Order:
    order, _ = order_record(
        external_id=external_id or f"SO-{Order.objects.count() + 1}",
        member=member.external_id,
        amount=Decimal(amount),
        currency="CNY",
        placed_at=timezone.now() - timedelta(hours=1),
    )
    return order


def refund(order, amount) -> Refund:
    made, _ = refund_record(
        order_external_id=order.external_id,
        external_id=f"RF-{Refund.objects.count() + 1}",
        amount=Decimal(amount),
    )
    return made


def evaluate_order(order) -> None:
    member_evaluate(member_id=order.member_id, trigger="order_paid", subject_id=order.pk)


def evaluate_refund(made) -> None:
    member_id = Order.objects.get(pk=made.order_id).member_id
    member_evaluate(member_id=member_id, trigger="order_refunded", subject_id=made.pk)


@pytest.fixture
def programme():
    """1 point and 1 growth point per yuan; every order paid also gets a rule's 7 bonus
    points, 3 bonus growth points and a coupon."""
    earning_policy_update(points_per_unit=Decimal(1), growth_per_unit=Decimal(1))
    rule = RuleFactory(code="order-bonus", firing_limit="every_time")
    action(rule, "award_points", points=7)
    action(rule, "award_growth_points", points=3)
    action(rule, "issue_coupon", coupon_template=CouponTemplateFactory())
    return rule


def balances(member) -> tuple[int, int]:
    return points_balance(member_id=member.pk), growth_balance(member_id=member.pk)


def coupon_statuses(member) -> list[str]:
    return list(
        Coupon.objects.filter(member=member).order_by("pk").values_list("status", flat=True)
    )


# --- recording a refund ---------------------------------------------------------------


def test_a_refund_lowers_the_spend_at_once_and_the_order_count_once_refunded_in_full():
    # given
    member = MemberFactory()
    order = record(member, "100")
    record(member, "50")

    # when / then: before any evaluation
    refund(order, "60")
    member.refresh_from_db()
    assert (member.lifetime_spend, member.order_count) == (Decimal("90.00"), 2)
    refund(order, "40")
    member.refresh_from_db()
    assert (member.lifetime_spend, member.order_count) == (Decimal("50.00"), 1)


def test_a_refund_never_exceeds_what_remains_of_the_order():
    # given
    member = MemberFactory()
    order = record(member, "100")
    refund(order, "60")

    # when
    with pytest.raises(ValidationError) as raised:
        refund(order, "40.01")

    # then: nothing changed, and the exact remainder can still be refunded
    order.refresh_from_db()
    member.refresh_from_db()
    assert "amount" in raised.value.message_dict
    assert order.refunded_amount == Decimal("60.00")
    assert member.lifetime_spend == Decimal("40.00")
    assert Refund.objects.count() == 1
    refund(order, "40.00")
    order.refresh_from_db()
    assert order.is_fully_refunded


def test_the_refund_api_refuses_more_than_remains_and_changes_nothing(api, programme):
    # given
    api.order(external_id="SO-1", amount="100.00")
    first = api.post("/api/v1/orders/SO-1/refunds/", {"external_id": "RF-1", "amount": "70.00"})
    member = Member.objects.get(external_id="M-1")
    before = balances(member)

    # when
    response = api.post("/api/v1/orders/SO-1/refunds/", {"external_id": "RF-2", "amount": "30.01"})

    # then
    assert first.status_code == 201
    assert response.status_code == 400
    assert "amount" in str(response.json())
    assert Refund.objects.count() == 1
    assert Order.objects.get().refunded_amount == Decimal("70.00")
    assert balances(member) == before


def test_the_refund_api_answers_404_for_an_unknown_order(api):
    response = api.post("/api/v1/orders/NOPE/refunds/", {"external_id": "RF-1", "amount": "1"})
    assert response.status_code == 404
    assert not Refund.objects.exists()


def test_a_refund_posted_to_the_api_is_reversed_after_commit(api, programme):
    # given: 100 + 7 points, 100 + 3 growth points
    api.order(external_id="SO-1", amount="100.00")
    member = Member.objects.get(external_id="M-1")
    earned = balances(member)

    # when
    response = api.post("/api/v1/orders/SO-1/refunds/", {"external_id": "RF-1", "amount": "50"})

    # then: 50 + floor(3.5) points, 50 + floor(1.5) growth points back
    assert response.status_code == 201
    assert Refund.objects.get().is_evaluated
    assert earned == (107, 103)
    assert balances(member) == (107 - 53, 103 - 51)


# --- what the evaluation takes back ---------------------------------------------------


def test_repeated_partial_refunds_add_up_exactly(programme):
    # given
    member = MemberFactory()
    order = record(member, "100.00")
    evaluate_order(order)

    # when: a third, a third, and the rest
    seen = []
    for amount in ("33.33", "33.33", "33.34"):
        evaluate_refund(refund(order, amount))
        seen.append(balances(member))

    # then: each step owes floor(given x share) in total, the last everything
    assert seen == [
        (107 - (33 + 2), 103 - (33 + 0)),
        (107 - (66 + 4), 103 - (66 + 1)),
        (0, 0),
    ]
    reversals = PointsEntry.objects.filter(member=member, kind="reverse")
    assert sorted(reversals.values_list("points", flat=True)) == sorted([-33, -33, -34, -2, -2, -3])
    assert all(entry.order_id == order.pk for entry in reversals)


def test_reversals_are_linked_to_the_order_and_to_the_rule_firing_they_undo(programme):
    # given
    member = MemberFactory()
    order = record(member, "100")
    evaluate_order(order)
    firing = order.firings.get()

    # when
    evaluate_refund(refund(order, "100"))

    # then
    for ledger in (PointsEntry, GrowthEntry):
        reversed_ = ledger.objects.filter(member=member, kind="reverse")
        assert set(reversed_.values_list("order", "firing")) == {
            (order.pk, None),
            (order.pk, firing.pk),
        }


def test_a_refund_in_full_voids_the_unused_coupons_the_orders_rules_issued(programme):
    # given: two orders, each with a coupon; one of the first order's coupons is used
    second_coupon = RuleFactory(code="z-second-coupon", firing_limit="every_time")
    action(second_coupon, "issue_coupon", coupon_template=CouponTemplateFactory())
    member = MemberFactory()
    order, other = record(member, "100"), record(member, "100")
    evaluate_order(order)
    evaluate_order(other)
    used = Coupon.objects.filter(firing__order=order).order_by("pk").first()
    used.status = "redeemed"
    used.save()

    # when: a partial refund, then the rest
    evaluate_refund(refund(order, "99.99"))
    after_partial = set(Coupon.objects.filter(firing__order=order).values_list("status", flat=True))
    evaluate_refund(refund(order, "0.01"))

    # then
    assert after_partial == {"issued", "redeemed"}
    by_order = {
        key: sorted(Coupon.objects.filter(firing__order=key).values_list("status", flat=True))
        for key in (order, other)
    }
    assert by_order == {order: ["redeemed", "void"], other: ["issued", "issued"]}


def test_only_what_the_order_caused_is_taken_back(programme):
    # given: a welcome bonus, a refund rule's consolation points, and another order
    welcome = RuleFactory(trigger="member_joined")
    action(welcome, "award_points", points=1000)
    consolation = RuleFactory(trigger="order_refunded", firing_limit="every_time")
    action(consolation, "award_points", points=5)
    member = MemberFactory()
    member_evaluate(member_id=member.pk, trigger="member_joined")
    order, kept = record(member, "100"), record(member, "200")
    evaluate_order(order)
    evaluate_order(kept)

    # when
    evaluate_refund(refund(order, "100"))

    # then: 1000 + (200 + 7) + 5 points; (200 + 3) growth points
    assert balances(member) == (1000 + 207 + 5, 203)


def test_evaluating_a_refund_twice_takes_back_once(programme):
    member = MemberFactory()
    order = record(member, "100")
    evaluate_order(order)
    made = refund(order, "50")
    evaluate_refund(made)
    entries = PointsEntry.objects.count(), GrowthEntry.objects.count()
    evaluate_refund(made)
    assert (PointsEntry.objects.count(), GrowthEntry.objects.count()) == entries
    assert balances(member) == (54, 52)


def test_points_earned_at_a_tier_multiplier_are_taken_back_in_proportion(programme):
    # given: 1.5 points per yuan on this tier
    member = MemberFactory(tier=TierFactory(code="gold", rank=2, points_multiplier=Decimal("1.5")))
    order = record(member, "99.00")
    evaluate_order(order)

    # when
    evaluate_refund(refund(order, "33.00"))

    # then: floor(148 x 1/3) = 49 and floor(7 x 1/3) = 2 back
    assert points_balance(member_id=member.pk) == 148 + 7 - 49 - 2


# --- whichever is evaluated first ---------------------------------------------------


def _run(sequence, member, order, refunds):
    for step in sequence:
        if step == "order":
            evaluate_order(order)
        else:
            evaluate_refund(refunds[int(step[-1])])


@pytest.mark.parametrize(
    "sequence",
    [
        ("order", "refund0"),
        ("refund0", "order"),
    ],
)
@pytest.mark.parametrize(
    ("amount", "points", "growth", "coupons"),
    [
        # 40% back: 40 + floor(2.8) points, 40 + floor(1.2) growth points
        ("40.00", 107 - 42, 103 - 41, ["issued"]),
        ("100.00", 0, 0, ["void"]),
    ],
)
def test_the_outcome_does_not_depend_on_what_is_evaluated_first(
    programme, sequence, amount, points, growth, coupons
):
    # given
    member = MemberFactory()
    order = record(member, "100")
    refunds = [refund(order, amount)]

    # when
    _run(sequence, member, order, refunds)

    # then
    assert (balances(member), coupon_statuses(member)) == ((points, growth), coupons)


@pytest.mark.parametrize(
    "sequence",
    [
        ("order", "refund0", "refund1"),
        ("order", "refund1", "refund0"),
        ("refund0", "order", "refund1"),
        ("refund1", "refund0", "order"),
    ],
)
def test_several_refunds_reconcile_in_any_order(programme, sequence):
    # given: 30 + 45 of 100 refunded
    member = MemberFactory()
    order = record(member, "100")
    refunds = [refund(order, "30"), refund(order, "45")]

    # when
    _run(sequence, member, order, refunds)

    # then: 75 + floor(5.25) points, 75 + floor(2.25) growth points back
    assert (balances(member), coupon_statuses(member)) == ((107 - 80, 103 - 77), ["issued"])
