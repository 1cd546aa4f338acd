"""A tier lapsing: the keep-tier ("保级") reminder before it does, renewal when the
period's figures meet the tier's threshold, and otherwise a move down to the highest tier
they meet, or one step. Business dates are in TIME_ZONE (Asia/Shanghai)."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from benefits.models import Coupon, GrowthEntry
from members.models import Member, Tier, TierChange
from notifications.models import Notification
from orders.services import refund_record
from rules.models import RuleFiring
from rules.programme.load import programme_load
from rules.services.evaluation import members_tier_lapse
from rules.services.lifecycle import tier_lapses_due
from tests.factories import TierFactory
from tests.helpers import (
    GOLD_SINCE,
    LAPSE_DAY,
    LAPSES_AT,
    local,
    member_on,
    messages,
    run_day,
    spend,
    tier,
)

pytestmark = pytest.mark.django_db


# Silver and Gold last a year and are kept by spend; Gold reminds members who are short of
# its threshold 15 days ahead with a coupon; a renewal and a move down each send a message.
PROGRAMME = """
tiers:
  - {code: regular, name: 普通会员, rank: 0}
  - {code: silver, name: 银卡会员, rank: 1, validity: days, validity_days: 365,
     keep_threshold: 1000}
  - {code: gold, name: 金卡会员, rank: 2, validity: days, validity_days: 365,
     keep_threshold: 5000, remind_days_before: 15}
coupon_templates:
  - {code: gold-keep, name: 金卡保级券, min_spend: 500, amount_off: 100, valid_days: 15}
notification_templates:
  - code: gold-keep-sms
    channel: sms
    body: "您的{{ tier.name }}资格将于{{ tier.expires_at|date:'n月j日' }}到期。"
  - code: tier-renewed-sms
    channel: sms
    body: "您的{{ tier.name }}资格已续期至{{ tier.expires_at|date:'Y年n月j日' }}。"
  - code: tier-lapsed-sms
    channel: sms
    body: "您的会员等级已调整为{{ tier.name }}。"
rules:
  - code: gold-keep-reminder
    name: Gold keep-tier reminder
    trigger: tier_expiring
    fires: every_time
    conditions:
      all:
        - {fact: tier, op: eq, value: gold}
        - {fact: keep_tier_shortfall, op: gt, value: 0}
    actions:
      - {type: issue_coupon, template: gold-keep}
      - {type: notify, template: gold-keep-sms}
  - code: tier-renewed
    name: Tier renewed
    trigger: tier_changed
    fires: every_time
    conditions:
      all:
        - {fact: tier_move, op: eq, value: 0}
        - {fact: tier_rank, op: gt, value: 0}
    actions:
      - {type: notify, template: tier-renewed-sms}
  - code: tier-lapsed
    name: Tier lapsed
    trigger: tier_changed
    fires: every_time
    conditions:
      all:
        - {fact: tier_move, op: lt, value: 0}
    actions:
      - {type: notify, template: tier-lapsed-sms}
