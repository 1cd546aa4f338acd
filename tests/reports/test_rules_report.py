"""The rules report on firings that can be counted by hand: a small programme of three
rules, orders through the ERP's API at chosen times (TIME_ZONE is Asia/Shanghai)."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from benefits.models import Coupon, PointsEntry
from rules.programme.load import programme_load

SHANGHAI = ZoneInfo("Asia/Shanghai")

# big-order: a 10% coupon capped at 30 (worth 30.00) and 100 points, on orders of 500 or
# more; every-order: a 5-off coupon (5.00), an uncapped 5% coupon (worth 0) and 10
# points; first-order: 5 points, once per member.
PROGRAMME = """
earning: {points_per_unit: 0, growth_per_unit: 0, points_expiry: never}
coupon_templates:
  - {code: ten-percent, name: 九折券, discount: percent, percent_off: 10, max_discount: 30,
     valid_days: 15}
  - {code: five-off, name: 立减5元, min_spend: 0, amount_off: 5, valid_days: 15}
  - {code: five-percent, name: 九五折券, discount: percent, percent_off: 5, valid_days: 15}
rules:
  - code: big-order
    name: Big order
    trigger: order_paid
    fires: every_time
    conditions: {fact: order_amount, op: gte, value: 500}
    actions:
      - {type: issue_coupon, template: ten-percent}
      - {type: award_points, points: 100}
  - code: every-order
    name: Every order
    trigger: order_paid
    fires: every_time
    actions:
      - {type: issue_coupon, template: five-off}
      - {type: issue_coupon, template: five-percent}
      - {type: award_points, points: 10}
  - code: first-order
    name: First order
    trigger: order_paid
    fires: once
    actions:
      - {type: award_points, points: 5}
"""


def _post(api, path: str, payload: dict, at: datetime) -> None:
    with time_machine.travel(at, tick=False):
        response = api.post(path, payload)
    assert response.status_code == 201, response.json()


def _order(api, external_id: str, member: str, amount: str, at: datetime) -> None:
    payload = {
        "external_id": external_id,
        "member": {"external_id": member, "name": "会员"},
        "amount": amount,
        "currency": "CNY",
        "placed_at": at.isoformat(),
    }
    _post(api, "/api/v1/orders/", payload, at)


def _report(api, **params) -> list[list]:
    response = api.get("/api/v1/reports/rules/", params)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["columns"] == ["bucket", "rule", "firings", "members", "coupon_value", "points"]
    return body["rows"]


@pytest.fixture
def firings(api):
    """- Wed 1 April 10:00, M-1 spends 600: big-order, every-order, first-order.
    - Wed 1 April 18:00, M-1 spends 100: every-order.
    - Thu 2 April 12:00, M-2 spends 800: big-order, every-order, first-order; refunded in
      full on 3 April, which takes the points back and voids the coupons.
    - Mon 6 April 00:10 (16:10 on Sunday 5 April in UTC), M-2 spends 100: every-order.
    - Tue 14 April 10:00, M-1 spends 100: every-order."""
    programme_load(PROGRAMME)
    _order(api, "SO-1", "M-1", "600.00", datetime(2026, 4, 1, 10, 0, tzinfo=SHANGHAI))
    _order(api, "SO-2", "M-1", "100.00", datetime(2026, 4, 1, 18, 0, tzinfo=SHANGHAI))
    _order(api, "SO-3", "M-2", "800.00", datetime(2026, 4, 2, 12, 0, tzinfo=SHANGHAI))
    refunded = datetime(2026, 4, 3, 9, 0, tzinfo=SHANGHAI)
    _post(
        api,
        "/api/v1/orders/SO-3/refunds/",
        {"external_id": "RF-1", "amount": "800.00", "refunded_at": refunded.isoformat()},
        refunded,
    )
    _order(api, "SO-4", "M-2", "100.00", datetime(2026, 4, 6, 0, 10, tzinfo=SHANGHAI))
    _order(api, "SO-5", "M-1", "100.00", datetime(2026, 4, 14, 10, 0, tzinfo=SHANGHAI))
    # the refund took back what SO-3's firings gave, and those reversals name the firings
    reversed_ = PointsEntry.objects.filter(kind="reverse", firing__order__external_id="SO-3")
    assert sorted(reversed_.values_list("points", flat=True)) == [-100, -10, -5]
    voided = Coupon.objects.filter(firing__order__external_id="SO-3", status="void")
    assert voided.count() == 3
    return api


def test_rules_by_day(firings):
    rows = _report(firings, **{"from": "2026-04-01", "to": "2026-04-06"})

    # SO-3's coupons and points count as given, though its refund took them back; the
    # order at 00:10 on 6 April is on 6 April, not on the UTC date
    assert rows == [
        ["2026-04-01", "big-order", 1, 1, "30.00", 100],
        ["2026-04-01", "every-order", 2, 1, "10.00", 20],
        ["2026-04-01", "first-order", 1, 1, "0.00", 5],
        ["2026-04-02", "big-order", 1, 1, "30.00", 100],
        ["2026-04-02", "every-order", 1, 1, "5.00", 10],
        ["2026-04-02", "first-order", 1, 1, "0.00", 5],
        ["2026-04-06", "every-order", 1, 1, "5.00", 10],
    ]


def test_rules_by_week(firings):
    rows = _report(firings, **{"from": "2026-03-30", "to": "2026-04-12", "interval": "week"})

    assert rows == [
        ["2026-03-30", "big-order", 2, 2, "60.00", 200],
        ["2026-03-30", "every-order", 3, 2, "15.00", 30],
        ["2026-03-30", "first-order", 2, 2, "0.00", 10],
        ["2026-04-06", "every-order", 1, 1, "5.00", 10],
    ]


def test_rules_by_month(firings):
    rows = _report(firings, **{"from": "2026-04-01", "to": "2026-04-30", "interval": "month"})

    assert rows == [
        ["2026-04-01", "big-order", 2, 2, "60.00", 200],
        ["2026-04-01", "every-order", 5, 2, "25.00", 50],
        ["2026-04-01", "first-order", 2, 2, "0.00", 10],
    ]


def test_a_period_without_firings_has_no_rows(firings):
    assert _report(firings, **{"from": "2026-04-03", "to": "2026-04-05"}) == []


def test_csv_holds_money_at_two_places(firings):
    response = firings.get(
        "/api/v1/reports/rules/", {"from": "2026-04-06", "to": "2026-04-06", "format": "csv"}
    )

    text = b"".join(response.streaming_content).decode("utf-8")
    assert text == (
        "\ufeffbucket,rule,firings,members,coupon_value,points\r\n"
        "2026-04-06,every-order,1,1,5.00,10\r\n"
    )
