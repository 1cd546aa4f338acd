"""The tier lifecycle: the keep-tier ("保级") reminder before a tier lapses, renewal or a
move down when it does (to the highest tier the period's figures meet, or one step), the
operator's floor, a daily job that catches up several periods at once, and tiers set by
hand with a reason. Business dates are in TIME_ZONE (Asia/Shanghai)."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from benefits.models import Coupon, GrowthEntry
from members.models import Member, Tier, TierChange
from members.services import member_set_tier_by_hand
from notifications.models import Notification
from orders.models import Order
from orders.services import order_record, refund_record
from rules.models import Rule, RuleFiring
from rules.services.daily import clock_triggers_run
from rules.services.evaluation import members_tier_lapse
from rules.services.lifecycle import tier_lapses_due
from tests.factories import MemberFactory, RuleFactory, TierFactory, action

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(year, month, day, hour=12, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


# A year of Gold from 10:00 on 1 July 2024 lapses at the first midnight 365 days later.
GOLD_SINCE = local(2024, 7, 1, 10)
LAPSES_AT = local(2025, 7, 2, 0, 0)
LAPSE_DAY = date(2025, 7, 2)
REMIND_DAY = date(2025, 6, 17)  # Gold's remind_days_before (15) ahead of the lapse day


def tier(code: str) -> Tier:
    return Tier.objects.get(code=code)


def member_on(tier_obj: Tier, since: datetime = GOLD_SINCE, **fields) -> Member:
    """A member who moved to `tier_obj` at `since`, for a period that lapses as it says."""
    return MemberFactory(
        tier=tier_obj,
        tier_since=since,
        tier_period_start=since,
        tier_expires_at=tier_obj.expiry_from(since),
        **fields,
    )


def spend(member: Member, amount: str, placed_at: datetime) -> Order:
    order, _ = order_record(
        external_id=f"SO-{Order.objects.count() + 1}",
        member=member.external_id,
        amount=Decimal(amount),
        currency="CNY",
        placed_at=placed_at,
    )
    return order


def run_day(day: date, capture) -> dict:
    """The daily job for `day`, run early that morning; the evaluations and deliveries it
    publishes after commit run too, as they would outside a test transaction."""
    with (
        time_machine.travel(local(day.year, day.month, day.day, 1), tick=False),
        capture(execute=True),
    ):
        return clock_triggers_run(day)


def changes(member: Member) -> list[tuple[str, str, datetime]]:
    """The member's tier history, oldest first: (from, to, at)."""
    return list(
        TierChange.objects.filter(member=member)
        .order_by("created_at", "pk")
        .values_list("from_tier__code", "to_tier__code", "created_at")
    )


def messages(member: Member, template: str) -> list[Notification]:
    return list(Notification.objects.filter(member=member, template__code=template))


def keep_coupons(member: Member) -> int:
    return Coupon.objects.filter(member=member, template__code="gold-keep").count()


# --- with the seed programme: reminder, move down, renewal ----------------------------


