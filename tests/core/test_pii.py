import logging
import sys

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from config.celery import app as celery_app
from core.pii import RedactPiiFilter, mask_email, mask_name, mask_phone
from members.models import Member
from notifications.models import Notification
from tests.factories import NotificationTemplateFactory, RuleFactory, action, condition


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13800138000", "138****8000"),
        ("+8613800138000", "138****8000"),  # the default country's, as read there
        ("+85291234567", "+852 912*4567"),
        ("12345", "***45"),
        ("", ""),
    ],
)
def test_mask_phone(phone, masked):
    assert mask_phone(phone) == masked


def test_mask_email_and_name():
    assert mask_email("wang@example.com") == "w***@example.com"
    assert mask_name("王小明") == "王**"


def test_the_log_filter_masks_phone_numbers_and_emails_in_any_record():
    # given
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "call %s or mail %s", ("13800138000", "a@b.cn"), None
    )

    # when
    RedactPiiFilter().filter(record)

    # then
    assert record.getMessage() == "call 138****8000 or mail a***@b.cn"


def test_exception_text_in_logs_is_redacted_too():
    # given
    try:
        raise ValueError("bad phone 13800138000")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), None)
        record.exc_info = sys.exc_info()

    # when
    RedactPiiFilter().filter(record)

    # then
    assert "13800138000" not in logging.Formatter().format(record)
    assert "138****8000" in logging.Formatter().format(record)


def test_workers_keep_the_projects_logging_and_its_filter():
    assert celery_app.conf.worker_hijack_root_logger is False


@pytest.mark.django_db
def test_message_text_is_masked_for_staff_without_the_permission(client, api):
    # given: a message naming the member, sent by a rule the order sets off
    rule = RuleFactory(firing_limit="every_time")
    condition(rule, "lifetime_spend", "gte", 2000)
    message = NotificationTemplateFactory(body="尊敬的{{ member.name }}，感谢您的惠顾！")
    action(rule, "notify", notification_template=message)
    api.order(amount="2500.00")
    user = User.objects.create_user("clerk", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_member", "view_notification", "view_rulefiring"]
        )
    )
    client.force_login(user)
    notification = Notification.objects.get()
    member = Member.objects.get()

    # when
    pages = [
        client.get(reverse("admin:members_member_change", args=[member.pk])),
        client.get(reverse("admin:notifications_notification_change", args=[notification.pk])),
        client.get(reverse("admin:rules_rulefiring_change", args=[notification.firing_id])),
    ]

    # then
    for page in pages:
        assert page.status_code == 200
        text = page.content.decode()
        assert "王先生" not in text
        assert "王**" in text
