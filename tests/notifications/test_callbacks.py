"""Delivery reports from Twilio (signed status callbacks) and Aliyun (receipts with a
shared token): valid and forged, delivered and failed, unknown and replayed."""

import base64
import hashlib
import hmac
import logging
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.utils import timezone

from notifications.models import Notification
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

TWILIO_PATH = "/api/v1/notifications/callbacks/twilio/"
ALIYUN_PATH = "/api/v1/notifications/callbacks/aliyun/"
PUBLIC_URL = "https://members.example.com"
AUTH_TOKEN = "twilio-token-test-only"
CALLBACK_TOKEN = "callback-token-test-only"
SID = "SM1f0e8ae6ade43cb3c0ce4525424e404f"
BIZ_ID = "900619746936498440^0"


@pytest.fixture(autouse=True)
def callback_settings(settings):
    settings.TIERFLOW_PUBLIC_URL = f"{PUBLIC_URL}/"
    settings.TIERFLOW_TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.TIERFLOW_CALLBACK_TOKEN = CALLBACK_TOKEN


def sent(provider: str, provider_message_id: str) -> Notification:
    return Notification.objects.create(
        member=MemberFactory(),
        channel="sms",
        body="王先生，您已升级为金卡会员",
        status="sent",
        provider=provider,
        provider_message_id=provider_message_id,
        sent_at=timezone.now(),
    )


def twilio_signature(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """As Twilio documents it: the URL, then each name and value sorted by name."""
    data = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def twilio_report(status: str, sid: str = SID, error_code: str = "") -> dict[str, str]:
    report = {
        "AccountSid": "AC0123456789abcdef0123456789abcdef",
        "ApiVersion": "2010-04-01",
        "From": "+15005550006",
        "MessageSid": sid,
        "MessageStatus": status,
        "SmsSid": sid,
        "SmsStatus": status,
        "To": "+8613800138000",
    }
    if error_code:
        report["ErrorCode"] = error_code
    return report


def post_twilio(params: dict[str, str], signature: str | None = None, path: str = TWILIO_PATH):
    if signature is None:
        signature = twilio_signature(f"{PUBLIC_URL}{path}", params)
    return Client().post(
        path,
        urlencode(params),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=signature,
    )


def post_aliyun(reports: object, token: str | None = CALLBACK_TOKEN):
    query = f"?{urlencode({'token': token})}" if token is not None else ""
    return Client().post(f"{ALIYUN_PATH}{query}", reports, content_type="application/json")


def aliyun_report(success: bool, biz_id: str = BIZ_ID, out_id: str = "1", **fields) -> dict:
    return {
        "phone_number": "13800138000",
        "send_time": "2025-03-10 12:00:00",
        "report_time": "2025-03-10 12:00:05",
        "success": success,
        "err_code": "DELIVERED" if success else "MK:0001",
        "err_msg": "用户接收成功" if success else "空号",
        "sms_size": "1",
        "biz_id": biz_id,
        "out_id": out_id,
        **fields,
    }


# --- Twilio --------------------------------------------------------------------------


def test_a_signed_delivered_report_marks_the_message_delivered():
    # given
    notification = sent("twilio", SID)

    # when
    response = post_twilio(twilio_report("delivered"))

    # then
    notification.refresh_from_db()
    assert response.status_code == 200
    assert notification.status == "delivered"
    assert notification.delivered_at is not None


@pytest.mark.parametrize("status", ["undelivered", "failed"])
def test_an_undelivered_report_fails_the_message_with_twilios_error_code(status):
    notification = sent("twilio", SID)
    response = post_twilio(twilio_report(status, error_code="30003"))
    notification.refresh_from_db()
    assert response.status_code == 200
    assert notification.status == "failed"
    assert "30003" in notification.status_reason
    assert status in notification.status_reason


@pytest.mark.parametrize("status", ["queued", "sending", "sent", "accepted"])
def test_other_statuses_change_nothing(status):
    notification = sent("twilio", SID)
    response = post_twilio(twilio_report(status))
    notification.refresh_from_db()
    assert response.status_code == 200
    assert notification.status == "sent"


def test_a_forged_signature_is_refused_in_the_error_shape():
    # given: signed with another token
    notification = sent("twilio", SID)
    params = twilio_report("failed", error_code="30003")

    # when
    response = post_twilio(
        params, signature=twilio_signature(f"{PUBLIC_URL}{TWILIO_PATH}", params, "x")
    )

    # then
    notification.refresh_from_db()
    assert response.status_code == 403
    assert response.json()["type"] == "client_error"
    assert response.json()["errors"][0]["code"] == "permission_denied"
    assert notification.status == "sent"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda params: {**params, "MessageStatus": "failed"},  # the body changed
        lambda params: {**params, "ErrorCode": "30008"},  # a parameter added
    ],
)
def test_a_report_changed_after_signing_is_refused(tamper):
    notification = sent("twilio", SID)
    params = twilio_report("delivered")
    signature = twilio_signature(f"{PUBLIC_URL}{TWILIO_PATH}", params)
    response = post_twilio(tamper(params), signature=signature)
    notification.refresh_from_db()
    assert response.status_code == 403
    assert notification.status == "sent"


