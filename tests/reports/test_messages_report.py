"""The messages report on an outbox that can be counted by hand: a rule thanks every
order by SMS and e-mail; orders come through the ERP's API at chosen times (TIME_ZONE is
Asia/Shanghai, quiet hours 21:00-09:00) and the providers' outcomes are recorded as
their delivery reports would record them."""

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest
import time_machine

from notifications.models import Notification
from notifications.services.delivery import notification_delivery_report
from reports.definitions.activity import MESSAGE_COLUMNS, STATUS_COLUMN
from rules.programme.load import programme_load

SHANGHAI = ZoneInfo("Asia/Shanghai")

PROGRAMME = """
notification_templates:
  - {code: thanks-sms, channel: sms, body: "谢谢惠顾，{{ member.name }}"}
  - {code: thanks-email, channel: email, body: "Thank you, {{ member.name }}"}
rules:
  - code: thank-you
    name: Thank every order
    trigger: order_paid
    fires: every_time
    actions:
      - {type: notify, template: thanks-sms}
      - {type: notify, template: thanks-email}
"""

M1 = {"external_id": "M-1", "name": "王先生", "phone": "13800138001", "email": "wang@example.com"}
M2 = {"external_id": "M-2", "name": "李女士", "phone": "13800138002"}  # no e-mail address


def _order(api, external_id: str, member: dict, at: datetime) -> dict[str, Notification]:
    """The order, posted at `at`; its two messages by channel."""
    with time_machine.travel(at, tick=False):
        response = api.post(
            "/api/v1/orders/",
            {
                "external_id": external_id,
                "member": member,
                "amount": "100.00",
                "currency": "CNY",
                "placed_at": at.isoformat(),
            },
        )
    assert response.status_code == 201, response.json()
    messages = Notification.objects.filter(firing__order__external_id=external_id)
    return {message.channel: message for message in messages}


def _report(api, **params) -> list[list]:
    response = api.get("/api/v1/reports/messages/", params)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["columns"] == [
        "bucket",
        "channel",
        "queued",
        "sent",
        "delivered",
        "failed",
        "suppressed",
    ]
    return body["rows"]


def _reported(message: Notification, *, delivered: bool) -> None:
    message.refresh_from_db()
    assert message.status == "sent"
    assert notification_delivery_report(
        provider=message.provider,
        provider_message_id=message.provider_message_id,
        delivered=delivered,
        reason="" if delivered else "unknown subscriber",
    )


@pytest.fixture
def outbox(api, settings):
    """- Wed 1 April 10:00, M-1: SMS sent and then reported delivered; e-mail sent.
    - Wed 1 April 11:00, M-2: SMS sent and then reported undeliverable; e-mail
      suppressed (M-2 has no address).
    - Thu 2 April 23:30, M-1: both held for quiet hours; a worker then claimed the
      e-mail and died (left "sending").
    - Mon 6 April 07:30 (23:30 on Sunday 5 April in UTC), M-2: both held.
    - Tue 14 April 10:00, M-1: both sent."""
    settings.TIERFLOW_QUIET_HOURS = (time(21, 0), time(9, 0))
    programme_load(PROGRAMME)
    first = _order(api, "SO-1", M1, datetime(2026, 4, 1, 10, 0, tzinfo=SHANGHAI))
    second = _order(api, "SO-2", M2, datetime(2026, 4, 1, 11, 0, tzinfo=SHANGHAI))
    night = _order(api, "SO-3", M1, datetime(2026, 4, 2, 23, 30, tzinfo=SHANGHAI))
    _order(api, "SO-4", M2, datetime(2026, 4, 6, 7, 30, tzinfo=SHANGHAI))
    _order(api, "SO-5", M1, datetime(2026, 4, 14, 10, 0, tzinfo=SHANGHAI))
    _reported(first["sms"], delivered=True)
    _reported(second["sms"], delivered=False)
    Notification.objects.filter(pk=night["email"].pk).update(status="sending")
    statuses = sorted(Notification.objects.values_list("channel", "status"))
    assert statuses == sorted(
        [
            ("sms", "delivered"),
            ("email", "sent"),
            ("sms", "failed"),
            ("email", "suppressed"),
            ("sms", "queued"),
            ("email", "sending"),
            ("sms", "queued"),
            ("email", "queued"),
            ("sms", "sent"),
            ("email", "sent"),
        ]
    )
    return api


def test_messages_by_day_per_channel_by_where_they_stand(outbox):
    rows = _report(outbox, **{"from": "2026-04-01", "to": "2026-04-06"})

    # no rows for the days without messages; a message being sent is not sent yet; the
    # messages of 07:30 on 6 April are on 6 April, not on the UTC date
    assert rows == [
        ["2026-04-01", "email", 0, 1, 0, 0, 1],
        ["2026-04-01", "sms", 0, 0, 1, 1, 0],
        ["2026-04-02", "email", 1, 0, 0, 0, 0],
        ["2026-04-02", "sms", 1, 0, 0, 0, 0],
        ["2026-04-06", "email", 1, 0, 0, 0, 0],
        ["2026-04-06", "sms", 1, 0, 0, 0, 0],
    ]


def test_messages_by_week(outbox):
    rows = _report(outbox, **{"from": "2026-03-30", "to": "2026-04-12", "interval": "week"})

    assert rows == [
        ["2026-03-30", "email", 1, 1, 0, 0, 1],
        ["2026-03-30", "sms", 1, 0, 1, 1, 0],
        ["2026-04-06", "email", 1, 0, 0, 0, 0],
        ["2026-04-06", "sms", 1, 0, 0, 0, 0],
    ]


def test_messages_by_month(outbox):
    rows = _report(outbox, **{"from": "2026-04-01", "to": "2026-04-30", "interval": "month"})

    assert rows == [
        ["2026-04-01", "email", 2, 2, 0, 0, 1],
        ["2026-04-01", "sms", 2, 1, 1, 1, 0],
    ]


def test_a_period_without_messages_has_no_rows(outbox):
    assert _report(outbox, **{"from": "2026-04-03", "to": "2026-04-05"}) == []


def test_every_status_of_the_outbox_is_counted_in_one_column():
    assert set(STATUS_COLUMN) == set(Notification.Status.values)
    assert set(STATUS_COLUMN.values()) == set(MESSAGE_COLUMNS)