"""

REMIND_DAY = date(2025, 6, 17)  # Gold's remind_days_before (15) ahead of the lapse day


def keep_coupons(member: Member) -> int:
    return Coupon.objects.filter(member=member, template__code="gold-keep").count()


@pytest.fixture
def programme() -> None:
    programme_load(PROGRAMME)


@pytest.fixture
def ladder() -> dict[str, Tier]:
    """Four tiers kept by spend; the base one never lapses."""
    year = {"validity": "days", "validity_days": 365}
    return {
        "regular": TierFactory(code="regular", rank=0),
        "silver": TierFactory(code="silver", rank=1, keep_threshold=Decimal(1000), **year),
        "gold": TierFactory(code="gold", rank=2, keep_threshold=Decimal(5000), **year),
        "platinum": TierFactory(code="platinum", rank=3, keep_threshold=Decimal(20000), **year),
    }


# --- with the programme above: reminder, move down, renewal ---------------------------


@pytest.mark.parametrize(
    ("period_spend", "lands_on"),
    [("3000", "silver"), ("1000", "silver"), ("999.99", "regular"), ("0", "regular")],
)
def test_a_gold_member_short_of_the_threshold_is_reminded_once_then_moved_down(
    programme, django_capture_on_commit_callbacks, period_spend, lands_on
):
    # given: Gold, with this much spent in the period and a big order just before it
    member = member_on(tier("gold"), name="王先生")
    spend(member, "20000", GOLD_SINCE - timedelta(days=1))
    if Decimal(period_spend):
        spend(member, period_spend, local(2025, 3, 1))

    # when: the reminder day runs twice (a repeated beat), then the day after
    for day in (REMIND_DAY, REMIND_DAY, REMIND_DAY + timedelta(days=1)):
        run_day(day, django_capture_on_commit_callbacks)

    # then: one keep-tier coupon and one reminder
    assert keep_coupons(member) == 1
    [reminder] = messages(member, "gold-keep-sms")
    assert "金卡会员资格将于7月2日到期" in reminder.body
    firing = RuleFiring.objects.get(member=member, rule__code="gold-keep-reminder")
    shortfall = Decimal(5000) - Decimal(period_spend)
    assert Decimal(firing.facts["keep_tier_shortfall"]) == shortfall

    # when: the day the tier lapses
    done = run_day(LAPSE_DAY, django_capture_on_commit_callbacks)

    # then: moved down at the moment it lapsed, for a new period of the lower tier
    member.refresh_from_db()
    assert done["tier_lapse"] == 1
    assert member.tier.code == lands_on
    assert (member.tier_since, member.tier_period_start) == (LAPSES_AT, LAPSES_AT)
    assert member.tier_expires_at == tier(lands_on).expiry_from(LAPSES_AT)
    change = TierChange.objects.filter(member=member).get()
    assert (change.from_tier.code, change.to_tier.code, change.created_at) == (
        "gold",
        lands_on,
        LAPSES_AT,
    )
    figure = f"{Decimal(period_spend):.2f}"
    assert change.reason == f"lapsed: spend {figure} of 5000.00 in the period"
    assert change.changed_by is None and change.is_evaluated
    [lapsed] = messages(member, "tier-lapsed-sms")
    assert f"您的会员等级已调整为{tier(lands_on).name}" in lapsed.body
    assert messages(member, "tier-renewed-sms") == []
    assert keep_coupons(member) == 1  # the lapse day sends no second reminder


@pytest.mark.parametrize("period_spend", ["5000", "8000"])
def test_a_gold_member_who_met_the_threshold_is_not_reminded_and_is_renewed(
    programme, django_capture_on_commit_callbacks, period_spend
):
    # given: the threshold met in two orders within the period
    member = member_on(tier("gold"))
    half = Decimal(period_spend) / 2
    spend(member, str(half), GOLD_SINCE + timedelta(hours=1))
    spend(member, str(half), LAPSES_AT - timedelta(minutes=1))

    # when
    run_day(REMIND_DAY, django_capture_on_commit_callbacks)
    done = run_day(LAPSE_DAY, django_capture_on_commit_callbacks)

    # then: no reminder; a new year of Gold from where the last one ended
    assert keep_coupons(member) == 0
    assert messages(member, "gold-keep-sms") == []
    assert done["tier_lapse"] == 1
    member.refresh_from_db()
    assert member.tier.code == "gold"
    assert member.tier_since == GOLD_SINCE  # still Gold since then
    assert member.tier_period_start == LAPSES_AT
    assert member.tier_expires_at == local(2026, 7, 2, 0, 0)
    change = TierChange.objects.get(member=member)
    assert (change.from_tier.code, change.to_tier.code) == ("gold", "gold")
    assert change.reason == f"renewed: spend {Decimal(period_spend):.2f} of 5000.00 in the period"
    [renewed] = messages(member, "tier-renewed-sms")
    assert "金卡会员资格已续期至2026年7月2日" in renewed.body
    assert messages(member, "tier-lapsed-sms") == []


def test_running_the_expiry_day_again_changes_nothing(
    programme, django_capture_on_commit_callbacks
):
    # given: one Gold member who kept the tier and one who did not, both lapsing today
    kept = member_on(tier("gold"))
    spend(kept, "5200", local(2025, 5, 1))
    lost = member_on(tier("gold"))
    spend(lost, "1200", local(2025, 5, 1))
    first = run_day(LAPSE_DAY, django_capture_on_commit_callbacks)
    before = (
        Member.objects.values_list("pk", "tier__code", "tier_period_start", "tier_expires_at"),
        TierChange.objects.count(),
        Notification.objects.count(),
        RuleFiring.objects.count(),
    )

    # when
    again = run_day(LAPSE_DAY, django_capture_on_commit_callbacks)

    # then
    assert first["tier_lapse"] == 2
    assert "tier_lapse" not in again  # nobody left to settle
    after = (
        Member.objects.values_list("pk", "tier__code", "tier_period_start", "tier_expires_at"),
        TierChange.objects.count(),
        Notification.objects.count(),
        RuleFiring.objects.count(),
    )
    assert (sorted(after[0]), *after[1:]) == (sorted(before[0]), *before[1:])
    assert {m.tier.code for m in Member.objects.filter(pk__in=[kept.pk, lost.pk])} == {
        "gold",
        "silver",
    }
    assert before[1:] == (2, 2, 2)  # a change, a message and a firing each


# --- when a lapse is settled, and where the member lands -------------------------------


def test_a_tier_is_not_settled_before_the_day_it_lapses(ladder):
    # given
    member = member_on(ladder["gold"])

    # when
    due_the_day_before = tier_lapses_due(LAPSE_DAY - timedelta(days=1))
    settled = members_tier_lapse(member_ids=[member.pk], on_date=LAPSE_DAY - timedelta(days=1))

    # then
    assert member.pk not in due_the_day_before
    assert member.pk in tier_lapses_due(LAPSE_DAY)
    assert settled == []
    member.refresh_from_db()
    assert (member.tier.code, member.tier_expires_at) == ("gold", LAPSES_AT)


def test_spend_refunded_in_the_period_does_not_count_towards_keeping_the_tier(ladder):
    # given: 6000 spent in the period, 2000 of it refunded
    member = member_on(ladder["gold"])
    order = spend(member, "6000", local(2025, 1, 10))
    refund_record(
        order_external_id=order.external_id,
        external_id="RF-1",
        amount=Decimal(2000),
        refunded_at=local(2025, 2, 1),
    )

    # when
    members_tier_lapse(member_ids=[member.pk], on_date=LAPSE_DAY)

    # then
    member.refresh_from_db()
    assert member.tier.code == "silver"
    assert TierChange.objects.get(member=member).reason == (
        "lapsed: spend 4000.00 of 5000.00 in the period"
    )


@pytest.mark.parametrize(
    ("lapse_to", "period_spend", "lands_on"),
    [
        ("highest_qualifying", "25000", "platinum"),  # kept: renewed
        ("highest_qualifying", "6000", "gold"),
        ("highest_qualifying", "1500", "silver"),
        ("highest_qualifying", "0", "regular"),
        ("one_step", "25000", "platinum"),
        ("one_step", "6000", "gold"),
        ("one_step", "1500", "gold"),  # one step down, whatever the figures
        ("one_step", "0", "gold"),
    ],
)
def test_a_lapsing_member_moves_down_as_the_tier_says(ladder, lapse_to, period_spend, lands_on):
    # given
    platinum = ladder["platinum"]
    platinum.lapse_to = lapse_to
    platinum.save()
    member = member_on(platinum)
    if Decimal(period_spend):
        spend(member, period_spend, local(2025, 4, 1))

    # when
    made = members_tier_lapse(member_ids=[member.pk], on_date=LAPSE_DAY)

    # then
    member.refresh_from_db()
    assert member.tier.code == lands_on
    assert [(c.from_tier.code, c.to_tier.code) for c in made] == [("platinum", lands_on)]
    assert member.tier_period_start == LAPSES_AT


@pytest.fixture
def growth_ladder() -> dict[str, Tier]:
    year = {"validity": "days", "validity_days": 365, "keep_metric": "growth"}
    return {
        "base": TierFactory(code="base", rank=0),
        "silver": TierFactory(code="silver", rank=1, keep_threshold=Decimal(300), **year),
        "gold": TierFactory(code="gold", rank=2, keep_threshold=Decimal(1000), **year),
    }


@pytest.mark.parametrize(
    ("entries", "lands_on", "reason"),
    [
        ([(1200, local(2025, 1, 5))], "gold", "renewed: growth points 1200 of 1000.00"),
        ([(1000, LAPSES_AT - timedelta(seconds=1))], "gold", "renewed: growth points 1000"),
        ([(1000, LAPSES_AT)], "gold", "renewed: growth points 1000"),
        ([(400, local(2025, 1, 5))], "silver", "lapsed: growth points 400 of 1000.00"),
        # a reversal in the period counts against it
        ([(1100, local(2025, 1, 5)), (-200, local(2025, 2, 5))], "silver", "lapsed"),
        # earned before the period began, at the moment that began it (the upgrade), or
        # after its end: not this period's (its very end is)
        (
            [
                (5000, GOLD_SINCE - timedelta(seconds=1)),
                (5000, GOLD_SINCE),
                (5000, LAPSES_AT + timedelta(microseconds=1)),
                (100, local(2025, 1, 5)),
            ],
            "base",
            "lapsed: growth points 100 of 1000.00",
        ),
    ],
)
def test_a_growth_points_threshold_counts_growth_earned_in_the_period(
    growth_ladder, entries, lands_on, reason
):
    # given
    member = member_on(growth_ladder["gold"])
    for points, at in entries:
        GrowthEntry.objects.create(
            member=member,
            kind="bonus" if points > 0 else "reverse",
            points=points,
            reason="test",
            created_at=at,
        )

    # when
    members_tier_lapse(member_ids=[member.pk], on_date=LAPSE_DAY)

    # then
    member.refresh_from_db()
    assert member.tier.code == lands_on
    assert TierChange.objects.get(member=member).reason.startswith(reason)


@pytest.mark.parametrize(
    ("validity", "since", "first_lapse", "next_lapse"),
    [
        # 30 days from 10:00 on 1 June: at midnight starting 2 July; then 30 days more
        (
            {"validity": "days", "validity_days": 30},
            local(2025, 6, 1, 10),
            local(2025, 7, 2, 0, 0),
            local(2025, 8, 1, 0, 0),
        ),
        (
            {"validity": "calendar_year"},
            local(2024, 3, 5),
            local(2025, 1, 1, 0, 0),
            local(2026, 1, 1, 0, 0),
        ),
    ],
)
def test_a_tier_with_no_threshold_is_renewed(validity, since, first_lapse, next_lapse):
    # given: a tier nobody has to earn again, and no spend at all
    TierFactory(code="regular", rank=0)
    club = TierFactory(code="club", rank=1, keep_threshold=None, **validity)
    member = member_on(club, since=since)
    assert member.tier_expires_at == first_lapse

    # when
    made = members_tier_lapse(member_ids=[member.pk], on_date=first_lapse.date())

    # then
    member.refresh_from_db()
    assert [(c.to_tier.code, c.reason, c.created_at) for c in made] == [
        ("club", "renewed", first_lapse)
    ]
    assert (member.tier.code, member.tier_since) == ("club", since)
    assert (member.tier_period_start, member.tier_expires_at) == (first_lapse, next_lapse)
