"""FCM push against a stand-in token endpoint and FCM v1 API on 127.0.0.1: the signed
token request, the bearer token and its caching, and what FCM's errors do to devices."""

import base64
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from notifications.models import Device, Notification
from notifications.providers import fcm
from notifications.services.devices import device_register
from notifications.services.messages import message_context
from notifications.services.outbox import notification_queue
from tests.factories import MemberFactory, NotificationTemplateFactory
from tests.helpers import FakeApi, Reply, deliver, serve_fake_api

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
PROJECT = "demo-project"
SEND = f"/v1/projects/{PROJECT}/messages:send"
DEVICE_TOKEN = "dXw8bKqGQx:APA91bFq-test-token"
CLIENT_EMAIL = f"tierflow@{PROJECT}.iam.gserviceaccount.com"


def access(token: str = "ya29.first") -> Reply:
    return Reply(200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"})


def fcm_error(status: int, code: str, message: str, fcm_code: str = "", **extra) -> Reply:
    details = [
        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcm_code}
    ]
    error = {"code": status, "message": message, "status": code, **extra}
    if fcm_code:
        error["details"] = details
    return Reply(status, {"error": error})


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def fake_api(monkeypatch) -> Iterator[FakeApi]:
    yield from serve_fake_api(monkeypatch)


@pytest.fixture(autouse=True)
def fcm_settings(settings, fake_api, private_key):
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    settings.TIERFLOW_NOTIFICATION_PROVIDERS = {
        **settings.TIERFLOW_NOTIFICATION_PROVIDERS,
        "push": "fcm",
    }
    settings.TIERFLOW_FCM_CREDENTIALS = json.dumps(
        {
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": "key-1",
            "private_key": pem,
            "client_email": CLIENT_EMAIL,
            "client_id": "1234567890",
            "token_uri": f"{fake_api.url}/token",
        }
    )
    settings.TIERFLOW_FCM_PROJECT_ID = ""
    settings.TIERFLOW_FCM_API_BASE = fake_api.url
    settings.TIERFLOW_PUSH_TITLE = "会员中心"
    fcm.forget_token()
    yield
    fcm.forget_token()


def queued(
    body: str = "{{ member.name }}，您已升级为金卡会员", token: str = DEVICE_TOKEN
) -> Notification:
    member = MemberFactory(name="王先生")
    device_register(member=member, platform="android", token=token)
    template = NotificationTemplateFactory(channel="push", body=body)
    return notification_queue(
        member=member, template=template, context=message_context(member=member)
    )


