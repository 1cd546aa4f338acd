"""E-mail through Django's SMTP backend to a real SMTP server (aiosmtpd) on 127.0.0.1:
the message as received, and what 4xx and 5xx replies do."""

import socket
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller

from notifications.models import Notification
from notifications.services.messages import message_context
from notifications.services.outbox import notification_queue
from tests.factories import MemberFactory, NotificationTemplateFactory
from tests.helpers import deliver

pytestmark = pytest.mark.django_db

ADDRESS = "wang.xiansheng@example.com"


class Mailbox:
    """An SMTP server's handler: keeps what it accepts, or refuses as scripted."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.rcpt_reply = ""
        self.data_reply = ""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.data_reply:
            return self.data_reply
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        # On the wire lines end in CRLF; the test compares text.
        content = envelope.content.replace(b"\r\n", b"\n")
        self.messages.append(message_from_bytes(content, policy=default_policy))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def mailbox(settings) -> Iterator[Mailbox]:
    handler = Mailbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_PORT = controller.port
    yield handler
    controller.stop()


@pytest.fixture(autouse=True)
def smtp_settings(settings):
    settings.TIERFLOW_NOTIFICATION_PROVIDERS = {
        **settings.TIERFLOW_NOTIFICATION_PROVIDERS,
        "email": "smtp",
    }
    # The test runner swaps in the in-memory backend; these tests want real SMTP.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()  # nothing listens, unless the mailbox fixture runs
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    settings.DEFAULT_FROM_EMAIL = "会员中心 <members@example.com>"
    settings.TIERFLOW_EMAIL_SUBJECT = "会员通知"


def queued(body: str) -> Notification:
    member = MemberFactory(name="王先生", email=ADDRESS)
    template = NotificationTemplateFactory(channel="email", body=body)
    return notification_queue(
        member=member, template=template, context=message_context(member=member)
    )


def test_an_email_is_sent_with_the_templates_subject_line(mailbox):
    # given
    notification = queued(
        "Subject: 恭喜升级金卡\n\n{{ member.name }}，您已升级为金卡会员。\n积分翻倍。"
    )

    # when
    deliver(notification)

    # then
    [(sender, recipients)] = mailbox.envelopes
    [message] = mailbox.messages
    assert (sender, recipients) == ("members@example.com", [ADDRESS])
    assert message["From"] == "会员中心 <members@example.com>"
    assert message["To"] == ADDRESS
    assert message["Subject"] == "恭喜升级金卡"
    assert message.get_content() == "王先生，您已升级为金卡会员。\n积分翻倍。\n"
    assert (notification.status, notification.provider) == ("sent", "smtp")
    assert notification.provider_message_id == message["Message-ID"]
    assert notification.provider_message_id.endswith("@example.com>")
    assert f".{notification.pk}@" in notification.provider_message_id


def test_without_a_subject_line_the_default_subject_is_used(mailbox):
    deliver(queued("{{ member.name }}，您好"))
    [message] = mailbox.messages
    assert message["Subject"] == "会员通知"
    assert message.get_content() == "王先生，您好\n"


def test_a_refused_recipient_fails_at_once_with_the_address_masked(mailbox):
    # given: the server quotes the address it refuses
    mailbox.rcpt_reply = f"550 5.1.1 <{ADDRESS}>: Recipient address rejected"

    # when
    notification = deliver(queued("hello"))

    # then
    assert (notification.status, notification.attempts) == ("failed", 1)
    assert notification.status_reason.startswith("smtp: 550 5.1.1")
    assert ADDRESS not in notification.status_reason
    assert "w***@example.com" in notification.status_reason
    assert mailbox.messages == []


def test_a_temporary_refusal_is_retried(mailbox):
    mailbox.data_reply = "451 4.3.0 Mail server temporarily rejected message"
    notification = deliver(queued("hello"))
    assert (notification.status, notification.attempts) == ("queued", 1)
    assert "451 4.3.0" in notification.status_reason
    assert notification.next_attempt_at is not None


def test_a_permanent_refusal_of_the_content_fails_at_once(mailbox):
    mailbox.data_reply = "554 5.7.1 Message rejected as spam"
    notification = deliver(queued("hello"))
    assert (notification.status, notification.attempts) == ("failed", 1)


def test_an_unreachable_server_is_retried():
    # given: nothing listens on the port
    notification = deliver(queued("hello"))

    # then
    assert (notification.status, notification.attempts) == ("queued", 1)
    assert "could not reach the server" in notification.status_reason
