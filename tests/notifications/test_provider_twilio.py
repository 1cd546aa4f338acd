"""Twilio SMS against a stand-in Messages API on 127.0.0.1: basic auth, the form, the
status callback URL, and Twilio's error answers."""

import base64
from collections.abc import Iterator

import pytest

from notifications.models import Notification
from notifications.services.messages import message_context
from notifications.services.outbox import notification_queue
from tests.factories import MemberFactory, NotificationTemplateFactory
from tests.helpers import FakeApi, Reply, deliver, serve_fake_api

pytestmark = pytest.mark.django_db

SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "twilio-token-test-only"
MESSAGES = f"/2010-04-01/Accounts/{SID}/Messages.json"
ACCEPTED = {"sid": "SM1f0e8ae6ade43cb3c0ce4525424e404f", "status": "queued"}


@pytest.fixture
def fake_api(monkeypatch) -> Iterator[FakeApi]:
    yield from serve_fake_api(monkeypatch)


@pytest.fixture(autouse=True)
def twilio_settings(settings, fake_api):
    settings.TIERFLOW_NOTIFICATION_PROVIDERS = {
        **settings.TIERFLOW_NOTIFICATION_PROVIDERS,
        "sms": "twilio",
    }
    settings.TIERFLOW_TWILIO_ACCOUNT_SID = SID
    settings.TIERFLOW_TWILIO_AUTH_TOKEN = TOKEN
    settings.TIERFLOW_TWILIO_FROM = "+15005550006"
    settings.TIERFLOW_TWILIO_API_BASE = fake_api.url
    settings.TIERFLOW_SMS_DEFAULT_COUNTRY_CODE = "86"
    settings.TIERFLOW_PUBLIC_URL = "https://members.example.com/"


def queued(phone: str = "13800138000") -> Notification:
    member = MemberFactory(name="王先生", phone=phone)
    template = NotificationTemplateFactory(channel="sms", body="{{ member.name }}: welcome to Gold")
    return notification_queue(
        member=member, template=template, context=message_context(member=member)
    )


def test_an_sms_is_posted_with_basic_auth_and_a_status_callback(fake_api):
    # given
    fake_api.reply(MESSAGES, Reply(201, ACCEPTED))
    notification = queued()

    # when
    deliver(notification)

    # then
    [request] = fake_api.received
    assert (request.method, request.path) == ("POST", MESSAGES)
    credentials = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {credentials}"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form() == {
        "To": "+8613800138000",
        "From": "+15005550006",
        "Body": "王先生: welcome to Gold",
        "StatusCallback": "https://members.example.com/api/v1/notifications/callbacks/twilio/",
    }
    assert (notification.status, notification.provider, notification.provider_message_id) == (
        "sent",
        "twilio",
        ACCEPTED["sid"],
    )


def test_a_messaging_service_sends_in_place_of_a_number(fake_api, settings):
    # given: no public URL, so no callback; a number already in E.164
    settings.TIERFLOW_TWILIO_FROM = "MG9752274e9e519418a7406176694466fa"
    settings.TIERFLOW_PUBLIC_URL = ""
    fake_api.reply(MESSAGES, Reply(201, ACCEPTED))

    # when
    deliver(queued(phone="+14155550123"))

    # then
    [request] = fake_api.received
    assert request.form() == {
        "To": "+14155550123",
        "MessagingServiceSid": "MG9752274e9e519418a7406176694466fa",
        "Body": "王先生: welcome to Gold",
    }


def test_an_invalid_number_fails_at_once_without_the_number_in_the_reason(fake_api):
    # given: Twilio's error quotes the number
    fake_api.reply(
        MESSAGES,
        Reply(
            400,
            {
                "code": 21211,
                "message": "The 'To' number +8613800138000 is not a valid phone number.",
                "more_info": "https://www.twilio.com/docs/errors/21211",
                "status": 400,
            },
        ),
    )

    # when
    notification = deliver(queued())

    # then
    assert (notification.status, notification.attempts) == ("failed", 1)
    assert notification.status_reason.startswith("twilio: error 21211: The 'To' number 138****8000")
    assert "13800138000" not in notification.status_reason
    assert "8000" in notification.status_reason


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        (401, {"code": 20003, "message": "Authenticate", "status": 401}),
        (404, {"code": 20404, "message": "The requested resource was not found", "status": 404}),
        (400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient"}),
    ],
)
def test_bad_credentials_and_refused_recipients_fail_at_once(fake_api, status, answer):
    fake_api.reply(MESSAGES, Reply(status, answer))
    notification = deliver(queued())
    assert (notification.status, notification.attempts) == ("failed", 1)
    assert f"error {answer['code']}" in notification.status_reason


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        (429, {"code": 20429, "message": "Too Many Requests", "status": 429}),
        (500, {"code": 20500, "message": "Internal Server Error", "status": 500}),
        (503, ""),
    ],
)
def test_rate_limits_and_server_errors_are_retried(fake_api, status, answer):
    fake_api.reply(MESSAGES, Reply(status, answer))
    notification = deliver(queued())
    assert (notification.status, notification.attempts) == ("queued", 1)
    assert notification.next_attempt_at is not None


def test_a_success_without_a_sid_is_not_taken_for_a_send(fake_api):
    fake_api.reply(MESSAGES, Reply(201, {"status": "queued"}))
    notification = deliver(queued())
    assert notification.status == "failed"
    assert "HTTP 201" in notification.status_reason