@pytest.mark.parametrize(
    ("period_spend", "lands_on"),
    [("3000", "silver"), ("1000", "silver"), ("999.99", "regular"), ("0", "regular")],
)
def test_a_gold_member_short_of_the_threshold_is_reminded_once_then_moved_down(
    seed, django_capture_on_commit_callbacks, period_spend, lands_on
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


def test_spend_refunded_in_the_period_does_not_count_towards_keeping_the_tier(seed):
    # given: 6000 spent in the period, 2000 of it refunded
    member = member_on(tier("gold"))
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


@pytest.mark.parametrize("period_spend", ["5000", "8000"])
def test_a_gold_member_who_met_the_threshold_is_not_reminded_and_is_renewed(
    seed, django_capture_on_commit_callbacks, period_spend
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


def test_running_the_expiry_day_again_changes_nothing(seed, django_capture_on_commit_callbacks):
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


def test_a_tier_is_not_settled_before_the_day_it_lapses(seed):
    # given
    member = member_on(tier("gold"))

    # when
    due_the_day_before = tier_lapses_due(LAPSE_DAY - timedelta(days=1))
    settled = members_tier_lapse(member_ids=[member.pk], on_date=LAPSE_DAY - timedelta(days=1))

    # then
    assert member.pk not in due_the_day_before
    assert member.pk in tier_lapses_due(LAPSE_DAY)
    assert settled == []
    member.refresh_from_db()
    assert (member.tier.code, member.tier_expires_at) == ("gold", LAPSES_AT)


# --- where a lapsing member lands -----------------------------------------------------


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


# --- the operator's floor -------------------------------------------------------------


@pytest.fixture
def operator() -> User:
    return User.objects.create_user("ops", password="pw", is_staff=True)


@pytest.mark.parametrize(
    ("floor_until", "lands_on"),
    [
        (date(2025, 12, 31), "silver"),
        (LAPSE_DAY, "silver"),  # the floor still holds on its last day
        (LAPSE_DAY - timedelta(days=1), "regular"),  # it ended the day before
    ],
)
def test_a_floor_set_by_hand_holds_a_lapsing_member_up_until_its_date(
    seed, operator, django_capture_on_commit_callbacks, floor_until, lands_on
):
    # given: set by hand to Gold, never below Silver until a date; nothing spent
    member = MemberFactory(tier=tier("regular"))
    with time_machine.travel(GOLD_SINCE, tick=False):
        member_set_tier_by_hand(
            member_id=member.pk,
            tier=tier("gold"),
            reason="compensation",
            changed_by=operator,
            floor=tier("silver"),
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
    seed, operator, django_capture_on_commit_callbacks
):
    # given: Gold, floor Silver until the end of 2025, lapsed to Silver in July 2025
    member = MemberFactory(tier=tier("regular"))
    with time_machine.travel(GOLD_SINCE, tick=False):
        member_set_tier_by_hand(
            member_id=member.pk,
            tier=tier("gold"),
            reason="compensation",
            changed_by=operator,
            floor=tier("silver"),
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


# --- catching up ----------------------------------------------------------------------


def test_a_member_several_periods_behind_is_settled_in_one_run(
    seed, django_capture_on_commit_callbacks
):
    # given: Gold from July 2022; the threshold met in the first year, 1500 in the second,
    # nothing since; the daily job has not settled any of it
    since = local(2022, 7, 1, 10)
    member = member_on(tier("gold"), since=since)
    spend(member, "6000", local(2023, 3, 1))
    spend(member, "1500", local(2024, 3, 1))

    # when
    out = StringIO()
    with (
        time_machine.travel(local(2025, 7, 10, 9), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        call_command("run_daily", "--date", "2025-07-10", stdout=out)

    # then: renewed, then down to Silver, then (Silver not kept) down to Regular
    member.refresh_from_db()
    assert changes(member) == [
        ("gold", "gold", local(2023, 7, 2, 0, 0)),
        ("gold", "silver", local(2024, 7, 1, 0, 0)),  # 2024 is a leap year
        ("silver", "regular", local(2025, 7, 1, 0, 0)),
    ]
    assert [c.reason for c in TierChange.objects.filter(member=member).order_by("created_at")] == [
        "renewed: spend 6000.00 of 5000.00 in the period",
        "lapsed: spend 1500.00 of 5000.00 in the period",
        "lapsed: spend 0.00 of 1000.00 in the period",
    ]
    assert (member.tier.code, member.tier_since, member.tier_expires_at) == (
        "regular",
        local(2025, 7, 1, 0, 0),
        None,
    )
    assert all(change.is_evaluated for change in TierChange.objects.filter(member=member))
    assert "tier_lapse: 3 tier renewals or moves" in out.getvalue()
    # only the latest move is news: one message, about where the member is now
    texts = list(Notification.objects.filter(member=member).values_list("body", flat=True))
    assert len(texts) == 1
    assert "普通会员" in texts[0]

    # when: the same day again
    again = StringIO()
    with time_machine.travel(local(2025, 7, 10, 9), tick=False):
        call_command("run_daily", "--date", "2025-07-10", stdout=again)

    # then
    assert TierChange.objects.filter(member=member).count() == 3
    assert "tier_lapse" not in again.getvalue()


def test_the_daily_job_refuses_a_future_date_and_settles_nothing(seed):
    # given: a Gold tier that has lapsed and is waiting to be settled
    member = member_on(tier("gold"))

    # when
    with (
        time_machine.travel(local(2025, 7, 10, 9), tick=False),
        pytest.raises(CommandError, match="future"),
    ):
        call_command("run_daily", "--date", "2025-07-11", stdout=StringIO())

    # then
    member.refresh_from_db()
    assert (member.tier.code, member.tier_expires_at) == ("gold", LAPSES_AT)
    assert not TierChange.objects.exists()


# --- reminders on each tier's own day -------------------------------------------------


def test_a_tier_expiring_rule_without_days_uses_each_tiers_reminder_days():
    # given: Silver reminds 30 days ahead, Gold 15; one rule without days, one with 7
    year = {"validity": "days", "validity_days": 365}
    TierFactory(code="regular", rank=0)
    silver = TierFactory(code="silver", rank=1, remind_days_before=30, **year)
    gold = TierFactory(code="gold", rank=2, remind_days_before=15, **year)
    own_days = RuleFactory(trigger="tier_expiring", trigger_days=None, firing_limit="every_time")
    week = RuleFactory(trigger="tier_expiring", trigger_days=7, firing_limit="every_time")
    for rule in (own_days, week):
        action(rule, "award_points", points=10)
    day = date(2025, 6, 20)

    def lapsing_in(tier_obj, days):
        return MemberFactory(
            tier=tier_obj, tier_expires_at=local(2025, 6, 20, 0, 0) + timedelta(days=days)
        )

    silver_in_30, gold_in_15 = lapsing_in(silver, 30), lapsing_in(gold, 15)
    silver_in_15, gold_in_30, gold_in_7 = (
        lapsing_in(silver, 15),
        lapsing_in(gold, 30),
        lapsing_in(gold, 7),
    )

    # when
    with time_machine.travel(local(2025, 6, 20, 1), tick=False):
        done = clock_triggers_run(day)

    # then
    reminded = RuleFiring.objects.filter(rule=own_days)
    assert {f.member_id for f in reminded} == {silver_in_30.pk, gold_in_15.pk}
    assert sorted(f.occurrence_key for f in reminded) == [
        "tier_expiring:2025-07-05",
        "tier_expiring:2025-07-20",
    ]
    assert list(RuleFiring.objects.filter(rule=week).values_list("member", flat=True)) == [
        gold_in_7.pk
    ]
    assert done["tier_expiring"] == 3
    assert not RuleFiring.objects.filter(member__in=[silver_in_15, gold_in_30]).exists()


# --- setting a tier by hand -----------------------------------------------------------


NOW = local(2025, 3, 10, 15)


def test_a_tier_set_by_hand_records_who_and_why_and_shows_in_the_timeline(api, seed, operator):
    # given
    member = MemberFactory(external_id="M-1", tier=tier("regular"))

    # when: up to Gold, then (a mistake) down to Silver an hour later
    with time_machine.travel(NOW, tick=False):
        up = member_set_tier_by_hand(
            member_id=member.pk, tier=tier("gold"), reason="VIP customer", changed_by=operator
        )
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        down = member_set_tier_by_hand(
            member_id=member.pk, tier=tier("silver"), reason="set by mistake", changed_by=operator
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


def test_the_timeline_calls_a_lapse_a_downgrade_and_a_renewal_a_renewal(api, seed):
    # given
    kept = member_on(tier("gold"), external_id="M-KEPT")
    spend(kept, "5000", local(2025, 5, 1))
    lost = member_on(tier("gold"), external_id="M-LOST")

    # when
    for member in (kept, lost):
        members_tier_lapse(member_ids=[member.pk], on_date=LAPSE_DAY)

    # then
    for external_id, move in (("M-KEPT", "renewal"), ("M-LOST", "downgrade")):
        results = api.get(f"/api/v1/members/{external_id}/timeline/").json()["results"]
        [entry] = [e for e in results if e["type"] == "tier_change"]
        assert (entry["move"], entry["changed_by"]) == (move, None)
        assert entry["reason"].startswith("renewed" if move == "renewal" else "lapsed")


def test_setting_the_same_tier_by_hand_with_a_floor_starts_a_new_period(seed, operator):
    # given: Gold for eight months already
    member = member_on(tier("gold"))

    # when
    with time_machine.travel(NOW, tick=False):
        change = member_set_tier_by_hand(
            member_id=member.pk,
            tier=tier("gold"),
            reason="kept as agreed",
            changed_by=operator,
            floor=tier("silver"),
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
def test_setting_a_tier_by_hand_refuses_mistakes_and_changes_nothing(seed, operator, fields, field):
    # given: Regular, with a floor set earlier
    member = MemberFactory(
        tier=tier("regular"), tier_floor=tier("regular"), tier_floor_until=date(2025, 4, 1)
    )
    before = Member.objects.values().get(pk=member.pk)
    arguments = {"reason": "because", **fields}
    if "floor" in arguments:
        arguments["floor"] = tier(arguments["floor"])

    # when
    with time_machine.travel(NOW, tick=False), pytest.raises(ValidationError) as refused:
        member_set_tier_by_hand(
            member_id=member.pk, tier=tier("silver"), changed_by=operator, **arguments
        )

    # then
    assert set(refused.value.message_dict) == {field}
    assert Member.objects.values().get(pk=member.pk) == before
    assert not TierChange.objects.exists()


# --- the admin's "Set tier…" page -----------------------------------------------------


def set_tier_url(member: Member) -> str:
    return reverse("admin:members_member_set_tier", args=[member.pk])


def test_the_set_tier_page_shows_the_form_and_the_current_tier(admin_client, seed):
    member = MemberFactory(
        tier=tier("silver"), tier_floor=tier("regular"), tier_floor_until=date(2099, 1, 1)
    )
    change_page = admin_client.get(reverse("admin:members_member_change", args=[member.pk]))
    response = admin_client.get(set_tier_url(member))
    text = response.content.decode()
    assert response.status_code == 200
    assert f'href="{set_tier_url(member)}"' in change_page.content.decode()
    assert "Now on: 银卡会员." in text
    assert "Never below 普通会员 until" in text
    for name in ("tier", "reason", "tier_floor", "floor_until"):
        assert f'name="{name}"' in text
    assert response.context["form"].initial["tier"] == tier("silver")


def test_posting_the_set_tier_form_sets_the_tier_and_goes_back_to_the_member(admin_client, seed):
    # given
    member = MemberFactory(tier=tier("regular"))

    # when
    with time_machine.travel(NOW, tick=False):
        response = admin_client.post(
            set_tier_url(member),
            {
                "tier": tier("gold").pk,
                "reason": "store manager's decision",
                "tier_floor": tier("silver").pk,
                "floor_until": "2025-12-31",
            },
        )

    # then
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:members_member_change", args=[member.pk])
    member.refresh_from_db()
    assert (member.tier.code, member.tier_floor.code, member.tier_floor_until) == (
        "gold",
        "silver",
        date(2025, 12, 31),
    )
    change = TierChange.objects.get(member=member)
    assert change.changed_by.username == "boss"
    assert change.reason == "store manager's decision (never below 银卡会员 until 2025-12-31)"


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        ({"reason": ""}, "reason", "This field is required."),
        ({"tier_floor": "silver"}, "floor_until", "Give both the floor tier and its end date."),
        (
            {"tier_floor": "gold", "floor_until": "2025-12-31"},
            "tier_floor",
            "The floor cannot be above the tier set.",
        ),
        ({"tier_floor": "regular", "floor_until": "2025-01-01"}, "floor_until", "has passed"),
    ],
)
def test_a_set_tier_form_with_mistakes_shows_them_and_changes_nothing(
    admin_client, seed, data, field, error
):
    # given
    member = MemberFactory(tier=tier("regular"))
    posted = {"tier": tier("silver").pk, "reason": "because", **data}
    if "tier_floor" in data:
        posted["tier_floor"] = tier(data["tier_floor"]).pk

    # when
    with time_machine.travel(NOW, tick=False):
        response = admin_client.post(set_tier_url(member), posted)

    # then
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert any(error in message for message in errors[field])
    assert error.replace("'", "&#x27;") in response.content.decode()
    member.refresh_from_db()
    assert (member.tier.code, member.tier_floor) == ("regular", None)
    assert not TierChange.objects.exists()


def test_staff_who_may_only_view_members_cannot_set_a_tier(client, seed):
    # given
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_member"))
    client.force_login(viewer)
    member = MemberFactory(tier=tier("regular"))

    # when
    shown = client.get(set_tier_url(member))
    posted = client.post(set_tier_url(member), {"tier": tier("gold").pk, "reason": "why not"})

    # then
    assert (shown.status_code, posted.status_code) == (403, 403)
    member.refresh_from_db()
    assert member.tier.code == "regular"
    assert not TierChange.objects.exists()


# --- preview and "test on a member" for tier_changed rules ----------------------------


def test_testing_the_tier_lapsed_rule_on_a_member_who_moved_down(admin_client, seed):
    # given: a Gold member who lapsed to Silver, and one who was renewed
    lost = member_on(tier("gold"), external_id="M-LOST")
    spend(lost, "1200", local(2025, 5, 1))
    kept = member_on(tier("gold"), external_id="M-KEPT")
    spend(kept, "5000", local(2025, 5, 1))
    for member in (lost, kept):
        members_tier_lapse(member_ids=[member.pk], on_date=LAPSE_DAY)
    lapsed_rule = Rule.objects.get(code="tier-lapsed")
    renewed_rule = Rule.objects.get(code="tier-renewed")
    firings = RuleFiring.objects.count()

    def verdict(rule, external_id):
        url = reverse("admin:rules_rule_test", args=[rule.pk])
        response = admin_client.get(url, {"member": external_id})
        assert response.status_code == 200
        return response.content.decode()

    # when
    lapsed_on_lost = verdict(lapsed_rule, "M-LOST")
    lapsed_on_kept = verdict(lapsed_rule, "M-KEPT")
    renewed_on_kept = verdict(renewed_rule, "M-KEPT")
    preview = admin_client.get(reverse("admin:rules_rule_preview", args=[lapsed_rule.pk]))

    # then: the lapse evaluated each move's rules as it made it, so the test finds each
    # rule's conditions as they were met, and the firing already made
    assert RuleFiring.objects.filter(rule=lapsed_rule, member=lost).exists()
    assert RuleFiring.objects.filter(rule=renewed_rule, member=kept).exists()
    assert "It already fired for this member" in lapsed_on_lost
    assert "Triggering change: the latest, 金卡会员 → 银卡会员." in lapsed_on_lost
    assert "The rule would not fire for this member." in lapsed_on_kept
    assert "It already fired for this member" not in lapsed_on_kept
    assert "Triggering change: the latest, 金卡会员 → 金卡会员." in lapsed_on_kept
    assert "It already fired for this member" in renewed_on_kept
    assert preview.status_code == 200
    assert "are about the triggering event and are counted as met" in preview.content.decode()
    assert RuleFiring.objects.count() == firings  # testing writes nothing


def test_testing_a_tier_changed_rule_on_a_member_whose_tier_never_changed(admin_client, seed):
    # given
    MemberFactory(external_id="M-NEW", tier=tier("regular"))
    rule = Rule.objects.get(code="tier-lapsed")

    # when
    url = reverse("admin:rules_rule_test", args=[rule.pk])
    response = admin_client.get(url, {"member": "M-NEW"})

    # then
    assert response.status_code == 200
    assert "The member&#x27;s tier has never changed." in response.content.decode()
    assert response.context["explanation"].notes == ["The member's tier has never changed."]
