"""Triggers: what happens to a member that the rules are asked about, from the event-like
triggers (an order, a refund, a new member, an engagement) to the clock triggers that the
daily job checks for a business day in TIME_ZONE (Asia/Shanghai)."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.utils import timezone

from benefits.models import PointsEntry
from benefits.services.points import earning_policy_update
from members.models import EngagementEvent, EngagementKind, Member
from members.services import engagement_record, member_upsert
from orders.models import Order, Refund
from orders.services import order_record, refund_record
from rules.models import RuleFiring
from rules.services import effects
from rules.services.daily import clock_triggers_run
from rules.services.evaluation import member_evaluate
from tests.factories import MemberFactory, RuleFactory, TierFactory, action, condition

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")


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


def refund(order, amount, refunded_at=None) -> Refund:
    made, _ = refund_record(
        order_external_id=order.external_id,
        external_id=f"RF-{Refund.objects.count() + 1}",
        amount=Decimal(amount),
        refunded_at=refunded_at,
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


def fired(rule, member=None) -> int:
    firings = RuleFiring.objects.filter(rule=rule)
    if member is not None:
        firings = firings.filter(member=member)
    return firings.count()


def rule_for(trigger, days=None, **fields):
    """A live rule of the trigger that awards 10 points every time it fires."""
    rule = RuleFactory(trigger=trigger, trigger_days=days, firing_limit="every_time", **fields)
    action(rule, "award_points", points=10)
    return rule


# --- event-like triggers -------------------------------------------------------------


def test_order_paid_fires_for_the_order_and_marks_it_evaluated():
    # given
    rule = rule_for("order_paid")
    condition(rule, "order_amount", "gte", 100)
    member = MemberFactory()
    big, small = record(member, "150"), record(member, "50")

    # when
    member_evaluate(member_id=member.pk, trigger="order_paid", subject_id=big.pk)
    member_evaluate(member_id=member.pk, trigger="order_paid", subject_id=small.pk)

    # then
    big.refresh_from_db()
    small.refresh_from_db()
    assert list(RuleFiring.objects.values_list("order_id", flat=True)) == [big.pk]
    assert big.is_evaluated
    assert small.is_evaluated  # evaluated, even though nothing fired


@pytest.mark.parametrize("trigger", ["order_paid", "order_refunded", "engagement"])
def test_evaluating_a_subject_twice_changes_nothing_the_second_time(trigger):
    # given
    EngagementKind.objects.create(code="check-in", name="签到", growth_points=5)
    rule = rule_for(trigger)
    member = MemberFactory()
    order = record(member, "100")
    subject = {
        "order_paid": lambda: order,
        "order_refunded": lambda: refund(order, "10"),
        "engagement": lambda: engagement(member, "check-in"),
    }[trigger]()
    first = member_evaluate(member_id=member.pk, trigger=trigger, subject_id=subject.pk)
    marked = Member.objects.get(pk=member.pk).evaluated_seq
    points = PointsEntry.objects.filter(member=member).count()

    # when
    second = member_evaluate(member_id=member.pk, trigger=trigger, subject_id=subject.pk)

    # then
    assert (len(first.fired), first.skipped) == (1, False)
    assert (second.fired, second.skipped) == ([], True)
    assert Member.objects.get(pk=member.pk).evaluated_seq == marked
    assert fired(rule) == 1
    assert PointsEntry.objects.filter(member=member).count() == points


def test_order_refunded_fires_for_the_refund_with_its_amount():
    # given
    rule = rule_for("order_refunded")
    condition(rule, "refund_amount", "gte", 50)
    paid = rule_for("order_paid")
    member = MemberFactory()
    order = record(member, "200")
    small, big = refund(order, "40"), refund(order, "60")

    # when
    for made in (small, big):
        member_evaluate(member_id=member.pk, trigger="order_refunded", subject_id=made.pk)

    # then
    firing = RuleFiring.objects.get(rule=rule)
    assert firing.occurrence_key == f"refund:{big.pk}"
    assert firing.order == order
    # A refund is not an order paid: that rule fired for the order alone (evaluated first).
    keys = RuleFiring.objects.filter(rule=paid).values_list("occurrence_key", flat=True)
    assert list(keys) == [f"order:{order.pk}"]
    assert all(made.is_evaluated for made in Refund.objects.all())


def test_member_joined_fires_once_for_a_new_member():
    # given
    rule = rule_for("member_joined")
    member = MemberFactory()

    # when
    first = member_evaluate(member_id=member.pk, trigger="member_joined")
    second = member_evaluate(member_id=member.pk, trigger="member_joined")

    # then
    member.refresh_from_db()
    assert len(first.fired) == 1
    assert second.skipped
    assert fired(rule, member) == 1
    assert member.is_evaluated


@pytest.mark.parametrize(
    ("rule_kind", "event_kind", "fires"),
    [
        ("review", "review", True),
        ("review", "check-in", False),
        (None, "check-in", True),
        (None, "review", True),
    ],
)
def test_an_engagement_rule_fires_for_its_kind_or_for_any_kind(rule_kind, event_kind, fires):
    # given
    kinds = {
        code: EngagementKind.objects.create(code=code, name=code, growth_points=1)
        for code in ("review", "check-in")
    }
    rule = rule_for("engagement", engagement_kind=kinds.get(rule_kind))
    member = MemberFactory()
    event = engagement(member, event_kind)

    # when
    member_evaluate(member_id=member.pk, trigger="engagement", subject_id=event.pk)

    # then
    assert fired(rule, member) == int(fires)
    event.refresh_from_db()
    assert event.is_evaluated


# --- evaluation is enqueued when a subject is saved -----------------------------------


@pytest.mark.parametrize("trigger", ["order_paid", "order_refunded", "engagement", "member_joined"])
def test_saving_a_new_subject_enqueues_its_evaluation_on_commit(
    trigger, django_capture_on_commit_callbacks
):
    # given
    EngagementKind.objects.create(code="share", name="分享", growth_points=10)
    rule = rule_for(trigger)
    member = MemberFactory()
    order = record(member, "100")
    member_evaluate(member_id=member.pk)  # what came before is evaluated
    create = {
        "order_paid": lambda: record(member, "200"),
        "order_refunded": lambda: refund(order, "30"),
        "engagement": lambda: engagement(member, "share"),
        "member_joined": lambda: member_upsert(external_id="M-new", name="新会员")[0],
    }[trigger]

    # when
    with django_capture_on_commit_callbacks() as callbacks:
        subject = create()
    before_commit = type(subject).objects.get(pk=subject.pk).is_evaluated
    for callback in callbacks:
        callback()

    # then: nothing ran inside the transaction; the callback evaluated it
    subject.refresh_from_db()
    assert not before_commit
    assert len(callbacks) == 1
    assert subject.is_evaluated
    before = 1 if trigger in ("order_paid", "member_joined") else 0  # fired for the setup
    assert RuleFiring.objects.filter(rule=rule).count() == before + 1


def test_saving_an_existing_subject_again_enqueues_nothing(django_capture_on_commit_callbacks):
    # given
    member = MemberFactory()
    order = record(member, "100")

    # when
    with django_capture_on_commit_callbacks() as callbacks:
        order.currency = "CNY"
        order.save()
        member.name = "李女士"
        member.save()

    # then
    assert callbacks == []


def test_an_order_posted_to_the_api_is_evaluated_with_its_new_member(api):
    # given
    joined = rule_for("member_joined")
    paid = rule_for("order_paid")

    # when
    response = api.order(external_id="SO-API", amount="300.00")

    # then
    assert response.status_code == 201
    member = Member.objects.get(external_id="M-1")
    assert member.is_evaluated
    assert Order.objects.get(external_id="SO-API").is_evaluated
    assert (fired(joined, member), fired(paid, member)) == (1, 1)


def test_an_event_posted_to_the_api_is_evaluated_after_commit(api):
    # given
    EngagementKind.objects.create(code="review", name="评价", growth_points=20)
    rule = rule_for("engagement")
    member = MemberFactory(external_id="M-5")

    # when
    response = api.post(
        "/api/v1/events/",
        {
            "external_id": "EV-1",
            "member": "M-5",
            "kind": "review",
            "occurred_at": (timezone.now() - timedelta(minutes=1)).isoformat(),
        },
    )

    # then
    assert response.status_code == 201
    assert EngagementEvent.objects.get(external_id="EV-1").is_evaluated
    assert fired(rule, member) == 1


def test_a_failed_evaluation_leaves_nothing_behind_and_the_subject_pending(monkeypatch):
    # given: points on every order, and a rule whose action fails
    earning_policy_update(points_per_unit=Decimal(1))
    rule_for("order_paid")
    member = MemberFactory()
    order = record(member, "100")

    def boom(*args, **kwargs):
        raise RuntimeError("provider down")

    monkeypatch.setitem(effects.APPLY, "award_points", boom)

    # when
    with pytest.raises(RuntimeError):
        member_evaluate(member_id=member.pk, trigger="order_paid", subject_id=order.pk)

    # then: neither the earned points, the firing nor the mark were kept
    order.refresh_from_db()
    assert not order.is_evaluated
    assert not PointsEntry.objects.filter(member=member).exists()
    assert not RuleFiring.objects.exists()

    # and a retry applies everything once
    monkeypatch.undo()
    member_evaluate(member_id=member.pk, trigger="order_paid", subject_id=order.pk)
    order.refresh_from_db()
    assert order.is_evaluated
    assert sorted(PointsEntry.objects.values_list("kind", "points")) == [
        ("bonus", 10),
        ("earn", 100),
    ]


# --- clock triggers --------------------------------------------------------------------


def clock(member, trigger, on_date):
    return member_evaluate(member_id=member.pk, trigger=trigger, on_date=on_date)


@pytest.mark.parametrize(
    ("birthday", "on_date", "fires"),
    [
        (date(1990, 5, 20), date(2025, 5, 20), True),
        (date(1990, 5, 20), date(2025, 5, 21), False),
        (date(1990, 5, 20), date(2025, 6, 20), False),
        (date(1992, 2, 29), date(2025, 2, 28), True),  # not a leap year: the 28th
        (date(1992, 2, 29), date(2025, 3, 1), False),
        (date(1992, 2, 29), date(2024, 2, 28), False),  # a leap year has the 29th
        (date(1992, 2, 29), date(2024, 2, 29), True),
        (date(1992, 2, 28), date(2024, 2, 29), False),
    ],
)
def test_birthday(birthday, on_date, fires):
    # given
    rule = rule_for("birthday")
    member = MemberFactory(birthday=birthday)

    # when
    direct = clock(member, "birthday", on_date)
    by_job = clock_triggers_run(on_date)

    # then: the member's evaluation and the daily job agree
    assert len(direct.fired) == int(fires)
    assert fired(rule, member) == int(fires)
    assert by_job.get("birthday", 0) == 0  # already fired (or never due)


@pytest.mark.parametrize(
    ("birthday", "on_date", "fires"),
    [
        (date(1990, 5, 20), date(2025, 5, 20), True),
        (date(1992, 2, 29), date(2025, 2, 28), True),
        (date(1992, 2, 29), date(2024, 2, 28), False),
        (date(1990, 5, 21), date(2025, 5, 20), False),
    ],
)
def test_the_daily_job_finds_birthdays(birthday, on_date, fires):
    # given
    rule = rule_for("birthday")
    member = MemberFactory(birthday=birthday)
    MemberFactory(birthday=None)

    # when
    result = clock_triggers_run(on_date)

    # then
    assert fired(rule, member) == int(fires)
    assert result.get("birthday", 0) == int(fires)


@pytest.mark.parametrize(
    ("joined_at", "on_date", "fires"),
    [
        # 20:00 UTC on 15 June is 04:00 on 16 June in Shanghai
        (datetime(2023, 6, 15, 20, tzinfo=UTC), date(2024, 6, 16), True),
        (datetime(2023, 6, 15, 20, tzinfo=UTC), date(2024, 6, 15), False),
        (datetime(2023, 6, 15, 20, tzinfo=UTC), date(2023, 6, 16), False),  # joining day
        (local(2024, 6, 16, 9), date(2024, 6, 16), False),  # not yet a year
        (local(2024, 6, 16, 9), date(2025, 6, 16), True),
        (local(2024, 2, 29, 9), date(2025, 2, 28), True),
        (local(2024, 2, 29, 9), date(2025, 3, 1), False),
        # 17:00 UTC on 31 Dec 2023 is 01:00 on 1 Jan 2024 in Shanghai
        (datetime(2023, 12, 31, 17, tzinfo=UTC), date(2024, 12, 31), False),
        (datetime(2023, 12, 31, 17, tzinfo=UTC), date(2025, 1, 1), True),
    ],
)
def test_join_anniversary(joined_at, on_date, fires):
    # given
    rule = rule_for("join_anniversary")
    member = MemberFactory(joined_at=joined_at)

    # when: through the daily job, then the member's own evaluation
    result = clock_triggers_run(on_date)
    again = clock(member, "join_anniversary", on_date)

    # then
    assert result.get("join_anniversary", 0) == int(fires)
    assert fired(rule, member) == int(fires)
    assert again.fired == []


@pytest.mark.parametrize(
    ("expires_at", "on_date", "fires"),
    [
        # 17:30 UTC on 1 July is 01:30 on 2 July in Shanghai: 15 days after 17 June
        (datetime(2025, 7, 1, 17, 30, tzinfo=UTC), date(2025, 6, 17), True),
        (datetime(2025, 7, 1, 17, 30, tzinfo=UTC), date(2025, 6, 16), False),
        (local(2025, 7, 2, 23, 59), date(2025, 6, 17), True),
        (local(2025, 7, 3, 0, 0), date(2025, 6, 17), False),
        (None, date(2025, 6, 17), False),
    ],
)
def test_tier_expiring_n_days_before_the_tier_lapses(expires_at, on_date, fires):
    # given
    rule = rule_for("tier_expiring", days=15)
    member = MemberFactory(tier=TierFactory(code="gold", rank=2), tier_expires_at=expires_at)

    # when
    result = clock_triggers_run(on_date)

    # then
    assert result.get("tier_expiring", 0) == int(fires)
    assert fired(rule, member) == int(fires)


@pytest.mark.parametrize(
    ("joined_at", "last_order_at", "fires"),
    [
        # 30 days before 20 June 2025 is 21 May; 18:00 UTC on 20 May is 02:00 on 21 May
        (local(2025, 1, 1), datetime(2025, 5, 20, 18, tzinfo=UTC), True),
        (local(2025, 1, 1), local(2025, 5, 20, 23, 0), False),
        (local(2025, 1, 1), local(2025, 5, 22), False),
        (local(2025, 5, 21, 8), None, True),  # never ordered: counted from joining
        (local(2025, 5, 21, 8), local(2025, 6, 1), False),  # an order since joining
    ],
)
def test_inactive_n_days_after_the_last_order(joined_at, last_order_at, fires):
    # given
    rule = rule_for("inactive", days=30)
    member = MemberFactory(joined_at=joined_at, last_order_at=last_order_at)

    # when
    result = clock_triggers_run(date(2025, 6, 20))

    # then
    assert result.get("inactive", 0) == int(fires)
    assert fired(rule, member) == int(fires)


def test_inactive_counts_from_the_last_recorded_order():
    # given: an order placed 30 local days before the day
    rule = rule_for("inactive", days=30)
    with time_machine.travel(local(2025, 5, 21, 10), tick=False):
        member = MemberFactory(joined_at=local(2024, 1, 1))
        record(member, "10", placed_at=local(2025, 5, 21, 9))

    # when
    on_the_day = clock(member, "inactive", date(2025, 6, 20))
    a_day_early = clock(member, "inactive", date(2025, 6, 19))

    # then
    assert (len(on_the_day.fired), len(a_day_early.fired)) == (1, 0)
    assert RuleFiring.objects.get(rule=rule).occurrence_key == "inactive:2025-05-21"


def lot(member, points, expires_at, created_at=None):
    return PointsEntry.objects.create(
        member=member,
        kind="bonus" if points > 0 else "redeem",
        points=points,
        reason="test",
        expires_at=expires_at,
        created_at=created_at or local(2025, 1, 1),
    )


@pytest.mark.parametrize(
    ("entries", "fires"),
    [
        ([(100, local(2025, 6, 27, 23, 30))], True),  # expires on the day + 7
        ([(100, local(2025, 6, 28, 0, 30))], False),  # a day later
        ([(100, datetime(2025, 6, 27, 16, 30, tzinfo=UTC))], False),  # 00:30 on 28 June
        ([(100, local(2025, 6, 27)), (100, local(2025, 7, 30)), (-100, None)], False),
        ([(100, local(2025, 6, 27)), (100, local(2025, 7, 30)), (-50, None)], True),
        ([(100, local(2025, 7, 30)), (100, local(2025, 6, 27)), (-100, None)], False),
        ([(100, None), (100, local(2025, 6, 27)), (-100, None)], False),
    ],
)
def test_points_expiring_n_days_before_points_lapse(entries, fires):
    # given: lots, and redemptions that use the soonest-expiring lots first
    rule = rule_for("points_expiring", days=7)
    member = MemberFactory()
    for points, expires_at in entries:
        lot(member, points, expires_at)

    # when
    result = clock_triggers_run(date(2025, 6, 20))

    # then
    assert result.get("points_expiring", 0) == int(fires)
    assert fired(rule, member) == int(fires)


def test_each_rule_uses_its_own_number_of_days():
    # given
    week = rule_for("tier_expiring", days=7)
    month = rule_for("tier_expiring", days=30)
    soon = MemberFactory(tier_expires_at=local(2025, 6, 27))
    later = MemberFactory(tier_expires_at=local(2025, 7, 20))

    # when
    clock_triggers_run(date(2025, 6, 20))

    # then
    assert (fired(week, soon), fired(week, later)) == (1, 0)
    assert (fired(month, soon), fired(month, later)) == (0, 1)


def test_running_a_day_twice_changes_nothing():
    # given: every kind of clock trigger is due for someone
    rules = [
        rule_for("birthday"),
        rule_for("join_anniversary"),
        rule_for("tier_expiring", days=10),
        rule_for("inactive", days=30),
        rule_for("points_expiring", days=5),
    ]
    MemberFactory(birthday=date(1990, 6, 20), joined_at=local(2025, 1, 1))
    MemberFactory(joined_at=local(2024, 6, 20))
    MemberFactory(tier_expires_at=local(2025, 6, 30), joined_at=local(2025, 1, 1))
    MemberFactory(joined_at=local(2025, 5, 21))
    lot(MemberFactory(joined_at=local(2025, 1, 1)), 100, local(2025, 6, 25))

    # when
    first = clock_triggers_run(date(2025, 6, 20))
    firings = RuleFiring.objects.count()
    points = PointsEntry.objects.count()
    second = clock_triggers_run(date(2025, 6, 20))

    # then
    assert first == {
        "birthday": 1,
        "inactive": 1,
        "join_anniversary": 1,
        "points_expiring": 1,
        "tier_expiring": 1,
    }
    assert sum(second.values()) == 0
    assert (RuleFiring.objects.count(), PointsEntry.objects.count()) == (firings, points)
    assert all(fired(rule) == 1 for rule in rules)


def test_the_run_daily_command_runs_a_past_day_once():
    # given
    rule = rule_for("birthday")
    member = MemberFactory(birthday=date(1990, 6, 20))

    # when
    with time_machine.travel(local(2025, 7, 1), tick=False):
        out = StringIO()
        call_command("run_daily", "--date", "2025-06-20", stdout=out)
        call_command("run_daily", "--date", "2025-06-20", stdout=StringIO())

    # then
    assert fired(rule, member) == 1
    assert "birthday: 1 rule firings" in out.getvalue()


def test_a_catch_up_run_sees_the_day_it_is_run_for():
    # given: a reminder for members whose tier lapses in 15 days
    rule = rule_for("tier_expiring", days=15)
    condition(rule, "days_until_tier_lapses", "eq", 15)
    member = MemberFactory(tier_expires_at=local(2025, 7, 5, 10))

    # when: the scheduler missed 20 June; an operator catches it up on 22 June
    with time_machine.travel(local(2025, 6, 22, 9), tick=False):
        call_command("run_daily", "--date", "2025-06-20", stdout=StringIO())

    # then: the same as if it had run on time
    assert fired(rule, member) == 1


@pytest.mark.parametrize("day", ["2025-07-02", "2025-13-01"])
def test_the_run_daily_command_refuses_a_future_or_invalid_date(day):
    with time_machine.travel(local(2025, 7, 1), tick=False), pytest.raises(CommandError):
        call_command("run_daily", "--date", day, stdout=StringIO())


def test_the_run_daily_command_defaults_to_the_local_today():
    # given: 17:00 UTC on 19 June is already 20 June in Shanghai
    rule = rule_for("birthday")
    member = MemberFactory(birthday=date(1990, 6, 20))

    # when
    with time_machine.travel(datetime(2025, 6, 19, 17, tzinfo=UTC), tick=False):
        call_command("run_daily", stdout=StringIO())

    # then
    assert fired(rule, member) == 1


def test_a_clock_rule_limited_per_year_fires_once_however_often_it_is_due():
    # given: a 'no order for 30 days' reward, at most once a year
    rule = rule_for("inactive", days=30)
    rule.firing_limit = "per_year"
    rule.save()
    member = MemberFactory(joined_at=local(2025, 1, 1))

    # when: due on 31 January, and again a month later after an order
    clock(member, "inactive", date(2025, 1, 31))
    member.last_order_at = local(2025, 2, 1)
    member.save()
    clock(member, "inactive", date(2025, 3, 3))
    member.last_order_at = local(2026, 1, 1)
    member.save()
    clock(member, "inactive", date(2026, 1, 31))

    # then
    keys = sorted(RuleFiring.objects.filter(rule=rule).values_list("occurrence_key", flat=True))
    assert keys == ["year:2025", "year:2026"]
