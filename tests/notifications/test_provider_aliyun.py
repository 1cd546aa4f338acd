"""Aliyun SMS against a stand-in dysmsapi on 127.0.0.1: the exact signed request, and
which of Aliyun's answers are retried."""

import base64
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
import time_machine

from notifications.models import Notification
from notifications.providers import aliyun
from notifications.services.delivery import notification_deliver
from notifications.services.messages import message_context
from notifications.services.outbox import notification_queue
from tests.factories import MemberFactory, NotificationTemplateFactory
from tests.helpers import FakeApi, Reply, deliver, serve_fake_api

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
SECRET = "aliyun-secret-test-only"
ACCEPTED = {"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": "R-1"}


@pytest.fixture
def fake_api(monkeypatch) -> Iterator[FakeApi]:
    yield from serve_fake_api(monkeypatch)


@pytest.fixture(autouse=True)
def aliyun_settings(settings, fake_api):
    settings.TIERFLOW_NOTIFICATION_PROVIDERS = {
        **settings.TIERFLOW_NOTIFICATION_PROVIDERS,
        "sms": "aliyun",
    }
    settings.TIERFLOW_ALIYUN_ACCESS_KEY_ID = "LTAI-test"
    settings.TIERFLOW_ALIYUN_ACCESS_KEY_SECRET = SECRET
    settings.TIERFLOW_ALIYUN_SMS_SIGN_NAME = "会员中心"
    settings.TIERFLOW_ALIYUN_SMS_TEMPLATE_CODE = "SMS_123456"
    settings.TIERFLOW_ALIYUN_SMS_TEMPLATE_PARAM = "content"
    settings.TIERFLOW_ALIYUN_SMS_ENDPOINT = f"{fake_api.url}/"
    settings.TIERFLOW_DELIVERY_MAX_ATTEMPTS = 6
    settings.TIERFLOW_DELIVERY_BACKOFF_SECONDS = 30.0


def queued(phone: str = "13800138000") -> Notification:
    member = MemberFactory(name="王先生", phone=phone)
    template = NotificationTemplateFactory(
        channel="sms", body="{{ member.name }}，您已升级为金卡会员"
    )
    return notification_queue(
        member=member, template=template, context=message_context(member=member)
    )


def expected_signature(params: dict[str, str], secret: str = SECRET) -> str:
    """Recomputed as Aliyun's RPC signature document describes it."""

    def encode(text: str) -> str:
        return quote(text, safe="-_.~")

    unsigned = {name: value for name, value in params.items() if name != "Signature"}
    canonical = "&".join(f"{encode(k)}={encode(unsigned[k])}" for k in sorted(unsigned))
    string_to_sign = "POST&%2F&" + encode(canonical)
    key = (secret + "&").encode()
    return base64.b64encode(hmac.new(key, string_to_sign.encode(), hashlib.sha1).digest()).decode()


def test_the_signature_matches_aliyuns_documented_example():
    # the example in Aliyun's "RPC signature" document
    params = {
        "AccessKeyId": "testid",
        "Action": "DescribeRegions",
        "Format": "XML",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "SignatureVersion": "1.0",
        "Timestamp": "2016-02-23T12:46:24Z",
        "Version": "2014-05-26",
    }
    assert aliyun.signature(params, "testsecret", method="GET") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_an_sms_is_sent_signed_with_the_text_as_the_template_parameter(fake_api):
    # given
    fake_api.reply("/", Reply(200, ACCEPTED))
    notification = queued()

    # when
    with time_machine.travel(NOW, tick=False):
        deliver(notification)

    # then: one form POST, every parameter as documented, the signature recomputed
    [request] = fake_api.received
    assert (request.method, request.path) == ("POST", "/")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = request.form()
    assert form == {
        "AccessKeyId": "LTAI-test",
        "Action": "SendSms",
        "Format": "JSON",
        "PhoneNumbers": "13800138000",
        "SignName": "会员中心",
        "TemplateCode": "SMS_123456",
        "TemplateParam": '{"content": "王先生，您已升级为金卡会员"}',
        "OutId": str(notification.pk),
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": form["SignatureNonce"],
        "SignatureVersion": "1.0",
        "Timestamp": "2025-03-10T04:00:00Z",
        "Version": "2017-05-25",
        "Signature": form["Signature"],
    }
    assert re.fullmatch(r"[0-9a-f]{32}", form["SignatureNonce"])
    assert form["Signature"] == expected_signature(form)
    assert form["Signature"] != expected_signature(form, secret="another")
    assert (notification.status, notification.attempts) == ("sent", 1)
    assert (notification.provider, notification.provider_message_id) == (
        "aliyun",
        "900619746936498440^0",
    )


