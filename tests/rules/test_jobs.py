"""Operators' background jobs on a rule: apply it to the members who already qualify, in
chunks that resume where they stopped, or simulate it and keep the result."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.utils import timezone

from benefits.models import PointsEntry
from notifications.models import Notification
from orders.services import order_record
from rules.models import Rule, RuleFiring, RuleJob
from rules.selectors.simulation import rule_simulate
from rules.services import jobs
from rules.services.evaluation import members_apply_rule
from rules.services.jobs import rule_job_start
from rules.tasks import run_rule_job, sweep_rule_jobs
from tests.factories import (
    MemberFactory,
    NotificationTemplateFactory,
    RuleFactory,
    TierFactory,
    action,
    condition,
)
from tests.helpers import broker_down

pytestmark = pytest.mark.django_db

APPLY, SIMULATE = RuleJob.Kind.APPLY, RuleJob.Kind.SIMULATE


@pytest.fixture
def tiers():
    return {
        "regular": TierFactory(code="regular", rank=0),
        "silver": TierFactory(code="silver", rank=1),
    }


@pytest.fixture
def operator(db) -> User:
    return User.objects.create_user("operator", is_staff=True)


@pytest.fixture
def upgrade_rule(tiers) -> Rule:
    """Silver at 2000, with 500 points and an SMS."""
    rule = RuleFactory(code="silver-at-2000")
    condition(rule, "lifetime_spend", "gte", 2000)
    condition(rule, "tier_rank", "lt", 1)
    action(rule, "set_tier", tier=tiers["silver"])
    action(rule, "award_points", points=500)
    action(rule, "notify", notification_template=NotificationTemplateFactory())
    return rule


def spender(amount, *, tier=None):
    member = MemberFactory(tier=tier)
    order_record(
        external_id=f"SO-{member.external_id}",
        member=member.external_id,
        amount=Decimal(amount),
        currency="CNY",
        placed_at=timezone.now() - timedelta(days=1),
    )
    return member


def start(capture, rule: Rule, kind=APPLY, **kwargs) -> RuleJob:
    """Start a job and run it as the worker would, after the transaction commits."""
    with capture(execute=True):
        job = rule_job_start(rule=rule, kind=kind, **kwargs)
    job.refresh_from_db()
    return job


def test_apply_fires_the_rule_for_the_members_who_already_qualify(
    upgrade_rule, tiers, operator, django_capture_on_commit_callbacks
):
    # given: two members qualify; one spent too little, one is already Silver
    qualified = [spender("2500", tier=tiers["regular"]), spender("3000", tier=tiers["regular"])]
    spender("100", tier=tiers["regular"])
    spender("5000", tier=tiers["silver"])

    # when
    job = start(django_capture_on_commit_callbacks, upgrade_rule, created_by=operator)

    # then
    assert (job.status, job.total, job.processed, job.percent_done) == ("done", 2, 2, 100)
    assert job.result == {"fired": 2}
    assert job.created_by == operator
    assert job.finished_at is not None
    firings = RuleFiring.objects.filter(rule=upgrade_rule)
    assert {firing.member_id for firing in firings} == {member.pk for member in qualified}
    assert {firing.job_id for firing in firings} == {job.pk}
    assert {firing.rule_version for firing in firings} == {upgrade_rule.version}
    for member in qualified:
        member.refresh_from_db()
        assert member.tier == tiers["silver"]
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}


@pytest.mark.parametrize(
    # a fixed past date: a computed one differs between xdist workers' collections
    "changes",
    [{"is_active": False}, {"active_until": datetime(2020, 1, 1, tzinfo=UTC)}],
)
def test_apply_is_refused_for_a_rule_that_is_not_live(upgrade_rule, tiers, changes):
    # given
    Rule.objects.filter(pk=upgrade_rule.pk).update(**changes)
    upgrade_rule.refresh_from_db()
    spender("2500", tier=tiers["regular"])

    # when
    with pytest.raises(ValidationError, match="Only an active rule"):
        rule_job_start(rule=upgrade_rule, kind=APPLY)

    # then
    assert not RuleJob.objects.exists()
    assert not RuleFiring.objects.exists()


def test_apply_refuses_a_rule_whose_conditions_need_the_triggering_event(tiers):
    # given: condition 2 is about the triggering order, which no existing member has
    rule = RuleFactory()
    condition(rule, "lifetime_spend", "gte", 2000)
    condition(rule, "order_amount", "gt", 0)
    action(rule, "award_points", points=100)
    spender("2500")

    # when
    with pytest.raises(ValidationError) as raised:
        rule_job_start(rule=rule, kind=RuleJob.Kind.APPLY)

    # then: refused, rather than a job that reports 0 fired
    assert "Condition(s) 2 are about the triggering event" in raised.value.messages[0]
    assert not RuleJob.objects.exists()


def test_a_quiet_apply_records_the_messages_without_sending_them(
    upgrade_rule, tiers, django_capture_on_commit_callbacks
):
    # given
    spender("2500", tier=tiers["regular"])
    spender("2600", tier=tiers["regular"])

    # when
    job = start(django_capture_on_commit_callbacks, upgrade_rule, send_notifications=False)

    # then
    assert job.result == {"fired": 2}
    messages = Notification.objects.all()
    assert len(messages) == 2
    assert {(m.status, m.sent_at, m.attempts) for m in messages} == {("suppressed", None, 0)}
    assert all(m.status_reason for m in messages)


def test_a_quiet_apply_still_calls_webhooks(tiers, settings, django_capture_on_commit_callbacks):
    # given: a rule whose only effect is a webhook: an event for the ERP, not a message to
    # the member, so "no messages" does not silence it
    settings.TIERFLOW_NOTIFICATION_PROVIDERS = {
        **settings.TIERFLOW_NOTIFICATION_PROVIDERS,
        "webhook": "console",
    }
    rule = RuleFactory()
    condition(rule, "lifetime_spend", "gte", 2000)
    action(rule, "webhook", webhook_url="https://erp.example.com/hook")
    spender("2500")

    # when
    job = start(django_capture_on_commit_callbacks, rule, send_notifications=False)

    # then
    assert job.result == {"fired": 1}
    assert list(Notification.objects.values_list("channel", "status")) == [("webhook", "sent")]


def test_apply_works_through_the_members_in_chunks(
    upgrade_rule, tiers, monkeypatch, django_capture_on_commit_callbacks
):
    # given: 5 members to fire for, 2 per task
    monkeypatch.setattr(jobs, "APPLY_CHUNK", 2)
    members = [spender("2500", tier=tiers["regular"]) for _ in range(5)]

    # when
    job = start(django_capture_on_commit_callbacks, upgrade_rule)

    # then
    assert (job.status, job.total, job.processed) == ("done", 5, 5)
    assert job.result == {"fired": 5}
    assert job.cursor == max(member.pk for member in members)
    assert RuleFiring.objects.filter(job=job).count() == 5


def test_each_chunk_hands_over_to_the_next_task_with_its_progress(
    upgrade_rule, tiers, monkeypatch, django_capture_on_commit_callbacks
):
    # given: the hand-over is recorded, not run, so each chunk can be watched
    monkeypatch.setattr(jobs, "APPLY_CHUNK", 2)
    handed_over = []
    monkeypatch.setattr(jobs, "_continue", handed_over.append)
    monkeypatch.setattr("core.jobs.tasks_run_in_process", lambda: False)  # as with a broker
    for _ in range(5):
        spender("2500", tier=tiers["regular"])
    with django_capture_on_commit_callbacks(execute=True):
        job = rule_job_start(rule=upgrade_rule, kind=APPLY)
    assert handed_over == [job.pk]
    progress = []

    # when
    for _ in range(3):
        status = run_rule_job(job.pk)
        job.refresh_from_db()
        progress.append((status, job.processed, job.total, job.percent_done, job.result))

    # then
    assert progress == [
        ("running", 2, 5, 40, {"fired": 2}),
        ("running", 4, 5, 80, {"fired": 4}),
        ("done", 5, 5, 100, {"fired": 5}),
    ]
    assert handed_over == [job.pk, job.pk, job.pk]


def test_a_job_resumes_after_a_worker_died_midway_through_a_chunk(
    upgrade_rule, tiers, monkeypatch, django_capture_on_commit_callbacks
):
    # given: the first chunk done; of the second, one member fired before the worker died
    monkeypatch.setattr(jobs, "APPLY_CHUNK", 2)
    monkeypatch.setattr(jobs, "_continue", lambda job_id: None)
    monkeypatch.setattr("core.jobs.tasks_run_in_process", lambda: False)  # as with a broker
    members = [spender("2500", tier=tiers["regular"]) for _ in range(5)]
    with django_capture_on_commit_callbacks(execute=True):
        job = rule_job_start(rule=upgrade_rule, kind=APPLY)
    run_rule_job(job.pk)
    job.refresh_from_db()
    members_apply_rule(member_ids=[members[2].pk], rule=upgrade_rule, job=job)

    # when: the task is delivered again, and the job runs to its end
    statuses = [run_rule_job(job.pk) for _ in range(3)]

    # then: every member fired once, and the job finished
    job.refresh_from_db()
    assert statuses == ["running", "done", "done"]
    assert (job.status, job.cursor) == ("done", members[-1].pk)
    fired = RuleFiring.objects.filter(rule=upgrade_rule)
    assert sorted(fired.values_list("member_id", flat=True)) == [m.pk for m in members]
    assert PointsEntry.objects.count() == 5


def test_running_a_finished_job_again_fires_nothing(
    upgrade_rule, tiers, django_capture_on_commit_callbacks
):
    # given
    spender("2500", tier=tiers["regular"])
    job = start(django_capture_on_commit_callbacks, upgrade_rule)

    # when
    with django_capture_on_commit_callbacks(execute=True):
        again = run_rule_job(job.pk)

    # then
    assert again == "done"
    assert RuleFiring.objects.count() == 1
    assert PointsEntry.objects.count() == 1
    assert Notification.objects.count() == 1


def test_a_second_apply_job_does_not_fire_a_once_rule_again(
    tiers, django_capture_on_commit_callbacks
):
    # given: a once rule that still matches after it fired
    rule = RuleFactory(firing_limit="once")
    condition(rule, "lifetime_spend", "gte", 2000)
    action(rule, "award_points", points=100)
    spender("2500")
    spender("3000")
    first = start(django_capture_on_commit_callbacks, rule)

    # when
    second = start(django_capture_on_commit_callbacks, rule)

    # then
    assert first.result == {"fired": 2}
    assert (second.status, second.total, second.result) == ("done", 2, {"fired": 0})
    assert RuleFiring.objects.count() == 2
    assert PointsEntry.objects.count() == 2


def test_apply_respects_the_budget(tiers, django_capture_on_commit_callbacks):
    # given: the first 2 members only
    rule = RuleFactory(budget=2)
    condition(rule, "lifetime_spend", "gte", 2000)
    action(rule, "award_points", points=100)
    for _ in range(3):
        spender("2500")

    # when
    job = start(django_capture_on_commit_callbacks, rule)

    # then
    assert (job.processed, job.result) == (3, {"fired": 2})
    assert RuleFiring.objects.count() == 2


def test_a_simulation_job_stores_the_simulations_result(
    upgrade_rule, tiers, operator, django_capture_on_commit_callbacks
):
    # given: a draft rule and orders in the last 30 days
    Rule.objects.filter(pk=upgrade_rule.pk).update(is_active=False)
    upgrade_rule.refresh_from_db()
    for _ in range(3):
        spender("2500", tier=tiers["regular"])
    spender("100", tier=tiers["regular"])

    # when
    with time_machine.travel(timezone.now(), tick=False):  # one "now" for both
        job = start(
            django_capture_on_commit_callbacks, upgrade_rule, SIMULATE, days=30, created_by=operator
        )
        expected = rule_simulate(upgrade_rule, days=30)

    # then
    assert job.status == "done"
    assert job.result == expected
    assert (job.result["firings"], job.result["points"], job.result["messages"]) == (3, 1500, 3)
    assert (job.days, job.processed, job.total, job.percent_done) == (30, 4, 4, 100)
    assert not RuleFiring.objects.exists()
    assert not Notification.objects.exists()


def test_a_simulation_needs_the_number_of_days(upgrade_rule):
    with pytest.raises(ValidationError) as error:
        rule_job_start(rule=upgrade_rule, kind=SIMULATE)
    assert "days" in error.value.message_dict
    assert not RuleJob.objects.exists()


def test_a_job_that_fails_says_why(upgrade_rule, monkeypatch, django_capture_on_commit_callbacks):
    # given
    def broken(rule, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(jobs, "rule_simulate", broken)

    # when
    job = start(django_capture_on_commit_callbacks, upgrade_rule, SIMULATE, days=7)

    # then
    assert job.status == "failed"
    assert job.error == "RuntimeError: the database went away"
    assert job.finished_at is not None
    assert run_rule_job(job.pk) == "failed"


def test_a_queued_job_shows_no_progress_yet(upgrade_rule):
    job = RuleJob.objects.create(rule=upgrade_rule, kind=APPLY)
    assert (job.status, job.percent_done) == ("queued", 0)


def test_in_process_a_job_runs_chunk_after_chunk_in_one_task(
    upgrade_rule, tiers, monkeypatch, django_capture_on_commit_callbacks
):
    # given: tasks run in-process (the demo), one member a chunk
    monkeypatch.setattr(jobs, "APPLY_CHUNK", 1)
    handed_over = []
    monkeypatch.setattr(jobs, "_continue", handed_over.append)
    for _ in range(5):
        spender("2500", tier=tiers["regular"])
    with django_capture_on_commit_callbacks(execute=True):
        job = rule_job_start(rule=upgrade_rule, kind=APPLY)
    handed_over.clear()

    # when
    status = run_rule_job(job.pk)

    # then: a loop, not a chain of nested tasks
    job.refresh_from_db()
    assert (status, job.processed, job.result) == ("done", 5, {"fired": 5})
    assert handed_over == []


def test_a_job_whose_task_was_never_published_is_resumed_by_the_sweeper(
    upgrade_rule, tiers, settings, django_capture_on_commit_callbacks
):
    # given: the broker was down when the job started
    settings.TIERFLOW_PENDING_GRACE_SECONDS = 60
    spender("2500", tier=tiers["regular"])
    with broker_down(), django_capture_on_commit_callbacks(execute=True):
        job = rule_job_start(rule=upgrade_rule, kind=APPLY)
    job.refresh_from_db()
    assert job.status == "queued"

    # when: the sweeper runs before the grace period, then after it
    early = sweep_rule_jobs()
    with time_machine.travel(timezone.now() + timedelta(seconds=61), tick=False):
        late = sweep_rule_jobs()

    # then
    job.refresh_from_db()
    assert (early, late) == (0, 1)
    assert (job.status, job.result) == ("done", {"fired": 1})


def test_a_running_job_is_resumed_only_once_silent_longer_than_any_task_runs(
    upgrade_rule, settings, monkeypatch
):
    # given: a job a worker is running (its last sign of life just now)
    settings.CELERY_TASK_TIME_LIMIT = 300
    resumed = []
    monkeypatch.setattr(jobs, "_continue", resumed.append)
    job = RuleJob.objects.create(rule=upgrade_rule, kind=APPLY, status="running")

    # when
    with time_machine.travel(timezone.now() + timedelta(seconds=599), tick=False):
        alive = sweep_rule_jobs()
    with time_machine.travel(timezone.now() + timedelta(seconds=601), tick=False):
        dead = sweep_rule_jobs()
        again = sweep_rule_jobs()  # published just now: not again at once

    # then
    assert (alive, dead, again) == (0, 1, 0)
    assert resumed == [job.pk]
