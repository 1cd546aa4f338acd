"""Saving messages to the outbox: delivered after commit, and a batch's deliveries
published a chunk of ids to a task."""

import pytest

from notifications.models import Notification
from notifications.services.messages import message_context
from notifications.services.outbox import notification_queue, notifications_save
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


def test_a_queued_message_is_delivered_after_commit(member, django_capture_on_commit_callbacks):
    # when
    with django_capture_on_commit_callbacks(execute=True):
        notification = queue(member)
        before = Notification.objects.get(pk=notification.pk).status

    # then
    notification.refresh_from_db()
    assert before == "queued"
    assert (notification.status, notification.body) == ("sent", "王先生 9.5折")
    assert notification.provider == "console"
    assert notification.sent_at is not None
    assert notification.attempts == 1


def test_messages_saved_together_are_published_a_chunk_to_a_task(
    member, settings, monkeypatch, django_capture_on_commit_callbacks
):
    # given
    from notifications import tasks

    settings.TIERFLOW_DELIVERY_CHUNK = 4
    published = []
    publish = tasks.deliver_many.apply_async
    monkeypatch.setattr(
        tasks.deliver_many,
        "apply_async",
        lambda args, **kw: published.append(list(args[0])) or publish(args, **kw),
    )
    template = NotificationTemplateFactory(body="{{ member.name }}", channel="sms")
    context = message_context(member=member)
    built = [
        notification_queue(member=member, template=template, context=context, save=False)
        for _ in range(10)
    ]

    # when
    with django_capture_on_commit_callbacks(execute=True):
        notifications_save(built)

    # then
    ids = [n.pk for n in built]
    assert published == [ids[0:4], ids[4:8], ids[8:10]]
    statuses = Notification.objects.filter(pk__in=ids).values_list("status", flat=True)
    assert set(statuses) == {"sent"}
