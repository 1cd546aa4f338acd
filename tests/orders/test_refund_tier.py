"""A refund after an upgrade: it takes back exactly what its order gave (the order's own
points and its share of what the upgrade rule awarded), and the tier follows the tier's
refund policy: at once (the upgrade is undone when its rule no longer holds) or at the
end of the period (the keep-tier threshold decides)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from benefits.models import PointsEntry
from benefits.selectors import points_balance
from benefits.services.points import earning_policy_update
from members.models import Member, RefundPolicy, Tier, TierChange
from members.services import member_set_tier_by_hand
from rules.programme.load import programme_load

pytestmark = pytest.mark.django_db

# Silver at 2000 spent, with 500 points; Gold at 10000. Both re-check the tier at once
# after a refund.
PROGRAMME = """
tiers:
  - {code: regular, name: Regular, rank: 0}
  - {code: silver, name: Silver, rank: 1, refund_policy: at_once}
  - {code: gold, name: Gold, rank: 2, refund_policy: at_once}
rules:
  - code: gold-at-10000
    name: Gold at 10000
    trigger: order_paid
    priority: 10
    fires: every_time
    conditions:
      all:
        - {fact: lifetime_spend, op: gte, value: 10000}
        - {fact: tier_rank, op: lt, value: 2}
    actions:
      - {type: set_tier, tier: gold}
  - code: silver-at-2000
    name: Silver at 2000
    trigger: order_paid
    priority: 20
    fires: every_time
    conditions:
      all:
        - {fact: lifetime_spend, op: gte, value: 2000}
        - {fact: tier_rank, op: lt, value: 1}
    actions:
      - {type: set_tier, tier: silver}
      - {type: award_points, points: 500}
"""


@pytest.fixture
def programme() -> None:
    programme_load(PROGRAMME)


def refund(api, amount, external_id="R-1", order="SO-2"):
    return api.post(
        f"/api/v1/orders/{order}/refunds/", {"external_id": external_id, "amount": amount}
    )


@pytest.fixture
def upgraded(api, programme) -> Member:
    """M-1 earned 1 point per yuan on 1500 (Regular), then crossed 2000 with a 600 order:
    Silver, with the upgrade rule's 500 bonus points."""
    earning_policy_update(points_per_unit=Decimal(1))
    api.order(external_id="SO-1", amount="1500.00")
    api.order(external_id="SO-2", amount="600.00")
    member = Member.objects.get(external_id="M-1")
    assert member.tier.code == "silver"
    assert points_balance(member_id=member.pk) == 1500 + 600 + 500
    return member


def reversed_points(member: Member) -> list[int]:
    entries = PointsEntry.objects.filter(member=member, kind="reverse").order_by("pk")
    return [entry.points for entry in entries]


def test_a_full_refund_after_an_upgrade_reverses_exactly_the_orders_points(api, upgraded):
    # when
    response = refund(api, "600.00")

    # then: the order's 600 and the upgrade's 500 are taken back, nothing more
    assert response.status_code == 201
    assert sorted(reversed_points(upgraded)) == [-600, -500]
    assert points_balance(member_id=upgraded.pk) == 1500
    # and Silver's policy is "at once": its rule (2000 spent) no longer holds
    member = Member.objects.get(pk=upgraded.pk)
    assert member.tier.code == "regular"
    change = TierChange.objects.filter(member=member).first()
    assert (change.from_tier.code, change.to_tier.code) == ("silver", "regular")
    assert "refund of order SO-2" in change.reason
    assert "silver-at-2000" in change.reason


def test_a_partial_refund_reverses_in_proportion_and_keeps_a_tier_still_earned(api, upgraded):
    # when: 100 of 600 back; 2000 are still spent
    refund(api, "100.00")

    # then: a sixth of each, rounded down
    assert sorted(reversed_points(upgraded)) == [-100, -83]
    member = Member.objects.get(pk=upgraded.pk)
    assert member.lifetime_spend == Decimal("2000.00")
    assert member.tier.code == "silver"


def test_the_timeline_shows_each_reversal_and_the_move_back(api, upgraded):
    # when
    refund(api, "600.00")

    # then
    entries = api.get("/api/v1/members/M-1/timeline/").json()["results"]
    reversals = [e for e in entries if e["type"] == "points" and e["kind"] == "reverse"]
    assert sorted(e["points"] for e in reversals) == [-600, -500]
    moves = [e for e in entries if e["type"] == "tier_change"]
    assert moves[0]["to_tier"] == "regular"
    assert moves[0]["move"] == "downgrade"


def test_with_the_end_of_period_policy_a_refund_leaves_the_tier_until_expiry(api, programme):
    # given
    Tier.objects.filter(code="silver").update(refund_policy=RefundPolicy.END_OF_PERIOD)
    api.order(external_id="SO-1", amount="1500.00")
    api.order(external_id="SO-2", amount="600.00")

    # when
    refund(api, "600.00")

    # then: still Silver; at the period's end, spend in the period decides
    member = Member.objects.get(external_id="M-1")
    assert member.tier.code == "silver"
    assert member.lifetime_spend == Decimal("1500.00")


def test_an_operators_floor_holds_against_a_refund(api, upgraded, admin_user):
    # given: set by hand to Silver with a floor of Silver (the change by hand is the
    # latest, so no rule's upgrade is there to undo)
    silver = Tier.objects.get(code="silver")
    member_set_tier_by_hand(
        member_id=upgraded.pk,
        tier=silver,
        reason="VIP",
        changed_by=admin_user,
        floor=silver,
        floor_until=timezone.localdate() + timedelta(days=30),
    )

    # when
    refund(api, "600.00")

    # then
    assert Member.objects.get(pk=upgraded.pk).tier.code == "silver"


def set_gold_by_hand(member: Member, admin_user, floor: str | None) -> None:
    member_set_tier_by_hand(
        member_id=member.pk,
        tier=Tier.objects.get(code="gold"),
        reason="VIP",
        changed_by=admin_user,
        floor=floor and Tier.objects.get(code=floor),
        floor_until=floor and timezone.localdate() + timedelta(days=30),
    )


@pytest.mark.parametrize(
    ("spent", "floor", "after_refund"),
    [
        # a floor lets automatic moves down to it: no rule granting Gold holds on 1000
        ("1500.00", "silver", "silver"),
        # ... but only as far as the tier the member came from
        ("1500.00", "regular", "regular"),
        # a rule granting Gold still holds: Gold stays
        ("12000.00", "silver", "gold"),
        # without a floor, the operator's tier stands whatever the refund
        ("1500.00", None, "gold"),
    ],
)
def test_a_tier_set_by_hand_follows_its_refund_policy_down_to_the_floor(
    api, programme, admin_user, spent, floor, after_refund
):
    # given: a Regular member set to Gold by hand (Gold refunds "at once")
    api.order(external_id="SO-1", amount=spent)
    member = Member.objects.get(external_id="M-1")
    assert member.tier.code == ("gold" if spent == "12000.00" else "regular")
    if member.tier.code == "gold":  # the rule got there first: move them by hand again
        member_set_tier_by_hand(
            member_id=member.pk,
            tier=Tier.objects.get(code="regular"),
            reason="test",
            changed_by=admin_user,
        )
    set_gold_by_hand(member, admin_user, floor)

    # when
    assert refund(api, "500.00", order="SO-1").status_code == 201

    # then
    member.refresh_from_db()
    assert member.tier.code == after_refund
    if after_refund != "gold":
        change = TierChange.objects.filter(member=member).first()
        assert change.reason == "refund of order SO-1: no rule granting gold holds"
