"""The coupons report on coupons that can be counted by hand, and what it reads from the
coupons: when one was voided and what it took off at the till. Orders, refunds and
redemptions go through the API at the moments they happen (time_machine); coupons are
issued by a rule or by the issue service (TIME_ZONE is Asia/Shanghai)."""

import importlib
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.apps import apps

from benefits.models import Coupon, Discount, Stacking
from benefits.services.coupons import coupon_issue
from members.models import Member
from tests.factories import CouponTemplateFactory, MemberFactory, RuleFactory, TierFactory, action

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(month, day, hour=12, minute=0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


def at(moment: datetime):
    return time_machine.travel(moment, tick=False)


def _issue(member: str, template, moment: datetime) -> Coupon:
    with at(moment):
        return coupon_issue(member=Member.objects.get(external_id=member), template=template)


def _redeem(api, coupon: Coupon, order: str, moment: datetime, **fields):
    with at(moment):
        response = api.post(
            f"/api/v1/coupons/{coupon.code}/redeem/",
            {"member": coupon.member.external_id, "order": order, **fields},
        )
    assert response.status_code == 201, response.json()
    coupon.refresh_from_db()
    return coupon


LATER = local(5, 1)  # when the reports are asked for, unless a test says otherwise


def _report(api, name: str, moment: datetime = LATER, **params):
    with at(moment):
        response = api.get(f"/api/v1/reports/{name}/", params)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def gift():
    """满300减50, valid for 15 days."""
    return CouponTemplateFactory(code="gift-50")


@pytest.fixture
def percent():
    """10% off, at most 30, valid for 10 days."""
    return CouponTemplateFactory(
        code="pct-10",
        name="九折",
        discount=Discount.PERCENT,
        min_spend=Decimal(0),
        amount_off=None,
        percent_off=Decimal(10),
        max_discount=Decimal(30),
        valid_days=10,
    )


@pytest.fixture
def coupons(api, gift, percent):
    """wk 30 Mar  Wed 1 Apr 10:00  M-1's order SO-1: a rule gives M-1 gift C1
                 Wed 1 Apr 12:00  percent P1 to M-2 (Silver, 10% off), P2 to M-3:
                                  both expire at 12:00 on 11 April
                 Thu 2 Apr 09:00  gift C2 to M-2, C3 to M-3: expire 09:00 on 17 April
                 Fri 3 Apr 15:00  SO-1 refunded in full: C1 is voided
    wk 6 Apr    Mon 6 Apr 00:10  C2 used on 320 (288 after Silver's 10%): 50 off
                 Mon 6 Apr 10:00  P1 used on 200 (180 after Silver's 10%): 18 off
                 Tue 7 Apr        C3 used on an order, then given back
                 Sat 11 Apr 12:00 P2 expires unused
    wk 13 Apr   Fri 17 Apr 09:00 C3 expires unused"""
    rule = RuleFactory(code="order-gift", firing_limit="every_time")
    action(rule, "issue_coupon", coupon_template=gift)
    with at(local(3, 1)):  # members whose joining is evaluated before their orders
        MemberFactory(external_id="M-1")
        MemberFactory(external_id="M-2", tier=TierFactory(code="silver", discount_percent=10))
        MemberFactory(external_id="M-3")
    with at(local(4, 1, 10)):
        assert (
            api.order(external_id="SO-1", placed_at=local(4, 1, 10).isoformat()).status_code == 201
        )
    [c1] = Coupon.objects.filter(member__external_id="M-1")
    p1 = _issue("M-2", percent, local(4, 1, 12))
    p2 = _issue("M-3", percent, local(4, 1, 12))
    c2 = _issue("M-2", gift, local(4, 2, 9))
    c3 = _issue("M-3", gift, local(4, 2, 9))
    with at(local(4, 3, 15)):
        refund = api.post(
            "/api/v1/orders/SO-1/refunds/", {"external_id": "R-1", "amount": "100.00"}
        )
    assert refund.status_code == 201, refund.json()
    _redeem(api, c2, "SO-20", local(4, 6, 0, 10), amount="320.00")
    _redeem(api, p1, "SO-21", local(4, 6, 10), amount="200.00")
    _redeem(api, c3, "SO-22", local(4, 7, 11), amount="300.00")
    with at(local(4, 7, 11, 30)):
        released = api.post(f"/api/v1/coupons/{c3.code}/release/", {"order": "SO-22"})
    assert released.status_code == 200, released.json()
    return {"c1": c1, "c2": c2, "c3": c3, "p1": p1, "p2": p2}


def _state(coupon: Coupon) -> tuple:
    coupon.refresh_from_db()
    return coupon.status, coupon.voided_at, coupon.discount_given


def test_the_coupons_record_when_they_were_voided_and_what_they_took_off(coupons):
    assert _state(coupons["c1"]) == ("void", local(4, 3, 15), None)
    assert _state(coupons["c2"]) == ("redeemed", None, Decimal("50.00"))
    assert _state(coupons["p1"]) == ("redeemed", None, Decimal("18.00"))
    assert _state(coupons["c3"]) == ("issued", None, None)  # given back
    assert _state(coupons["p2"]) == ("issued", None, None)


def test_coupons_by_week(api, coupons):
    body = _report(api, "coupons", **{"from": "2026-03-30", "to": "2026-04-19", "interval": "week"})

    assert body["columns"] == [
        "bucket",
        "template",
        "issued",
        "redeemed",
        "expired",
        "voided",
        "discount_given",
    ]
    assert body["rows"] == [
        ["2026-03-30", "gift-50", 3, 0, 0, 1, "0.00"],
        ["2026-03-30", "pct-10", 2, 0, 0, 0, "0.00"],
        ["2026-04-06", "gift-50", 0, 1, 0, 0, "50.00"],
        ["2026-04-06", "pct-10", 0, 1, 1, 0, "18.00"],
        ["2026-04-13", "gift-50", 0, 0, 1, 0, "0.00"],
        ["2026-04-13", "pct-10", 0, 0, 0, 0, "0.00"],
    ]


def test_coupons_by_day_use_business_dates(api, coupons):
    body = _report(api, "coupons", **{"from": "2026-04-05", "to": "2026-04-06"})

    # C2 was used 10 minutes after midnight in Shanghai, on 5 April in UTC
    assert body["rows"] == [
        ["2026-04-05", "gift-50", 0, 0, 0, 0, "0.00"],
        ["2026-04-05", "pct-10", 0, 0, 0, 0, "0.00"],
        ["2026-04-06", "gift-50", 0, 1, 0, 0, "50.00"],
        ["2026-04-06", "pct-10", 0, 1, 0, 0, "18.00"],
    ]


def test_coupons_by_month_count_only_expiries_that_have_passed(api, coupons):
    params = {"from": "2026-04-01", "to": "2026-04-30", "interval": "month"}

    later = _report(api, "coupons", **params)
    on_12_april = _report(api, "coupons", local(4, 12), **params)

    assert later["rows"] == [
        ["2026-04-01", "gift-50", 3, 1, 1, 1, "50.00"],
        ["2026-04-01", "pct-10", 2, 1, 1, 0, "18.00"],
    ]
    # on 12 April, C3 is still good until the 17th
    assert on_12_april["rows"] == [
        ["2026-04-01", "gift-50", 3, 1, 0, 1, "50.00"],
        ["2026-04-01", "pct-10", 2, 1, 1, 0, "18.00"],
    ]


def test_a_period_without_coupon_activity_has_no_rows(api, coupons):
    body = _report(api, "coupons", **{"from": "2026-05-01", "to": "2026-05-31"})

    assert body["rows"] == []


def test_stacked_coupons_never_take_off_more_than_is_left_to_pay(api):
    # given: two stackable 50-off coupons with no minimum spend, and a 10% one
    stackable = CouponTemplateFactory(
        code="stack-50", min_spend=Decimal(0), stacking=Stacking.STACKABLE
    )
    MemberFactory(external_id="M-4")
    first = _issue("M-4", stackable, local(4, 1))
    second = _issue("M-4", stackable, local(4, 1))
    third = _issue("M-4", stackable, local(4, 1))
    percent = CouponTemplateFactory(
        code="pct-5",
        discount=Discount.PERCENT,
        min_spend=Decimal(0),
        amount_off=None,
        percent_off=Decimal(5),
    )
    fourth = _issue("M-4", percent, local(4, 1))

    # when: both used on a basket of 60; a third without the basket's amount
    _redeem(api, first, "SO-30", local(4, 2, 10), amount="60.00")
    _redeem(api, second, "SO-30", local(4, 2, 10, 1), amount="60.00")
    _redeem(api, third, "SO-31", local(4, 2, 11))
    _redeem(api, fourth, "SO-32", local(4, 2, 12))

    # then
    assert [c.discount_given for c in (first, second, third, fourth)] == [
        Decimal("50.00"),
        Decimal("10.00"),
        Decimal("50.00"),  # an amount coupon takes its amount
        None,  # a percentage of an amount not given is unknown
    ]
    body = _report(api, "coupons", **{"from": "2026-04-02", "to": "2026-04-02"})
    assert body["rows"] == [
        ["2026-04-02", "pct-5", 0, 1, 0, 0, "0.00"],
        ["2026-04-02", "stack-50", 0, 3, 0, 0, "110.00"],
    ]


def test_the_migration_derives_voided_at_from_the_refund_and_amount_coupons_discount(
    coupons,
):
    # given: the rows as they were before the fields existed
    Coupon.objects.update(voided_at=None, discount_given=None)
    migration = importlib.import_module("benefits.migrations.0006_coupon_report_fields")

    # when
    migration.derive(apps, None)

    # then: the gift coupon used takes its 50; the percentage one's share is unknown
    assert _state(coupons["c1"]) == ("void", local(4, 3, 15), None)
    assert _state(coupons["c2"]) == ("redeemed", None, Decimal("50.00"))
    assert _state(coupons["p1"]) == ("redeemed", None, None)
    assert _state(coupons["c3"]) == ("issued", None, None)