def b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_a_push_gets_a_token_with_a_signed_assertion_and_sends_it_as_bearer(fake_api, private_key):
    # given
    fake_api.reply("/token", access("ya29.first"))
    fake_api.reply(
        SEND, Reply(200, {"name": f"projects/{PROJECT}/messages/0:1500415314455276%31bd"})
    )
    notification = queued()

    # when
    with time_machine.travel(NOW, tick=False):
        deliver(notification)

    # then: first the token, by the JWT bearer grant, signed with the service account's key
    token_request, send_request = fake_api.received
    assert (token_request.method, token_request.path) == ("POST", "/token")
    grant = token_request.form()
    assert grant["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    header, claims, signature = grant["assertion"].split(".")
    private_key.public_key().verify(
        b64decode(signature),
        f"{header}.{claims}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    assert json.loads(b64decode(header)) == {"alg": "RS256", "typ": "JWT", "kid": "key-1"}
    issued = int(NOW.timestamp())
    assert json.loads(b64decode(claims)) == {
        "iss": CLIENT_EMAIL,
        "scope": "https://www.googleapis.com/auth/firebase.messaging",
        # google-auth names Google's token endpoint as the audience wherever it posts
        "aud": "https://oauth2.googleapis.com/token",
        "iat": issued,
        "exp": issued + 3600,
    }
    # then the message, with the token as bearer
    assert (send_request.method, send_request.path) == ("POST", SEND)
    assert send_request.headers["authorization"] == "Bearer ya29.first"
    assert send_request.headers["content-type"] == "application/json"
    assert send_request.json() == {
        "message": {
            "token": DEVICE_TOKEN,
            "notification": {"title": "会员中心", "body": "王先生，您已升级为金卡会员"},
            "data": {"notification_id": str(notification.pk)},
        }
    }
    assert (notification.status, notification.provider, notification.provider_message_id) == (
        "sent",
        "fcm",
        f"projects/{PROJECT}/messages/0:1500415314455276%31bd",
    )


def test_the_token_is_reused_until_it_expires(fake_api):
    # given
    fake_api.reply("/token", access("ya29.first"), access("ya29.second"))
    fake_api.reply(SEND, Reply(200, {"name": f"projects/{PROJECT}/messages/1"}))

    # when: three pushes, the last near the end of the token's hour
    with time_machine.travel(NOW, tick=False) as traveller:
        deliver(queued(token="token-a"))
        traveller.move_to(NOW + timedelta(minutes=30))
        deliver(queued(token="token-b"))
        traveller.move_to(NOW + timedelta(minutes=58))
        deliver(queued(token="token-c"))

    # then: a new token only for the last
    assert len(fake_api.to("/token")) == 2
    assert [r.headers["authorization"] for r in fake_api.to(SEND)] == [
        "Bearer ya29.first",
        "Bearer ya29.first",
        "Bearer ya29.second",
    ]


def test_a_subject_line_becomes_the_title(fake_api):
    fake_api.reply("/token", access())
    fake_api.reply(SEND, Reply(200, {"name": "projects/p/messages/1"}))
    deliver(queued(body="Subject: 升级啦\n{{ member.name }}，您已升级为金卡会员"))
    assert fake_api.to(SEND)[0].json()["message"]["notification"] == {
        "title": "升级啦",
        "body": "王先生，您已升级为金卡会员",
    }


def test_an_unregistered_token_deactivates_the_device_and_fails_at_once(fake_api):
    # given: the app was removed from the phone
    fake_api.reply("/token", access())
    fake_api.reply(
        SEND, fcm_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")
    )
    notification = queued()

    # when
    deliver(notification)

    # then
    assert (notification.status, notification.attempts) == ("failed", 1)
    assert notification.status_reason == (
        "fcm: UNREGISTERED: Requested entity was not found. (device deactivated)"
    )
    assert Device.objects.get(token=DEVICE_TOKEN).is_active is False


def test_an_invalid_token_deactivates_the_device(fake_api):
    fake_api.reply("/token", access())
    fake_api.reply(
        SEND,
        fcm_error(
            400,
            "INVALID_ARGUMENT",
            "The registration token is not a valid FCM registration token",
            "INVALID_ARGUMENT",
        ),
    )
    notification = deliver(queued())
    assert notification.status == "failed"
    assert Device.objects.get(token=DEVICE_TOKEN).is_active is False


def test_an_invalid_payload_fails_but_keeps_the_device(fake_api):
    # given: INVALID_ARGUMENT about the message, not the token
    fake_api.reply("/token", access())
    fake_api.reply(
        SEND,
        fcm_error(400, "INVALID_ARGUMENT", "Invalid value at 'message.data'", "INVALID_ARGUMENT"),
    )

    # when
    notification = deliver(queued())

    # then
    assert (notification.status, notification.attempts) == ("failed", 1)
    assert Device.objects.get(token=DEVICE_TOKEN).is_active is True


@pytest.mark.parametrize(
    "reply",
    [
        fcm_error(503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE"),
        fcm_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", "QUOTA_EXCEEDED"),
        fcm_error(500, "INTERNAL", "Internal error encountered.", "INTERNAL"),
        Reply(502, "<html>Bad Gateway</html>"),
    ],
)
def test_unavailable_and_quota_are_retried_and_keep_the_device(fake_api, reply):
    fake_api.reply("/token", access())
    fake_api.reply(SEND, reply)
    notification = deliver(queued())
    assert (notification.status, notification.attempts) == ("queued", 1)
    assert Device.objects.get(token=DEVICE_TOKEN).is_active is True


def test_a_refused_access_token_is_dropped_and_the_message_retried(fake_api):
    # given: the cached token was revoked early
    fake_api.reply("/token", access("ya29.revoked"), access("ya29.fresh"))
    fake_api.reply(
        SEND,
        fcm_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."),
        Reply(200, {"name": "projects/p/messages/2"}),
    )
    notification = queued()

    # when
    deliver(notification)
    first = notification.status
    deliver(queued(token="another-device"))

    # then
    assert first == "queued"
    assert [r.headers["authorization"] for r in fake_api.to(SEND)] == [
        "Bearer ya29.revoked",
        "Bearer ya29.fresh",
    ]


def test_a_refused_service_account_fails_at_once_without_calling_fcm(fake_api):
    fake_api.reply(
        "/token",
        Reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}),
    )
    notification = deliver(queued())
    assert (notification.status, notification.attempts) == ("failed", 1)
    assert "invalid_grant" in notification.status_reason
    assert fake_api.to(SEND) == []


def test_unreadable_credentials_fail_at_once(fake_api, settings):
    settings.TIERFLOW_FCM_CREDENTIALS = "/nowhere/service-account.json"
    notification = deliver(queued())
    assert notification.status == "failed"
    assert "TIERFLOW_FCM_CREDENTIALS" in notification.status_reason
    assert fake_api.received == []