def test_the_signature_covers_the_public_url():
    # given: signed for another host (a proxy's view of it, say)
    sent("twilio", SID)
    params = twilio_report("delivered")
    response = post_twilio(
        params, signature=twilio_signature(f"http://testserver{TWILIO_PATH}", params)
    )
    assert response.status_code == 403


def test_an_unsigned_report_or_one_without_configuration_is_refused(settings):
    sent("twilio", SID)
    assert post_twilio(twilio_report("delivered"), signature="").status_code == 403
    settings.TIERFLOW_PUBLIC_URL = ""
    assert post_twilio(twilio_report("delivered")).status_code == 403


def test_a_report_for_an_unknown_message_is_accepted_and_ignored():
    notification = sent("twilio", SID)
    response = post_twilio(twilio_report("delivered", sid="SM00000000000000000000000000000000"))
    notification.refresh_from_db()
    assert response.status_code == 200
    assert notification.status == "sent"


def test_a_report_for_another_providers_message_changes_nothing():
    notification = sent("aliyun", SID)
    post_twilio(twilio_report("delivered"))
    notification.refresh_from_db()
    assert notification.status == "sent"


def test_a_replayed_report_changes_nothing_the_second_time():
    # given
    notification = sent("twilio", SID)
    params = twilio_report("delivered")
    post_twilio(params)
    notification.refresh_from_db()
    delivered_at = notification.delivered_at

    # when: the same report again, then a late failure
    again = post_twilio(params)
    late = post_twilio(twilio_report("undelivered", error_code="30005"))

    # then
    notification.refresh_from_db()
    assert (again.status_code, late.status_code) == (200, 200)
    assert (notification.status, notification.delivered_at) == ("delivered", delivered_at)


# --- Aliyun --------------------------------------------------------------------------


def test_aliyun_receipts_mark_messages_delivered_or_failed():
    # given
    delivered = sent("aliyun", BIZ_ID)
    failed = sent("aliyun", "900619746936498441^0")

    # when
    response = post_aliyun(
        [
            aliyun_report(True, out_id=str(delivered.pk)),
            aliyun_report(False, biz_id="900619746936498441^0", out_id=str(failed.pk)),
        ]
    )

    # then: answered as Aliyun expects
    assert response.status_code == 200
    assert response.json() == {"code": 0, "msg": "成功"}
    delivered.refresh_from_db()
    failed.refresh_from_db()
    assert delivered.status == "delivered"
    assert failed.status == "failed"
    assert "MK:0001 空号" in failed.status_reason


@pytest.mark.parametrize("token", [None, "", "wrong-token", CALLBACK_TOKEN + "x"])
def test_aliyun_receipts_without_the_token_are_refused(token):
    notification = sent("aliyun", BIZ_ID)
    response = post_aliyun([aliyun_report(True)], token=token)
    notification.refresh_from_db()
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "permission_denied"
    assert notification.status == "sent"


def test_aliyun_receipts_are_refused_while_no_token_is_configured(settings):
    settings.TIERFLOW_CALLBACK_TOKEN = ""
    sent("aliyun", BIZ_ID)
    assert post_aliyun([aliyun_report(True)], token="").status_code == 403


def test_an_aliyun_receipt_for_an_unknown_message_is_logged_with_its_out_id(caplog):
    # given: e.g. an attempt that Aliyun accepted but whose answer never reached us
    notification = sent("aliyun", BIZ_ID)

    # when
    with caplog.at_level(logging.INFO, logger="notifications.api"):
        response = post_aliyun([aliyun_report(True, biz_id="1^0", out_id=str(notification.pk))])

    # then: acknowledged, so Aliyun stops pushing it; nothing changed
    notification.refresh_from_db()
    assert response.json() == {"code": 0, "msg": "成功"}
    assert notification.status == "sent"
    assert f"BizId 1^0 (out_id {notification.pk}) changed nothing" in caplog.text


def test_a_replayed_aliyun_receipt_changes_nothing():
    notification = sent("aliyun", BIZ_ID)
    post_aliyun([aliyun_report(True)])
    notification.refresh_from_db()
    delivered_at = notification.delivered_at
    again = post_aliyun([aliyun_report(True), aliyun_report(False)])
    notification.refresh_from_db()
    assert again.status_code == 200
    assert (notification.status, notification.delivered_at) == ("delivered", delivered_at)


@pytest.mark.parametrize(
    "body",
    [{"biz_id": BIZ_ID, "success": True}, [{"success": True}], [{"biz_id": BIZ_ID}]],
)
def test_a_malformed_aliyun_receipt_is_a_validation_error(body):
    notification = sent("aliyun", BIZ_ID)
    response = post_aliyun(body)
    notification.refresh_from_db()
    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"
    assert notification.status == "sent"


def test_the_callbacks_are_in_the_openapi_schema():
    paths = Client().get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    assert "post" in paths[TWILIO_PATH]
    assert "post" in paths[ALIYUN_PATH]
    assert (
        "application/x-www-form-urlencoded" in paths[TWILIO_PATH]["post"]["requestBody"]["content"]
    )
