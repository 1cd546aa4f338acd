"""The roll-up: every report reads the same figures from it as it counts from the raw
rows, right after a roll-up and with rows recorded since (back-dated orders, refunds, a
new member, tier changes, points spent), and `reports_verify` finds a figure that drifted
(TIME_ZONE is Asia/Shanghai)."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import F
from django.utils import timezone

from benefits.models import EarningPolicy
from benefits.services.points import earning_policy_update
from members.models import Member, Tier
from members.services import member_set_tier_by_hand
from reports import figures
from reports.models import (
    BuyerFigure,
    CohortFigure,
    PointsDay,
    PointsLotLeft,
    RollupMark,
    RuleFigure,
    TierDelta,
)
from reports.periods import Period
from reports.registry import REPORTS
from reports.rollup import reports_rollup
from reports.tables import report_table
from reports.verify import reports_verify
from rules.programme.load import programme_load
from rules.services.daily import clock_triggers_run
from tests.helpers import TIER_REPORTS_PROGRAMME

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
PROGRAMME = "earning: {points_per_unit: 1, growth_per_unit: 0}\n" + TIER_REPORTS_PROGRAMME
PERIODS = [
    Period(date(2026, 1, 1), date(2026, 12, 31), "day"),
    Period(date(2026, 1, 1), date(2026, 12, 31), "week"),
    Period(date(2026, 1, 1), date(2026, 12, 31), "month"),
    Period(date(2026, 3, 4), date(2026, 4, 15), "week"),  # partial buckets at both ends
    Period(date(2026, 3, 12), date(2026, 5, 20), "month"),
    Period(date(2026, 4, 1), date(2026, 12, 31), "month"),  # starts after E's move, before E joined
]
FIGURES = (BuyerFigure, CohortFigure, PointsDay, PointsLotLeft, RuleFigure, TierDelta)
NOW = lambda: timedelta(0)  # noqa: E731 - the roll-up's lag: nothing is being written


def _member(api, external_id: str, joined: str) -> None:
    response = api.post(
        "/api/v1/members/",
        {"external_id": external_id, "name": external_id, "joined_at": f"{joined}+08:00"},
    )
    assert response.status_code == 201, response.json()


def _order(api, external_id: str, member: str, amount: str, placed: str) -> None:
    response = api.order(
        external_id=external_id,
        member={"external_id": member},
        amount=amount,
        placed_at=f"{placed}+08:00",
    )
    assert response.status_code == 201, response.json()


def _refund(api, order: str, external_id: str, amount: str, at: str) -> None:
    response = api.post(
        f"/api/v1/orders/{order}/refunds/",
        {"external_id": external_id, "amount": amount, "refunded_at": f"{at}+08:00"},
    )
    assert response.status_code == 201, response.json()


def _tables() -> dict:
    return {
        (name, period): report_table(report, period)[1]
        for name, report in REPORTS.items()
        for period in PERIODS
    }


def _raw_tables(monkeypatch) -> dict:
    """The tables as the raw rows give them, the roll-up ignored."""
    with monkeypatch.context() as patch:
        patch.setattr(figures, "rollup_mark", lambda: None)
        return _tables()


@pytest.fixture
def history(api):
    """Three members in March 2026, orders over two months (one Silver by the rule, whose
    Silver lapses in April), a full refund, points earned (lapsing after 60 days) and a
    move to Gold by hand: all recorded at the time, long before the roll-up."""
    programme_load(PROGRAMME)
    earning_policy_update(
        points_per_unit=Decimal(1), points_expiry=EarningPolicy.Expiry.DAYS, points_valid_days=60
    )
    with time_machine.travel(datetime(2026, 5, 1, 12, tzinfo=SHANGHAI), tick=False):
        _member(api, "A", "2026-03-01T10:00:00")
        _member(api, "B", "2026-03-02T10:00:00")
        _member(api, "C", "2026-03-03T10:00:00")
        _order(api, "A1", "A", "500.00", "2026-03-05T10:00:00")
        _order(api, "B1", "B", "1200.00", "2026-03-06T10:00:00")
        _order(api, "A2", "A", "600.00", "2026-03-10T10:00:00")
        _order(api, "A3", "A", "200.00", "2026-03-20T10:00:00")
        _order(api, "A4", "A", "80.00", "2026-04-22T10:00:00")
        _refund(api, "B1", "R1", "1200.00", "2026-03-15T10:00:00")
        _order(api, "B2", "B", "300.00", "2026-03-25T10:00:00")
        clock_triggers_run(date(2026, 4, 10))
        member_set_tier_by_hand(
            member_id=Member.objects.get(external_id="C").pk,
            tier=Tier.objects.get(code="gold"),
            reason="VIP",
            changed_by=get_user_model().objects.create_user("operator"),
        )
    return api


def _more(api) -> None:
    """Recorded now, after the roll-up, and mostly dated back in March and April: a new
    member and their orders (a new first order moves B's cohort too), a partial refund, a
    move by hand, points earned two days ago and spent; a new member's order placed before
    they joined (moving them up before joining)."""
    _member(api, "D", "2026-03-04T09:00:00")
    _order(api, "D1", "D", "1500.00", "2026-03-08T11:00:00")
    _order(api, "D2", "D", "40.00", "2026-04-02T11:00:00")
    _order(api, "B0", "B", "70.00", "2026-03-03T11:00:00")
    _order(api, "C1", "C", "90.00", "2026-03-08T15:00:00")
    # A member the ERP first names with an order back-dated before their joining (today):
    # moved up as of the order, counted on the tier from their joining.
    _order(api, "E1", "E", "1200.00", "2026-03-15T10:00:00")
    _order(api, "C2", "C", "1000.00", "2026-03-09T10:00:00")
    recent = timezone.localtime() - timedelta(days=2)
    _order(api, "D3", "D", "900.00", recent.replace(tzinfo=None).isoformat(timespec="seconds"))
    _refund(api, "A2", "R2", "100.00", "2026-04-03T10:00:00")
    member_set_tier_by_hand(
        member_id=Member.objects.get(external_id="A").pk,
        tier=Tier.objects.get(code="gold"),
        reason="VIP",
        changed_by=get_user_model().objects.get(username="operator"),
    )
    response = api.post(
        "/api/v1/members/D/points/redeem/", {"idempotency_key": "POS-9", "points": 700}
    )
    assert response.status_code in (200, 201), response.json()


def test_every_report_reads_the_same_from_the_rollup_as_from_the_rows(history, monkeypatch):
    raw = _raw_tables(monkeypatch)
    reports_rollup(lag=NOW())
    for figure in FIGURES:
        assert figure.objects.exists(), figure
    assert _tables() == raw

    _more(history)
    late = Member.objects.get(external_id="E")
    assert late.tier_changes.filter(created_at__lt=late.joined_at).exists()
    changed = _raw_tables(monkeypatch)
    assert changed != raw
    assert _tables() == changed  # the roll-up's figures, and the rows for what changed
    mark = RollupMark.objects.get().recorded_before

    reports_rollup(lag=NOW())
    assert RollupMark.objects.get().recorded_before > mark
    assert _tables() == changed
    verdict = reports_verify()
    assert verdict.differences == [] and verdict.compared > 0 and verdict.skipped == 0


def test_a_rebuild_counts_what_the_catch_up_did(history, monkeypatch):
    reports_rollup(lag=NOW())
    _more(history)
    reports_rollup(lag=NOW())
    caught_up = {figure: sorted(map(str, figure.objects.all())) for figure in FIGURES}
    reports_rollup(rebuild=True, lag=NOW())
    rebuilt = {figure: sorted(map(str, figure.objects.all())) for figure in caught_up}
    assert rebuilt == caught_up


def test_the_reports_read_the_rollup(history, monkeypatch):
    """A figure changed behind the roll-up's back shows in the report: it is read, not
    recounted."""
    reports_rollup(lag=NOW())
    period = PERIODS[2]
    march = BuyerFigure.objects.get(interval="month", bucket=date(2026, 3, 1))
    _, rows = report_table(REPORTS["repurchase"], period)
    assert rows[2][1] == march.buyers == 2
    BuyerFigure.objects.filter(pk=march.pk).update(buyers=7)
    _, rows = report_table(REPORTS["repurchase"], period)
    assert rows[2][1] == 7


def test_verify_finds_a_drifted_figure_and_a_rebuild_mends_it(history):
    call_command("reports_rollup", "--lag", "0", stdout=StringIO(), stderr=StringIO())
    out = StringIO()
    call_command("reports_verify", stdout=out)
    assert "No differences" in out.getvalue()

    CohortFigure.objects.filter(cohort=date(2026, 3, 1), offset=0).update(members=9)
    TierDelta.objects.filter(day=date(2026, 3, 1)).delete()
    out = StringIO()
    with pytest.raises(CommandError, match="2 of"):
        call_command("reports_verify", "--from", "2026-03-01", "--to", "2026-03-31", stdout=out)
    assert "cohort 2026-03-01 0: kept 9, counted from the rows 2" in out.getvalue()
    assert "tier change 2026-03-01" in out.getvalue()

    call_command("reports_rollup", "--rebuild", "--lag", "0", stdout=StringIO(), stderr=StringIO())
    out = StringIO()
    call_command("reports_verify", stdout=out)
    assert "No differences" in out.getvalue()


def test_verify_finds_drifted_rule_and_points_figures(history):
    reports_rollup(lag=NOW())
    assert reports_verify().differences == []
    months = RuleFigure.objects.filter(interval="month")
    assert months.exists() and PointsDay.objects.filter(issued__gt=0).exists()
    months.update(points=F("points") + 1)
    first = PointsDay.objects.order_by("day").first()
    PointsDay.objects.filter(pk=first.pk).update(issued=F("issued") + 5)

    differences = reports_verify().differences
    rules = [line for line in differences if line.startswith("rule by month")]
    assert len(rules) == months.count()
    counted = (first.issued, first.redeemed, first.expired, first.reversed)
    kept = (counted[0] + 5, *counted[1:])
    assert differences == [
        *rules,
        f"points on {first.day}: kept {kept}, counted from the rows {counted}",
    ]


def test_verify_before_any_rollup_and_a_bad_date():
    out = StringIO()
    call_command("reports_verify", stdout=out)
    assert "not been rolled up" in out.getvalue()
    with pytest.raises(CommandError, match="not a date"):
        call_command("reports_verify", "--from", "March")


def test_the_beat_task_rolls_up_and_the_dashboard_says_how_far(admin_client, history):
    from django.conf import settings

    from reports import tasks

    assert settings.CELERY_BEAT_SCHEDULE["reports-rollup"]["task"] == "reports.tasks.rollup"
    page = admin_client.get("/admin/reports/dashboard/").content.decode()
    assert "Not rolled up yet" in page

    tasks.rollup.delay()

    mark = RollupMark.objects.get().recorded_before
    assert mark is not None
    page = admin_client.get("/admin/reports/dashboard/").content.decode()
    assert f"rows recorded before {timezone.localtime(mark):%Y-%m-%d %H:%M}" in page
