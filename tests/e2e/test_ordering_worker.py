"""The interleaving property on the real services: PostgreSQL, Redis and Celery worker
processes. A member whose events reach a lagging, batching or killed worker ends exactly
where a member evaluated right after each event ends."""

import signal
from datetime import timedelta

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings

from config.celery import app as celery_app
from core.queue import enqueue
from members.models import Member
from notifications.models import Notification
from rules.models import Rule
from rules.services.evaluation import waiting_enqueue
from rules.tasks import evaluate_waiting
from tests.helpers import broker_down, start_worker, wait_until
from tests.ordering import CASES, EVENTS, Crash, World, crashing_after, load_ordering_programme

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def settled(member_id: int) -> bool:
    """Every event evaluated, and every message out of the outbox."""
    member = Member.objects.get(pk=member_id)
    waiting = Notification.objects.filter(member=member, status__in=["queued", "sending"])
    return member.evaluated_seq == member.event_seq and not waiting.exists()


class WorkerWorld(World):
    """A member evaluated by the real worker. Lagging, its events are recorded while the
    broker is down, so they wait until the script publishes an evaluation."""

    def play(self, step) -> None:
        if self.lagging and step[0] in ("order", "refund", "engage"):
            with broker_down():
                super().play(step)
        else:
            super().play(step)

    def settle(self) -> None:
        enqueue(evaluate_waiting)
        wait_until(lambda: settled(self.member.pk))

    def catch_up(self, limit: int) -> None:
        self.settle()

    def crash(self, events: int) -> None:
        # In this process (the worker is idle meanwhile): a batch dies halfway.
        try:
            with crashing_after(events):
                World.settle(self)
        except Crash:
            pass


@pytest.fixture
def programme(transactional_db) -> None:
    load_ordering_programme()


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(script=EVENTS)
def test_any_interleaving_through_a_real_worker_ends_as_at_once(celery_worker, programme, script):
    # given
    case = next(CASES)
    at_once = WorkerWorld(f"WA{case}", lagging=False)
    lagging = WorkerWorld(f"WL{case}", lagging=True)

    # when (one member after the other: every evaluation takes whatever waits)
    for step in script:
        at_once.play(step)
    for step in script:
        lagging.play(step)
    lagging.settle()

    # then
    assert lagging.state() == at_once.state()


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_batch_loses_nothing_and_ends_as_at_once():
    # given: a budgeted rule, whose row a firing locks; the same orders for two members,
    # one evaluated at once, the other's waiting while no worker runs
    load_ordering_programme()
    Rule.objects.filter(code="silver-at-2000").update(budget=1000)
    script = [("order", "800", 30), ("order", "1200", 20), ("refund", 0, "0.5")]
    script += [("engage", "review", 10), ("order", "500", 5)]
    at_once = World("K-A", lagging=False)
    for step in script:
        at_once.play(step)
    with broker_down():
        lagging = World("K-L", lagging=True)
        for step in script:
            lagging.play(step)
    assert Member.objects.get(pk=lagging.member.pk).evaluated_seq == 0

    # when: a worker takes the backlog and blocks on the rule row another transaction
    # holds, mid-batch; it is killed there, and a new worker takes over from the sweeper
    celery_app.conf.task_always_eager = False
    worker = start_worker()
    try:
        with transaction.atomic():
            Rule.objects.select_for_update().get(code="silver-at-2000")
            enqueue(evaluate_waiting)
            wait_until(lambda: _blocked_on_a_lock(), timeout=60)
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=30)
        assert Member.objects.get(pk=lagging.member.pk).evaluated_seq == 0  # rolled back
        worker = start_worker()
        assert waiting_enqueue(older_than=timedelta(0)) == 1
        wait_until(lambda: settled(lagging.member.pk))
    finally:
        worker.kill()
        worker.wait(timeout=30)
        celery_app.conf.task_always_eager = True

    # then
    assert lagging.state() == at_once.state()


def _blocked_on_a_lock() -> bool:
    """Whether another session of this database waits for a lock (the worker's batch)."""
    with connection.cursor() as cursor:
        # Statistics views are a snapshot per transaction: take a new one each time.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0] > 0
