"""Consent, quiet hours, the daily marketing cap, the member's language, and opt-out:
members hear from us at a decent hour, once, and only if they agreed to marketing."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from notifications.models import Consent, Notification
from notifications.rendering import sms_segments
from notifications.services.consent import consent_record
from notifications.services.delivery import (
    notification_deliver,
    notification_delivery_report,
    notifications_requeue_stuck,
)
from notifications.services.messages import message_context
from notifications.services.outbox import notification_queue
from tests.factories import MemberFactory, NotificationTemplateFactory, TierFactory

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


@pytest.fixture
def member():
    return MemberFactory(
        external_id="M-1", name="王先生", phone="13912345678", tier=TierFactory(name="银卡会员")
    )


def queue(member, purpose="transactional", **template_fields):
    template = NotificationTemplateFactory(purpose=purpose, **template_fields)
    return notification_queue(
        member=member, template=template, context=message_context(member=member)
    )


# --- consent ---------------------------------------------------------------------------


def test_without_consent_a_marketing_sms_is_suppressed_and_never_sent(member):
    # when
    marketing = queue(member, purpose="marketing")
    transactional = queue(member)

    # then
    marketing.refresh_from_db()
    assert (marketing.status, marketing.status_reason) == (
        "suppressed",
        "no marketing consent for sms",
    )
    assert notification_deliver(notification_id=marketing.pk).status == "suppressed"
    assert notification_deliver(notification_id=transactional.pk).status == "sent"


def test_consent_is_per_channel_and_the_latest_choice_counts(member):
    # given: granted for SMS, then withdrawn; granted for e-mail
    consent_record(member=member, channel="sms", granted=True, source="app")
    consent_record(member=member, channel="sms", granted=False, source="sms-reply")
    consent_record(member=member, channel="email", granted=True, source="website")
    member.email = "wang@example.com"
    member.save()

    # when
    sms = queue(member, purpose="marketing")
    email = queue(member, purpose="marketing", channel="email")

    # then
    assert Notification.objects.get(pk=sms.pk).status == "suppressed"
    assert Notification.objects.get(pk=email.pk).status == "queued"


def test_the_daily_marketing_cap_suppresses_the_rest_of_the_day(member, settings):
    # given
    settings.TIERFLOW_MARKETING_DAILY_CAP = 2
    consent_record(member=member, channel="sms", granted=True, source="app")

    # when: three on one day, one the next
    with time_machine.travel(local(20, 10), tick=False):
        today = [queue(member, purpose="marketing") for _ in range(3)]
        transactional = queue(member)
    with time_machine.travel(local(21, 10), tick=False):
        tomorrow = queue(member, purpose="marketing")

    # then
    statuses = [Notification.objects.get(pk=n.pk).status for n in today]
    assert statuses == ["queued", "queued", "suppressed"]
    assert Notification.objects.get(pk=today[2].pk).status_reason == (
        "daily marketing cap of 2 reached"
    )
    assert Notification.objects.get(pk=transactional.pk).status == "queued"  # never capped
    assert Notification.objects.get(pk=tomorrow.pk).status == "queued"


# --- quiet hours -----------------------------------------------------------------------


@pytest.fixture
def quiet(settings):
    settings.TIERFLOW_QUIET_HOURS = (time(21, 0), time(9, 0))


def test_a_message_at_23_00_goes_out_at_09_00(member, quiet, django_capture_on_commit_callbacks):
    # given: a tier change at 23:00
    with time_machine.travel(local(20, 23), tick=False):
        with django_capture_on_commit_callbacks(execute=True) as published:
            notification = queue(member)
        # then: held, nothing published
        notification.refresh_from_db()
        assert published == []
        assert (notification.status, notification.next_attempt_at) == ("queued", local(21, 9))
        assert notification.status_reason == "held for quiet hours until 09:00"

    # when: a stray delivery task at 23:30, and the sweeper at 08:59
    with time_machine.travel(local(20, 23, 30), tick=False):
        assert notification_deliver(notification_id=notification.pk).status == "queued"
    with time_machine.travel(local(21, 8, 59), tick=False):
        assert notifications_requeue_stuck() == 0

    # then: at 09:00 the sweeper publishes it and it is sent
    with time_machine.travel(local(21, 9), tick=False):
        assert notifications_requeue_stuck() == 1
    notification.refresh_from_db()
    assert notification.status == "sent"
    assert notification.sent_at == local(21, 9)
    assert notification.attempts == 1


@pytest.mark.parametrize(
    ("at", "held_until"),
    [
        (local(20, 20, 59), None),
        (local(20, 21, 0), local(21, 9)),
        (local(21, 0, 30), local(21, 9)),
        (local(21, 8, 59), local(21, 9)),
        (local(21, 9, 0), None),
    ],
)
def test_the_quiet_window_wraps_midnight(member, quiet, at, held_until):
    with time_machine.travel(at, tick=False):
        notification = queue(member)
    assert Notification.objects.get(pk=notification.pk).next_attempt_at == held_until


def test_webhooks_are_never_held(member, quiet, settings):
    settings.TIERFLOW_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    with time_machine.travel(local(20, 23), tick=False):
        notification = queue(member, channel="webhook", body="{}")
    assert Notification.objects.get(pk=notification.pk).next_attempt_at is None


def test_quiet_hours_can_be_switched_off(member, settings):
    settings.TIERFLOW_QUIET_HOURS = None
    with time_machine.travel(local(20, 23), tick=False):
        notification = queue(member)
    assert Notification.objects.get(pk=notification.pk).next_attempt_at is None


# --- languages and length --------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "body_en", "text"),
    [
        ("zh-hans", "Dear {{ member.name }}", "尊敬的王先生"),
        ("en", "Dear {{ member.name }}", "Dear 王先生"),
        ("en", "", "尊敬的王先生"),  # no English body: the Chinese one
    ],
)
def test_the_members_language_picks_the_body(member, language, body_en, text):
    member.language = language
    member.save()
    notification = queue(member, body="尊敬的{{ member.name }}", body_en=body_en)
    assert notification.body == text


def test_an_english_body_with_an_unknown_variable_is_refused():
    from django.core.exceptions import ValidationError

    template = NotificationTemplateFactory.build(body="好", body_en="Hi {{ member.nmae }}")
    with pytest.raises(ValidationError) as error:
        template.full_clean()
    assert "body_en" in error.value.message_dict
    assert "member.nmae" in error.value.message_dict["body_en"][0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", (0, 0)),
        ("a" * 160, (160, 1)),
        ("a" * 161, (161, 2)),
        ("a" * 306, (306, 2)),
        ("a" * 307, (307, 3)),
        ("{}" * 40, (160, 1)),  # extension characters take two places
        ("好" * 70, (70, 1)),
        ("好" * 71, (71, 2)),
        ("好" * 134, (134, 2)),
        ("好" * 135, (135, 3)),
        ("🎉" * 35, (70, 1)),  # an emoji is two UTF-16 units
    ],
)
def test_sms_length_and_parts(text, expected):
    assert sms_segments(text) == expected


# --- delivery reports --------------------------------------------------------------------


def test_a_delivery_report_marks_a_sent_message_delivered_once(member):
    notification = queue(member)
    notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    args = {"provider": "console", "provider_message_id": notification.provider_message_id}

    assert notification_delivery_report(**args, delivered=True) is True
    assert notification_delivery_report(**args, delivered=True) is False  # a replay
    assert notification_delivery_report(**args, delivered=False, reason="x") is False
    notification.refresh_from_db()
    assert notification.status == "delivered"
    assert notification.delivered_at is not None


# --- the API -----------------------------------------------------------------------------


def test_consent_is_recorded_through_the_api_with_its_source(api, member):
    # when
    response = api.post(
        reverse("consent-record", args=["M-1"]),
        {"channel": "sms", "granted": True, "source": "app"},
    )

    # then
    assert response.status_code == 201
    consents = response.json()["consents"]
    assert consents["sms"]["granted"] is True
    assert consents["sms"]["source"] == "app"
    assert api.get("/api/v1/members/M-1/").json()["consents"]["sms"]["granted"] is True


def test_replying_t_opts_out_every_member_with_the_phone(api, member):
    # given
    other = MemberFactory(external_id="M-2", phone="13912345678")
    for each in (member, other):
        consent_record(member=each, channel="sms", granted=True, source="app")

    # when
    response = api.post(
        reverse("consent-opt-out"), {"phone": "139 1234 5678", "source": "sms-reply"}
    )

    # then
    assert response.status_code == 200
    assert response.json() == {"members": 2}
    latest = Consent.objects.filter(member__in=[member, other]).order_by("-id")[:2]
    assert {(c.granted, c.source) for c in latest} == {(False, "sms-reply")}
    marketing = queue(member, purpose="marketing")
    assert Notification.objects.get(pk=marketing.pk).status == "suppressed"


@pytest.mark.parametrize(
    ("payload", "status", "attr"),
    [
        ({"phone": "13700000000"}, 404, None),
        ({"member": "M-404"}, 404, None),
        ({}, 400, "phone"),
        ({"phone": "13912345678", "member": "M-1"}, 400, "phone"),
        ({"phone": "13912345678", "channel": "webhook"}, 400, "channel"),
        ({"phone": "12ab"}, 400, "phone"),
    ],
)
def test_bad_opt_outs_are_refused_and_change_nothing(api, member, payload, status, attr):
    response = api.post(reverse("consent-opt-out"), payload)
    assert response.status_code == status
    if attr:
        assert response.json()["errors"][0]["attr"] == attr
    assert not Consent.objects.exists()


def test_a_member_can_choose_english(api):
    response = api.post(
        "/api/v1/members/", {"external_id": "M-EN", "name": "Ann", "language": "en"}
    )
    assert response.status_code == 201
    assert response.json()["language"] == "en"


# --- the admin ---------------------------------------------------------------------------


def test_the_admin_previews_a_template_for_a_member(admin_client, member):
    # given
    template = NotificationTemplateFactory(body="尊敬的{{ member.name }}，您是{{ tier.name }}")
    url = reverse("admin:notifications_notificationtemplate_preview", args=[template.pk])

    # when
    response = admin_client.get(url, {"member": "M-1"})
    missing = admin_client.get(url, {"member": "M-404"})

    # then
    page = response.content.decode()
    assert "尊敬的王先生，您是银卡会员" in page
    assert "13 characters: 1 SMS" in page
    assert "No member with this external id." in missing.content.decode()


def test_the_template_page_shows_the_sms_length_with_sample_values(admin_client):
    template = NotificationTemplateFactory(body="尊敬的{{ member.name }}" + "好" * 70)
    response = admin_client.get(
        reverse("admin:notifications_notificationtemplate_change", args=[template.pk])
    )
    assert "Chinese: 76 characters, 2 SMS" in response.content.decode()


def test_held_messages_are_not_published_again_before_their_time(member, quiet):
    with time_machine.travel(local(20, 23), tick=False):
        queue(member)
    with time_machine.travel(local(21, 8) + timedelta(minutes=59), tick=False):
        assert notifications_requeue_stuck() == 0
