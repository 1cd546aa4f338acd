"""Evaluations, message deliveries and operators' jobs run on queues of their own, each
with its own worker processes: a message never waits behind a backlog of evaluations."""

import pytest
import redis

from config.celery import app as celery_app
from core.queue import enqueue
from notifications.models import Notification
from notifications.services.outbox import notification_queue
from rules.tasks import evaluate_waiting
from tests.factories import MemberFactory, NotificationTemplateFactory
from tests.helpers import start_worker, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("rules.tasks.evaluate_waiting", "evaluations"),
        ("rules.tasks.sweep_pending", "evaluations"),
        ("notifications.tasks.deliver", "messages"),
        ("notifications.tasks.sweep_queued_notifications", "messages"),
        ("rules.tasks.run_daily", "jobs"),
        ("rules.tasks.evaluate_clock_batch", "jobs"),
        ("rules.tasks.run_rule_job", "jobs"),
        ("benefits.tasks.run_coupon_issue_job", "jobs"),
    ],
)
def test_each_task_has_its_queue(task, queue):
    assert celery_app.amqp.router.route({}, task)["queue"].name == queue


@pytest.mark.django_db(transaction=True)
def test_a_message_is_delivered_while_evaluations_pile_up():
    # given: 200 evaluations waiting with no worker on their queue, and a worker process
    # on the messages queue alone
    broker = redis.Redis.from_url(celery_app.conf.broker_url)
    broker.flushdb()
    celery_app.conf.task_always_eager = False
    workers = [start_worker(queues=["messages"])]
    try:
        for _ in range(200):
            enqueue(evaluate_waiting)
        assert broker.llen("evaluations") == 200

        # when: a message is queued
        member = MemberFactory()
        template = NotificationTemplateFactory(channel="sms")
        notification = notification_queue(member=member, template=template, context={})

        # then: it is delivered while the evaluations still wait
        wait_until(lambda: Notification.objects.get(pk=notification.pk).status == "sent")
        assert broker.llen("evaluations") == 200

        # and a worker on the evaluations queue drains them
        workers.append(start_worker(queues=["evaluations"]))
        wait_until(lambda: broker.llen("evaluations") == 0)
    finally:
        for worker in workers:
            worker.kill()
            worker.wait(timeout=30)
        celery_app.conf.task_always_eager = True
