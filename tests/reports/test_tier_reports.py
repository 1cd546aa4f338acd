"""Tier distribution, movements and spend by tier, on a programme and a shop small enough
to count by hand, built through the API with back-dated joins, orders and refunds, a
change by hand and a lapse by the daily job (TIME_ZONE is Asia/Shanghai)."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth import get_user_model

from members.models import Member, Tier
from members.services import member_set_tier_by_hand
from rules.programme.load import programme_load
from rules.services.daily import clock_triggers_run
from tests.helpers import TIER_REPORTS_PROGRAMME

SHANGHAI = ZoneInfo("Asia/Shanghai")
PROGRAMME = TIER_REPORTS_PROGRAMME


def _at(text: str) -> str:
    return f"{text}+08:00"


@pytest.fixture
def shop(api):
    """A: joins 1 March; 500 on 5 March, 600 on 10 March (lifetime 1100: Silver by the
    rule), 200 on 20 March as Silver; Silver lapses at midnight on 10 April (800 spent in
    its period, short of 1000). B: joins 2 March; 1200 on 6 March (Silver), refunded in
    full on 15 March (back to Regular); 300 on 25 March. C: joins 3 March; moved to Gold
    by hand on 1 May."""
    programme_load(PROGRAMME)
    with time_machine.travel(datetime(2026, 5, 1, 12, tzinfo=SHANGHAI), tick=False):
        for external_id, day in (("A", "01"), ("B", "02"), ("C", "03")):
            response = api.post(
                "/api/v1/members/",
                {
                    "external_id": external_id,
                    "name": external_id,
                    "joined_at": _at(f"2026-03-{day}T10:00:00"),
                },
            )
            assert response.status_code == 201, response.json()
        for external_id, member, amount, day in (
            ("A1", "A", "500.00", "05"),
            ("B1", "B", "1200.00", "06"),
            ("A2", "A", "600.00", "10"),
            ("A3", "A", "200.00", "20"),
        ):
            response = api.order(
                external_id=external_id,
                member={"external_id": member},
                amount=amount,
                placed_at=_at(f"2026-03-{day}T10:00:00"),
            )
            assert response.status_code == 201, response.json()
        response = api.post(
            "/api/v1/orders/B1/refunds/",
            {"external_id": "R1", "amount": "1200.00", "refunded_at": _at("2026-03-15T10:00:00")},
        )
        assert response.status_code == 201, response.json()
        response = api.order(
            external_id="B2",
            member={"external_id": "B"},
            amount="300.00",
            placed_at=_at("2026-03-25T10:00:00"),
        )
        assert response.status_code == 201, response.json()
        clock_triggers_run(date(2026, 4, 10))
        operator = get_user_model().objects.create_user("operator")
        member_set_tier_by_hand(
            member_id=Member.objects.get(external_id="C").pk,
            tier=Tier.objects.get(code="gold"),
            reason="VIP",
            changed_by=operator,
        )
    return api


def _rows(api, name, start, end, interval):
    response = api.get(f"/api/v1/reports/{name}/", {"from": start, "to": end, "interval": interval})
    assert response.status_code == 200, response.content
    return response.json()


def test_the_tiers_members_held_at_the_end_of_each_month(shop):
    body = _rows(shop, "tier-distribution", "2026-03-01", "2026-05-31", "month")

    assert body["columns"] == ["bucket", "regular", "silver", "gold"]
    assert body["rows"] == [
        ["2026-03-01", 2, 1, 0],  # A on Silver; B back on Regular after the refund
        ["2026-04-01", 3, 0, 0],  # A's Silver lapsed
        ["2026-05-01", 2, 0, 1],  # C on Gold by hand
    ]


def test_the_distribution_by_day_follows_the_history(shop):
    body = _rows(shop, "tier-distribution", "2026-02-28", "2026-03-06", "day")

    assert [row[1:] for row in body["rows"]] == [
        [0, 0, 0],  # nobody had joined
        [1, 0, 0],
        [2, 0, 0],
        [3, 0, 0],
        [3, 0, 0],
        [3, 0, 0],
        [2, 1, 0],  # B's 1200 on 6 March
    ]


def test_movements_by_cause(shop):
    body = _rows(shop, "tier-movements", "2026-03-01", "2026-05-31", "month")

    assert body["columns"] == ["bucket", "from_tier", "to_tier", "move", "cause", "members"]
    assert body["rows"] == [
        ["2026-03-01", "regular", "silver", "upgrade", "silver-at-1000", 2],
        ["2026-03-01", "silver", "regular", "downgrade", "refund", 1],
        ["2026-04-01", "silver", "regular", "downgrade", "lapse", 1],
        ["2026-05-01", "regular", "gold", "upgrade", "manual", 1],
    ]


def test_spend_by_the_tier_held_when_each_order_was_placed(shop):
    body = _rows(shop, "spend-by-tier", "2026-03-01", "2026-04-30", "month")

    assert body["columns"] == ["bucket", "tier", "orders", "buyers", "spend", "refunds", "aov"]
    # A's 600 that made them Silver was placed as Regular; their 200 after it as Silver.
    # B's 1200 was placed as Regular, so its refund counts against Regular.
    assert body["rows"] == [
        ["2026-03-01", "regular", 4, 2, "2600.00", "1200.00", "650.00"],
        ["2026-03-01", "silver", 1, 1, "200.00", "0.00", "200.00"],
    ]
