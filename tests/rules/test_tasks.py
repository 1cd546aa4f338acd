"""Invariant 2: every recorded order is evaluated, even when the broker was down."""

import logging
import time
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from members.models import Member
from notifications.models import Notification
from notifications.tasks import sweep_queued_notifications
from orders.models import Order
from orders.services import order_record
from rules.services.batch import Batch
from rules.services.evaluation import member_evaluate, waiting_evaluate
from rules.tasks import sweep_pending
from tests.factories import (
    NotificationTemplateFactory,
    RuleFactory,
    TierFactory,
    action,
    condition,
)
from tests.helpers import broker_down, broker_hung

pytestmark = pytest.mark.django_db


@pytest.fixture
def silver_at_2000() -> None:
    """Silver, with an SMS, from 2000 spent."""
    TierFactory(code="regular", rank=0)
    silver = TierFactory(code="silver", rank=1)
    rule = RuleFactory(code="silver-at-2000")
    condition(rule, "lifetime_spend", "gte", 2000)
    condition(rule, "tier_rank", "lt", 1)
    action(rule, "set_tier", tier=silver)
    action(rule, "notify", notification_template=NotificationTemplateFactory(channel="sms"))


def test_an_order_taken_while_the_broker_is_down_is_kept_and_swept_later(
    api, silver_at_2000, settings, caplog
):
    # given: Redis is down when the order arrives
    with broker_down(), caplog.at_level(logging.WARNING, logger="core.queue"):
        response = api.order(external_id="SO-1", amount="2500.00")

    # then: the order is recorded, pending evaluation
    assert response.status_code == 201
    order = Order.objects.get(external_id="SO-1")
    assert not order.is_evaluated
    assert "a sweeper will retry" in caplog.text

    # when: the broker is back and the sweeper runs
    settings.TIERFLOW_PENDING_GRACE_SECONDS = 0
    swept = sweep_pending()

    # then: one member waited, so one evaluation was published; it took the joining,
    # the order and the upgrade the order caused, in one pass
    order.refresh_from_db()
    assert swept == 1
    assert order.is_evaluated
    assert Member.objects.get(external_id="M-1").tier.code == "silver"
    assert sweep_pending() == 0


@pytest.mark.redis
def test_an_order_taken_while_the_broker_is_hung_answers_at_once_and_is_swept_later(
    api, silver_at_2000, settings
):
    """A Redis that accepts and never answers: the publish gives up within its socket
    timeouts (about 0.8 s in all, README) instead of hanging the request."""
    with broker_hung():
        started = time.monotonic()
        response = api.order(external_id="SO-1", amount="2500.00")
        took = time.monotonic() - started
    assert response.status_code == 201
    assert took < 2  # it was 10 s with 5 s socket timeouts
    order = Order.objects.get()
    assert not order.is_evaluated
    settings.TIERFLOW_PENDING_GRACE_SECONDS = 0
    assert sweep_pending() == 1
    assert Member.objects.get(external_id="M-1").tier.code == "silver"


def test_the_sweeper_leaves_orders_still_within_the_grace_period(api, settings):
    with broker_down():
        api.order(external_id="SO-1")
    settings.TIERFLOW_PENDING_GRACE_SECONDS = 3600
    assert sweep_pending() == 0
    assert not Order.objects.get().is_evaluated


def test_a_message_whose_delivery_could_not_be_published_is_swept_later(
    silver_at_2000, settings, django_capture_on_commit_callbacks
):
    # given: the rules ran, but publishing the SMS delivery failed
    order, _ = order_record(
        external_id="SO-1",
        member={"external_id": "M-1", "phone": "13800138000"},
        amount=Decimal("2500"),
        currency="CNY",
        placed_at=timezone.now(),
    )
    with broker_down(), django_capture_on_commit_callbacks(execute=True):
        member_evaluate(member_id=order.member_id, trigger="order_paid", subject_id=order.pk)
    notification = Notification.objects.get()
    queued = notification.status

    # when
    settings.TIERFLOW_PENDING_GRACE_SECONDS = 0
    swept = sweep_queued_notifications()

    # then
    notification.refresh_from_db()
    assert queued == "queued"
    assert (swept, notification.status) == (1, "sent")


def test_a_member_whose_evaluation_keeps_failing_holds_up_nobody(monkeypatch, caplog):
    # given: three members with an order each, in one batch; the second one's always fails
    orders = [
        order_record(
            external_id=f"SO-{n}",
            member={"external_id": f"M-{n}"},
            amount=Decimal("100"),
            currency="CNY",
            placed_at=timezone.now(),
        )[0]
        for n in range(3)
    ]
    poisoned = orders[1].member_id
    real_event = Batch._event

    def event(self, member, occurrence):
        if member.pk == poisoned:
            raise RuntimeError("bad data")
        return real_event(self, member, occurrence)

    monkeypatch.setattr(Batch, "_event", event)

    # when
    with caplog.at_level(logging.ERROR, logger="rules.services.evaluation"):
        waiting_evaluate(limit=10)

    # then: the others are evaluated; the failing one still waits, at the back, for
    # the sweeper's grace period
    members = {m.pk: m for m in Member.objects.all()}
    assert [
        members[o.member_id].evaluated_seq == members[o.member_id].event_seq for o in orders
    ] == [True, False, True]
    assert members[poisoned].pending_since > orders[1].recorded_at
    assert f"member #{poisoned}: evaluation failed" in caplog.text

    # and once the cause is gone, it is evaluated like the rest, when its time comes
    monkeypatch.undo()
    waiting_evaluate(limit=10)
    assert Member.objects.get(pk=poisoned).pending_since is not None
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        waiting_evaluate(limit=10)
    assert Member.objects.get(pk=poisoned).pending_since is None
