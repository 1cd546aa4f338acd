"""The daily job and tiers: a member several periods behind settled in one run, a
future date refused, and tier_expiring rules reminding on each tier's own day."""

from datetime import date, timedelta
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command

from members.models import TierChange
from notifications.models import Notification
from rules.models import RuleFiring
from rules.services.daily import clock_triggers_run
from tests.factories import (
    MemberFactory,
    NotificationTemplateFactory,
    RuleFactory,
    TierFactory,
    action,
    condition,
)
from tests.helpers import LAPSES_AT, changes, local, member_on, spend

pytestmark = pytest.mark.django_db


# --- catching up ----------------------------------------------------------------------


def test_a_member_several_periods_behind_is_settled_in_one_run(
    django_capture_on_commit_callbacks,
):
    # given: Silver and Gold kept for a year by spending 1000 and 5000 in it, with a
    # message on a renewal and on a move down
    year = {"validity": "days", "validity_days": 365}
    TierFactory(code="regular", name="普通会员", rank=0)
    TierFactory(code="silver", name="银卡会员", rank=1, keep_threshold=Decimal(1000), **year)
    gold = TierFactory(code="gold", name="金卡会员", rank=2, keep_threshold=Decimal(5000), **year)
    for code, move in (("renewed", "eq"), ("lapsed", "lt")):
        rule = RuleFactory(code=f"tier-{code}", trigger="tier_changed", firing_limit="every_time")
        condition(rule, "tier_move", move, 0)
        message = NotificationTemplateFactory(body=code + ": {{ tier.name }}")
        action(rule, "notify", notification_template=message)
    # and: Gold from July 2022; the threshold met in the first year, 1500 in the second,
    # nothing since; the daily job has not settled any of it
    since = local(2022, 7, 1, 10)
    member = member_on(gold, since=since)
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
    assert texts == ["lapsed: 普通会员"]

    # when: the same day again
    again = StringIO()
    with time_machine.travel(local(2025, 7, 10, 9), tick=False):
        call_command("run_daily", "--date", "2025-07-10", stdout=again)

    # then
    assert TierChange.objects.filter(member=member).count() == 3
    assert "tier_lapse" not in again.getvalue()


def test_the_daily_job_refuses_a_future_date_and_settles_nothing():
    # given: a Gold tier that has lapsed and is waiting to be settled
    TierFactory(code="regular", rank=0)
    gold = TierFactory(code="gold", rank=1, validity="days", validity_days=365)
    member = member_on(gold)

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