def test_the_template_parameter_name_is_a_setting(fake_api, settings):
    settings.TIERFLOW_ALIYUN_SMS_TEMPLATE_PARAM = "text"
    fake_api.reply("/", Reply(200, ACCEPTED))
    deliver(queued(phone="+85291234567"))
    [request] = fake_api.received
    assert json.loads(request.form()["TemplateParam"]) == {"text": "王先生，您已升级为金卡会员"}
    assert request.form()["PhoneNumbers"] == "85291234567"


def test_two_503s_then_success_send_the_message_once_in_three_requests(fake_api):
    # given: the API is unavailable twice, then accepts
    fake_api.reply(
        "/", Reply(503, {"Code": "ServiceUnavailable"}), Reply(503, ""), Reply(200, ACCEPTED)
    )
    notification = queued()

    # when: delivered, and again each time its retry is due
    with time_machine.travel(NOW, tick=False) as traveller:
        statuses = []
        for _ in range(3):
            statuses.append(notification_deliver(notification_id=notification.pk).status)
            notification.refresh_from_db()
            if notification.next_attempt_at:
                too_early = notification_deliver(notification_id=notification.pk).status
                assert too_early == "queued"
                traveller.move_to(notification.next_attempt_at)
        again = notification_deliver(notification_id=notification.pk).status

    # then: sent once, on the third request; every attempt named the same message
    assert statuses == ["queued", "queued", "sent"]
    assert again == "sent"
    assert (notification.status, notification.attempts) == ("sent", 3)
    assert notification.provider_message_id == "900619746936498440^0"
    assert len(fake_api.received) == 3
    forms = [request.form() for request in fake_api.received]
    assert {form["OutId"] for form in forms} == {str(notification.pk)}
    assert len({form["SignatureNonce"] for form in forms}) == 3
    assert all(form["Signature"] == expected_signature(form) for form in forms)


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        (200, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控Permits:1"}),
        (
            400,
            {"Code": "Throttling.User", "Message": "Request was denied due to user flow control."},
        ),
        (200, {"Code": "isp.SYSTEM_ERROR", "Message": "system error"}),
        (500, {"Code": "InternalError", "Message": "The request processing has failed."}),
        (502, "Bad Gateway"),
        (429, ""),
    ],
)
def test_throttling_and_server_errors_are_retried(fake_api, status, answer):
    fake_api.reply("/", Reply(status, answer))
    notification = deliver(queued())
    assert (notification.status, notification.attempts) == ("queued", 1)
    assert notification.next_attempt_at is not None
    if isinstance(answer, dict):
        assert answer["Code"] in notification.status_reason


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        (200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "invalid mobile number"}),
        (200, {"Code": "isv.SMS_TEMPLATE_ILLEGAL", "Message": "模板不合法"}),
        (200, {"Code": "isv.AMOUNT_NOT_ENOUGH", "Message": "账户余额不足"}),
        (
            404,
            {
                "Code": "InvalidAccessKeyId.NotFound",
                "Message": "Specified access key is not found.",
            },
        ),
        (400, {"Code": "SignatureDoesNotMatch", "Message": "Specified signature is not matched."}),
        (403, ""),
    ],
)
def test_bad_credentials_numbers_and_templates_fail_at_once(fake_api, status, answer):
    fake_api.reply("/", Reply(status, answer))
    notification = deliver(queued())
    assert (notification.status, notification.attempts) == ("failed", 1)
    expected = answer["Code"] if isinstance(answer, dict) else f"HTTP {status}"
    assert notification.status_reason.startswith(f"aliyun: {expected}")
    assert len(fake_api.received) == 1


def test_a_timeout_is_retried(fake_api, monkeypatch):
    # given: Aliyun may have accepted it; OutId lets its report name the message anyway
    monkeypatch.setattr("notifications.providers.common.TIMEOUT", (2, 0.3))
    fake_api.reply("/", Reply(hold=True))

    # when
    notification = deliver(queued())

    # then
    assert (notification.status, notification.attempts) == ("queued", 1)
    assert "did not answer in time" in notification.status_reason


def test_without_an_access_key_nothing_is_sent(fake_api, settings):
    settings.TIERFLOW_ALIYUN_ACCESS_KEY_SECRET = ""
    notification = deliver(queued())
    assert notification.status == "failed"
    assert fake_api.received == []


def test_the_log_masks_the_number_and_leaves_out_the_text(fake_api, caplog):
    fake_api.reply("/", Reply(200, ACCEPTED), Reply(200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL"}))
    with caplog.at_level(logging.INFO):
        deliver(queued())
        deliver(queued())
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "138****8000" in logged
    assert "13800138000" not in logged
    assert "金卡" not in logged
