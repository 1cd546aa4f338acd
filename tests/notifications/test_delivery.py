"""Delivering a message: claimed once, suppressed without an address, failed on a
provider's error and sent again by an operator; personal data kept out of the logs."""

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import Notification
from notifications.providers import ProviderError
from notifications.services.delivery import (
    notification_deliver,
    notifications_requeue_stuck,
    notifications_retry,
)
from notifications.services.messages import message_context
from notifications.services.outbox import notification_queue
from tests.factories import MemberFactory, NotificationTemplateFactory, TierFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member():
    return MemberFactory(
        name="王先生", phone="13912345678", tier=TierFactory(name="银卡会员", discount_percent=5)
    )


def queue(member, body="{{ member.name }} {{ tier.discount_label }}", channel="sms"):
    template = NotificationTemplateFactory(body=body, channel=channel)
    return notification_queue(
        member=member, template=template, context=message_context(member=member)
    )


def test_delivering_twice_sends_once(member, django_capture_on_commit_callbacks, caplog):
    # given
    notification = queue(member)

    # when
    with caplog.at_level(logging.INFO, logger="notifications.providers"):
        first = notification_deliver(notification_id=notification.pk).status
        second = notification_deliver(notification_id=notification.pk).status

    # then
    assert (first, second) == ("sent", "sent")
    assert len([r for r in caplog.records if r.name.startswith("notifications.providers")]) == 1
    notification.refresh_from_db()
    assert notification.attempts == 1


def test_a_member_without_a_phone_gets_no_sms(member):
    # given
    member.phone = ""
    member.save()
    notification = queue(member)

    # when
    status = notification_deliver(notification_id=notification.pk).status

    # then
    notification.refresh_from_db()
    assert status == "suppressed"
    assert "no SMS address" in notification.status_reason


def test_a_provider_error_fails_the_message_and_an_operator_can_retry(
    member, monkeypatch, django_capture_on_commit_callbacks
):
    # given
    def refuse(self, message):
        raise ProviderError("account suspended", permanent=True)

    notification = queue(member)
    monkeypatch.setattr("notifications.providers.console.ConsoleProvider.send", refuse)
    notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    failed = (notification.status, notification.status_reason)
    monkeypatch.undo()

    # when
    with django_capture_on_commit_callbacks(execute=True):
        retried = notifications_retry(ids=[notification.pk])

    # then
    notification.refresh_from_db()
    assert failed == ("failed", "account suspended")
    assert retried == 1
    assert (notification.status, notification.attempts) == ("sent", 2)


def test_the_phone_number_never_reaches_the_logs(member, caplog):
    # given
    notification = queue(member)

    # when
    with caplog.at_level(logging.DEBUG):
        notification_deliver(notification_id=notification.pk)

    # then
    assert "139****5678" in caplog.text
    assert "13912345678" not in caplog.text
    assert "王先生" not in caplog.text


def test_an_unexpected_provider_error_fails_the_message_instead_of_leaving_it_sending(
    member, monkeypatch
):
    # given
    def explode(self, message):
        raise RuntimeError("bug in an adapter")

    notification = queue(member)
    monkeypatch.setattr("notifications.providers.console.ConsoleProvider.send", explode)

    # when
    notification_deliver(notification_id=notification.pk)

    # then
    notification.refresh_from_db()
    assert (notification.status, notification.status_reason) == (
        "failed",
        "Unexpected error: RuntimeError",
    )


def test_a_message_left_sending_by_a_dead_worker_is_requeued_and_sent(member, settings):
    # given: claimed long ago by a worker that died
    notification = queue(member)
    Notification.objects.filter(pk=notification.pk).update(
        status="sending", created_at=timezone.now() - timedelta(hours=1)
    )
    settings.TIERFLOW_PENDING_GRACE_SECONDS = 0

    # when
    notifications_requeue_stuck()

    # then
    notification.refresh_from_db()
    assert notification.status == "sent"
