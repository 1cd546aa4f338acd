"""Tiers set by hand: who set it and why, a new period, the mistakes refused; and the
operator's floor, which holds a lapsing member up until its date."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from members.models import Member, Tier, TierChange
from members.services import member_set_tier_by_hand
from notifications.models import NotificationTemplate
from tests.factories import (
    MemberFactory,
    NotificationTemplateFactory,
    RuleFactory,
    TierFactory,
    action,
    condition,
)
from tests.helpers import (
    GOLD_SINCE,
    LAPSE_DAY,
    LAPSES_AT,
    changes,
    local,
    member_on,
    messages,
    run_day,
)

pytestmark = pytest.mark.django_db


NOW = local(2025, 3, 10, 15)


@pytest.fixture
def operator() -> User:
    return User.objects.create_user("ops", password="pw", is_staff=True)


@pytest.fixture
def tiers() -> dict[str, Tier]:
    """Regular, and Silver and Gold kept for a year at a time."""
    year = {"validity": "days", "validity_days": 365}
    return {
        "regular": TierFactory(code="regular", name="普通会员", rank=0),
        "silver": TierFactory(
            code="silver", name="银卡会员", rank=1, keep_threshold=Decimal(1000), **year
        ),
        "gold": TierFactory(
            code="gold", name="金卡会员", rank=2, keep_threshold=Decimal(5000), **year
        ),
    }


@pytest.fixture
def lapsed_message() -> NotificationTemplate:
    """A message to a member whose tier moved down."""
    message = NotificationTemplateFactory(
        code="tier-lapsed-sms", body="您的会员等级已调整为{{ tier.name }}。"
    )
    rule = RuleFactory(code="tier-lapsed", trigger="tier_changed", firing_limit="every_time")
    condition(rule, "tier_move", "lt", 0)
    action(rule, "notify", notification_template=message)
    return message


# --- setting a tier by hand -----------------------------------------------------------


def test_a_tier_set_by_hand_records_who_and_why_and_shows_in_the_timeline(api, tiers, operator):
    # given
    member = MemberFactory(external_id="M-1", tier=tiers["regular"])

    # when: up to Gold, then (a mistake) down to Silver an hour later
    with time_machine.travel(NOW, tick=False):
        up = member_set_tier_by_hand(
            member_id=member.pk, tier=tiers["gold"], reason="VIP customer", changed_by=operator
        )
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        down = member_set_tier_by_hand(
            member_id=member.pk,
            tier=tiers["silver"],
            reason="set by mistake",
            changed_by=operator,
        )

    # then
    member.refresh_from_db()
    assert (up.changed_by, up.reason, down.changed_by, down.reason) == (
        operator,
        "VIP customer",
        operator,
        "set by mistake",
    )
    assert member.tier.code == "silver"
    assert member.tier_since == NOW + timedelta(hours=1)
    assert member.tier_expires_at == local(2026, 3, 11, 0, 0)
    assert (member.tier_floor, member.tier_floor_until) == (None, None)
    timeline = api.get("/api/v1/members/M-1/timeline/").json()["results"]
    moves = [
        {k: entry[k] for k in ("from_tier", "to_tier", "move", "reason", "changed_by")}
        for entry in timeline
        if entry["type"] == "tier_change"
    ]
    assert moves == [
        {
            "from_tier": "gold",
            "to_tier": "silver",
            "move": "downgrade",
            "reason": "set by mistake",
            "changed_by": "ops",
        },
        {
            "from_tier": "regular",
            "to_tier": "gold",
            "move": "upgrade",
            "reason": "VIP customer",
            "changed_by": "ops",
        },
    ]


def test_setting_the_same_tier_by_hand_with_a_floor_starts_a_new_period(tiers, operator):
    # given: Gold for eight months already
    member = member_on(tiers["gold"])

    # when
    with time_machine.travel(NOW, tick=False):
        change = member_set_tier_by_hand(
            member_id=member.pk,
            tier=tiers["gold"],
            reason="kept as agreed",
            changed_by=operator,
            floor=tiers["silver"],
            floor_until=date(2026, 6, 30),
        )

    # then
    member.refresh_from_db()
    assert (change.from_tier.code, change.to_tier.code) == ("gold", "gold")
    assert change.reason == "kept as agreed (never below 银卡会员 until 2026-06-30)"
    assert (member.tier_floor.code, member.tier_floor_until) == ("silver", date(2026, 6, 30))
    assert member.tier_since == GOLD_SINCE
    assert (member.tier_period_start, member.tier_expires_at) == (NOW, local(2026, 3, 11, 0, 0))


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"reason": "   "}, "reason"),
        ({"floor": "gold", "floor_until": date(2025, 12, 31)}, "tier_floor"),  # above Silver
        ({"floor": "regular"}, "floor_until"),  # a floor without a date
        ({"floor_until": date(2025, 12, 31)}, "floor_until"),  # a date without a floor
        ({"floor": "regular", "floor_until": date(2025, 3, 9)}, "floor_until"),  # passed
    ],
)
def test_setting_a_tier_by_hand_refuses_mistakes_and_changes_nothing(
    tiers, operator, fields, field
):
    # given: Regular, with a floor set earlier
    member = MemberFactory(
        tier=tiers["regular"], tier_floor=tiers["regular"], tier_floor_until=date(2025, 4, 1)
    )
    before = Member.objects.values().get(pk=member.pk)
    arguments = {"reason": "because", **fields}
    if "floor" in arguments:
        arguments["floor"] = tiers[arguments["floor"]]

    # when
    with time_machine.travel(NOW, tick=False), pytest.raises(ValidationError) as refused:
        member_set_tier_by_hand(
            member_id=member.pk, tier=tiers["silver"], changed_by=operator, **arguments
        )

    # then
    assert set(refused.value.message_dict) == {field}
    assert Member.objects.values().get(pk=member.pk) == before
    assert not TierChange.objects.exists()


# --- the operator's floor -------------------------------------------------------------


@pytest.mark.parametrize(
    ("floor_until", "lands_on"),
    [
        (date(2025, 12, 31), "silver"),
        (LAPSE_DAY, "silver"),  # the floor still holds on its last day
        (LAPSE_DAY - timedelta(days=1), "regular"),  # it ended the day before
    ],
)
def test_a_floor_set_by_hand_holds_a_lapsing_member_up_until_its_date(
    tiers, lapsed_message, operator, django_capture_on_commit_callbacks, floor_until, lands_on
):
    # given: set by hand to Gold, never below Silver until a date; nothing spent
    member = MemberFactory(tier=tiers["regular"])
    with time_machine.travel(GOLD_SINCE, tick=False):
        member_set_tier_by_hand(
            member_id=member.pk,
            tier=tiers["gold"],
            reason="compensation",
            changed_by=operator,
            floor=tiers["silver"],
            floor_until=floor_until,
        )

    # when
    run_day(LAPSE_DAY, django_capture_on_commit_callbacks)

    # then
    member.refresh_from_db()
    assert member.tier.code == lands_on
    lapse = TierChange.objects.filter(member=member).order_by("created_at").last()
    assert (lapse.from_tier.code, lapse.to_tier.code) == ("gold", lands_on)
    held = lapse.reason.endswith("; kept at the operator's floor")
    assert held is (lands_on == "silver")
    assert lapse.changed_by is None
    assert len(messages(member, "tier-lapsed-sms")) == 1


def test_after_the_floors_date_the_floor_no_longer_applies(
    tiers, operator, django_capture_on_commit_callbacks
):
    # given: Gold, floor Silver until the end of 2025, lapsed to Silver in July 2025
    member = MemberFactory(tier=tiers["regular"])
    with time_machine.travel(GOLD_SINCE, tick=False):
        member_set_tier_by_hand(
            member_id=member.pk,
            tier=tiers["gold"],
            reason="compensation",
            changed_by=operator,
            floor=tiers["silver"],
            floor_until=date(2025, 12, 31),
        )
    run_day(LAPSE_DAY, django_capture_on_commit_callbacks)
    member.refresh_from_db()
    assert (member.tier.code, member.tier_expires_at) == ("silver", local(2026, 7, 2, 0, 0))

    # when: Silver lapses in July 2026, with nothing spent
    run_day(date(2026, 7, 2), django_capture_on_commit_callbacks)

    # then
    member.refresh_from_db()
    assert member.tier.code == "regular"
    assert changes(member)[1:] == [
        ("gold", "silver", LAPSES_AT),
        ("silver", "regular", local(2026, 7, 2, 0, 0)),
    ]
    assert TierChange.objects.filter(member=member).order_by("created_at").last().reason == (
        "lapsed: spend 0.00 of 1000.00 in the period"
    )
