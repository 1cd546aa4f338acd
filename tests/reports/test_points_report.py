"""The points reports on a ledger that can be counted by hand: the roll-forward by day,
week and month, and the outstanding points by when they lapse. Orders, refunds and
redemptions go through the ERP's API at the moments they happen (time_machine); bonus
lots through the rules' award service; write-offs through the daily job (TIME_ZONE is
Asia/Shanghai)."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from benefits.models import EarningPolicy, PointsEntry
from benefits.selectors import points_balance
from benefits.services.points import earning_policy_update, points_award
from members.models import Member
from rules.services.daily import clock_triggers_run

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(month, day, hour=12, minute=0, year=2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def at(moment: datetime):
    return time_machine.travel(moment, tick=False)


def _member(api, external_id: str) -> None:
    response = api.post(
        "/api/v1/members/",
        {"external_id": external_id, "name": "会员", "joined_at": "2026-03-01T12:00:00+08:00"},
    )
    assert response.status_code == 201, response.json()


def _order(api, external_id: str, member: str, amount: str, placed: datetime) -> None:
    with at(placed):
        response = api.post(
            "/api/v1/orders/",
            {
                "external_id": external_id,
                "member": {"external_id": member},
                "amount": amount,
                "currency": "CNY",
                "placed_at": placed.isoformat(),
            },
        )
    assert response.status_code == 201, response.json()


def _redeem(api, member: str, points: int, key: str, moment: datetime) -> None:
    with at(moment):
        response = api.post(
            f"/api/v1/members/{member}/points/redeem/", {"idempotency_key": key, "points": points}
        )
    assert response.status_code == 201, response.json()


def _refund(api, order: str, amount: str, moment: datetime) -> None:
    with at(moment):
        response = api.post(
            f"/api/v1/orders/{order}/refunds/", {"external_id": f"R-{order}", "amount": amount}
        )
    assert response.status_code == 201, response.json()


def _bonus(member: str, points: int, valid_days: int, moment: datetime) -> None:
    policy = EarningPolicy(points_expiry=EarningPolicy.Expiry.DAYS, points_valid_days=valid_days)
    with at(moment):
        points_award(
            member=Member.objects.get(external_id=member),
            points=points,
            reason="test bonus",
            policy=policy,
            at=moment,
        )


def _daily_job(day: date) -> None:
    with at(datetime(day.year, day.month, day.day, 1, tzinfo=SHANGHAI)):
        clock_triggers_run(day)


@pytest.fixture
def ledger(api):
    """1 point per yuan, lapsing 30 days after the order (at the next midnight).

    wk 30 Mar  Wed 1 Apr   M-1 orders 100: +100, lapsing 2 May
               Thu 2 Apr   M-2 orders 200: +200, lapsing 3 May
    wk 6 Apr   Mon 6 Apr   M-1 redeems 30
               Tue 7 Apr   M-2's order is refunded 50 of 200: -50 reversed
               Wed 8 Apr   points stop lapsing; M-3 orders 50: +50, never lapsing
               Fri 10 Apr  bonuses: M-3 +20 (lapsing 21 Apr), M-2 +40 (10 Jun),
                           M-1 +25 (8 Sep) and +15 (8 Oct), M-3 +5 (16 May 2027)
               Sun 12 Apr  M-3 redeems 10: from the 20 lapsing soonest, not the 50
    21 Apr     the daily job writes off what is left of M-3's 20: 10
    2 May      ... of M-1's 100 (30 spent): 70
    3 May      ... of M-2's 200 (50 reversed): 150
    """
    earning_policy_update(
        points_per_unit=Decimal(1),
        points_expiry=EarningPolicy.Expiry.DAYS,
        points_valid_days=30,
    )
    for member in ("M-1", "M-2", "M-3"):
        _member(api, member)
    _order(api, "SO-1", "M-1", "100.00", local(4, 1, 10))
    _order(api, "SO-2", "M-2", "200.00", local(4, 2, 20))
    _redeem(api, "M-1", 30, "POS-1", local(4, 6, 11))
    _refund(api, "SO-2", "50.00", local(4, 7, 15))
    earning_policy_update(points_expiry=EarningPolicy.Expiry.NEVER)
    _order(api, "SO-3", "M-3", "50.00", local(4, 8, 10))
    _bonus("M-3", 20, 10, local(4, 10))
    _bonus("M-2", 40, 60, local(4, 10))
    _bonus("M-1", 25, 150, local(4, 10))
    _bonus("M-1", 15, 180, local(4, 10))
    _bonus("M-3", 5, 400, local(4, 10))
    _redeem(api, "M-3", 10, "POS-2", local(4, 12, 18))
    for day in (date(2026, 4, 21), date(2026, 5, 2), date(2026, 5, 3)):
        _daily_job(day)
    return api


def _report(api, name: str, **params):
    response = api.get(f"/api/v1/reports/{name}/", params)
    assert response.status_code == 200, response.content
    return response.json()


def _kinds() -> list[tuple[str, int]]:
    return list(PointsEntry.objects.order_by("created_at", "pk").values_list("kind", "points"))


def test_the_ledger_is_what_the_fixture_says(ledger):
    assert _kinds() == [
        ("earn", 100),
        ("earn", 200),
        ("redeem", -30),
        ("reverse", -50),
        ("earn", 50),
        ("bonus", 20),
        ("bonus", 40),
        ("bonus", 25),
        ("bonus", 15),
        ("bonus", 5),
        ("redeem", -10),
        ("expire", -10),
        ("expire", -70),
        ("expire", -150),
    ]


def test_points_by_week(ledger):
    body = _report(
        ledger, "points", **{"from": "2026-03-30", "to": "2026-04-12", "interval": "week"}
    )

    assert body["columns"] == [
        "bucket",
        "opening",
        "issued",
        "redeemed",
        "expired",
        "reversed",
        "closing",
        "closing_value",
    ]
    assert body["rows"] == [
        ["2026-03-30", 0, 300, 0, 0, 0, 300, "3.00"],
        ["2026-04-06", 300, 155, 40, 0, 50, 365, "3.65"],
    ]


def test_points_by_month(ledger):
    body = _report(
        ledger, "points", **{"from": "2026-04-01", "to": "2026-05-31", "interval": "month"}
    )

    assert body["rows"] == [
        ["2026-04-01", 0, 455, 40, 10, 50, 355, "3.55"],
        ["2026-05-01", 355, 0, 0, 220, 0, 135, "1.35"],
    ]


def test_points_by_day_expire_on_the_day_they_lapse(ledger):
    body = _report(ledger, "points", **{"from": "2026-05-01", "to": "2026-05-03"})

    # written off by the daily job as of the midnight that starts the lapse day
    assert body["rows"] == [
        ["2026-05-01", 355, 0, 0, 0, 0, 355, "3.55"],
        ["2026-05-02", 355, 0, 0, 70, 0, 285, "2.85"],
        ["2026-05-03", 285, 0, 0, 150, 0, 135, "1.35"],
    ]


def test_every_day_rolls_forward_to_the_members_balances(ledger):
    body = _report(ledger, "points", **{"from": "2026-03-31", "to": "2026-05-04"})

    rows = body["rows"]
    assert len(rows) == 35
    for before, row in zip([None, *rows], rows, strict=False):
        _, opening, issued, redeemed, expired, reversed_, closing, _value = row
        assert opening + issued - redeemed - expired - reversed_ == closing
        assert opening == (before[6] if before else 0)
    assert [row[0] for row in rows if row[2]] == [
        "2026-04-01",
        "2026-04-02",
        "2026-04-08",
        "2026-04-10",
    ]
    assert [row[0] for row in rows if row[5]] == ["2026-04-07"]
    with at(local(5, 5)):
        balances = sum(points_balance(member_id=m.pk) for m in Member.objects.all())
    assert rows[-1][6] == balances == 135


def test_a_partial_first_week_opens_with_the_balance_at_the_periods_start(ledger, settings):
    settings.TIERFLOW_POINT_VALUE = Decimal("0.05")

    body = _report(
        ledger, "points", **{"from": "2026-04-08", "to": "2026-04-14", "interval": "week"}
    )

    # the week of 6 April counts only from Wednesday 8 April
    assert body["rows"] == [
        ["2026-04-06", 220, 155, 10, 0, 0, 365, "18.25"],
        ["2026-04-13", 365, 0, 0, 0, 0, 365, "18.25"],
    ]


def test_points_aging_by_when_the_points_lapse(ledger):
    body = _report(ledger, "points-aging", **{"from": "2026-04-01", "to": "2026-04-15"})

    assert body["columns"] == ["expires_in", "points", "value", "members"]
    assert body["rows"] == [
        ["this_month", 10, "0.10", 1],  # M-3's 20 lapsing 21 April, 10 of them spent
        ["next_month", 220, "2.20", 2],  # M-1's 70 and M-2's 150 lapsing 2 and 3 May
        ["within_3_months", 40, "0.40", 1],  # June
        ["within_6_months", 25, "0.25", 1],  # September
        ["within_12_months", 15, "0.15", 1],  # October
        ["later", 5, "0.05", 1],
        ["never", 50, "0.50", 1],
    ]
    weekly = _report(
        ledger, "points", **{"from": "2026-04-13", "to": "2026-04-15", "interval": "week"}
    )
    assert sum(row[1] for row in body["rows"]) == weekly["rows"][-1][6] == 365


@pytest.mark.parametrize(
    ("to", "rows"),
    [
        (
            "2026-05-01",  # the lots lapsing tomorrow and the day after lapse this month
            [220, 40, 0, 40, 0, 5, 50],
        ),
        (
            "2026-05-02",  # M-1's lot was written off at midnight
            [150, 40, 0, 40, 0, 5, 50],
        ),
        (
            "2026-05-03",  # and M-2's
            [0, 40, 0, 40, 0, 5, 50],
        ),
    ],
)
def test_points_aging_adds_up_to_the_balances_at_the_end_of_the_to_date(ledger, to, rows):
    body = _report(ledger, "points-aging", **{"from": "2026-04-01", "to": to})
    daily = _report(ledger, "points", **{"from": to, "to": to})

    assert [row[1] for row in body["rows"]] == rows
    assert sum(rows) == daily["rows"][0][6]
    members = {row[0]: row[3] for row in body["rows"]}
    assert (members["within_6_months"], members["later"], members["never"]) == (1, 1, 1)


def test_reports_on_an_empty_ledger_are_zeros(api):
    points = _report(api, "points", **{"from": "2026-04-01", "to": "2026-04-02"})
    aging = _report(api, "points-aging", **{"from": "2026-04-01", "to": "2026-04-02"})

    assert points["rows"] == [
        ["2026-04-01", 0, 0, 0, 0, 0, 0, "0.00"],
        ["2026-04-02", 0, 0, 0, 0, 0, 0, "0.00"],
    ]
    assert [row[1:] for row in aging["rows"]] == [[0, "0.00", 0]] * 7
