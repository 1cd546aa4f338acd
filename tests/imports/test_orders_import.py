"""import_orders: history recorded silently (no rule fires, no coupon, no points, no
message), totals recomputed so verify_balances finds no drift, the next live order
evaluated as usual; re-runs and a killed run finish the job without duplicating."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from benefits.models import Coupon, PointsEntry
from benefits.verification import balances_drift
from imports import runner
from members.models import Member
from notifications.models import Notification
from orders import bulk
from orders.models import Order, Refund
from rules.models import RuleFiring
from rules.programme.load import programme_load
from tests.helpers import REPORTS_PROGRAMME

pytestmark = pytest.mark.django_db

HEADER = "external_id,member,amount,currency,placed_at,refunded_amount,refunded_at"


def write(path, *lines: str) -> str:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def run(*args: str) -> str:
    out = StringIO()
    call_command("import_orders", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def members(tmp_path) -> None:
    programme_load(REPORTS_PROGRAMME)
    path = write(tmp_path / "members.csv", "external_id,phone", "M1,13800138000", "M2,13800138001")
    call_command("import_members", path, stdout=StringIO(), stderr=StringIO())


def test_history_recorded_silently_then_a_live_order_upgrades(members, tmp_path, api):
    path = write(
        tmp_path / "orders.csv",
        HEADER,
        'O1,M1,"1,234.50",,2025-01-02 10:00,,',  # over the 1000 line: no upgrade now
        "O2,M1,¥800,CNY,2025-03-02,800,2025-03-05",  # refunded in full
        "O3,M2,３００.００,,2025-04-01T12:00:00,50,",
        "O4,M2,600,,2025-05-01,,",
    )
    out = run(path)
    assert "4 rows read: 4 were created" in out
    assert "Totals recomputed for 2 members." in out
    m1, m2 = Member.objects.get(external_id="M1"), Member.objects.get(external_id="M2")
    assert (m1.lifetime_spend, m1.order_count) == (Decimal("1234.50"), 1)
    assert (m2.lifetime_spend, m2.order_count) == (Decimal("850.00"), 2)
    assert m1.tier.code == m2.tier.code == "regular"
    assert Order.objects.get(external_id="O2").refunded_amount == Decimal("800.00")
    assert Refund.objects.count() == 2
    assert Order.objects.filter(seq=0).count() == 4
    for model in (RuleFiring, Coupon, PointsEntry, Notification):
        assert not model.objects.exists(), model
    assert list(balances_drift()) == []

    # Live from here: M2 crosses 1000 and is upgraded, with the coupon and the message.
    response = api.order(external_id="LIVE-1", member={"external_id": "M2"}, amount="200.00")
    assert response.status_code == 201, response.json()
    m2.refresh_from_db()
    assert m2.tier.code == "silver" and m2.lifetime_spend == Decimal("1050.00")
    assert Coupon.objects.filter(member=m2).count() == 1
    assert Notification.objects.filter(member=m2).exists()
    assert not RuleFiring.objects.filter(member=m1).exists()


def test_tiers_from_rules_set_only_the_tier(members, tmp_path):
    given = write(tmp_path / "m3.csv", "external_id,tier", "M3,regular")
    call_command("import_members", given, stdout=StringIO(), stderr=StringIO())
    path = write(
        tmp_path / "orders.csv",
        HEADER,
        "O1,M1,1500,,2025-01-02,,",
        "O2,M2,10,,2025-01-02,,",
        "O3,M3,2000,,2025-01-02,,",  # the members file gave M3's tier: it stays
    )
    assert "Tiers from the upgrade rules: 1 members moved up." in run(path, "--tiers", "from-rules")
    m1 = Member.objects.get(external_id="M1")
    assert m1.tier.code == "silver"
    assert m1.tier_changes.order_by("-pk").first().reason == "tier from the upgrade rules (import)"
    assert Member.objects.get(external_id="M2").tier.code == "regular"
    assert Member.objects.get(external_id="M3").tier.code == "regular"
    for model in (RuleFiring, Coupon, PointsEntry, Notification):
        assert not model.objects.exists(), model


def test_bad_rows_and_conflicts(members, tmp_path):
    write(tmp_path / "first.csv", HEADER, "O1,M1,100,,2025-01-02,,")
    run(str(tmp_path / "first.csv"))
    path = write(
        tmp_path / "orders.csv",
        HEADER,
        "O1,M1,999,,2025-01-02,,",  # recorded already with another amount
        "O2,MX,10,,2025-01-02,,",
        "O3,M1,10,,2099-01-01,,",
        "O4,M1,10,,2025-01-02,20,2025-01-03",
        "O5,M1,10,,2025-01-02,5,2024-12-31",
        "O6,M1,10,euro,2025-01-02,,",
        "O2,M1,10,,2025-01-02,,",
    )
    with pytest.raises(CommandError, match="7 rows have problems"):
        out = StringIO()
        call_command("import_orders", path, stdout=out, stderr=StringIO())
    report = out.getvalue()
    for line in [
        "row 2, external_id: recorded already, with another member, amount, currency or time",
        "row 3, member: no member has the external id “MX”",
        "row 4, placed_at: must be from 2000 to now",
        "row 5, refunded_amount: is more than the amount",
        "row 6, refunded_at: must be after the order was placed",
        "row 7, currency: “euro” is not a 3-letter currency code",
        "row 8, external_id: also on row 3",
    ]:
        assert line in report
    assert Order.objects.count() == 1


def test_a_later_file_with_more_refunded_adds_the_difference_once(members, tmp_path):
    run(write(tmp_path / "a.csv", HEADER, "O1,M1,100,,2025-01-02,30,2025-01-05"))
    path = write(tmp_path / "b.csv", HEADER, "O1,M1,100,,2025-01-02,70,2025-02-05")
    assert "0 were created, 1 updated, 0 unchanged" in run(path)
    assert "0 were created, 0 updated, 1 unchanged" in run(path)
    order = Order.objects.get()
    assert order.refunded_amount == Decimal("70.00")
    assert sorted(order.refunds.values_list("amount", flat=True)) == [Decimal(30), Decimal(40)]
    assert Member.objects.get(external_id="M1").lifetime_spend == Decimal("30.00")
    assert list(balances_drift()) == []


@pytest.mark.parametrize(
    ("options", "left", "outcome"),
    [
        # One transaction: a killed run leaves nothing, and the next does it all.
        ((), 0, "9 were created, 0 updated, 0 unchanged"),
        # A transaction per batch: the next run finishes what the killed one began.
        (("--skip-invalid",), 4, "5 were created, 0 updated, 4 unchanged"),
    ],
)
def test_a_killed_run_run_again_finishes_without_duplicating(
    members, tmp_path, monkeypatch, options, left, outcome
):
    lines = [f"O{n},M{1 + n % 2},10.00,,2025-01-{1 + n:02d},," for n in range(9)]
    path = write(tmp_path / "orders.csv", HEADER, *lines)
    monkeypatch.setattr(runner, "BATCH", 2)
    real, calls = bulk.orders_record_silently, []

    def dies_on_the_third_batch(orders, refunds):
        calls.append(len(orders))
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process is stopped half way
        real(orders, refunds)

    monkeypatch.setattr(bulk, "orders_record_silently", dies_on_the_third_batch)
    with pytest.raises(KeyboardInterrupt):
        run(path, *options)
    assert Order.objects.count() == left
    monkeypatch.setattr(bulk, "orders_record_silently", real)

    assert f"9 rows read: {outcome}" in run(path, *options)
    assert Order.objects.count() == 9
    assert Member.objects.get(external_id="M1").lifetime_spend == Decimal("50.00")
    assert Member.objects.get(external_id="M2").order_count == 4
    assert list(balances_drift()) == []


def test_a_long_order_id_refunded_and_a_live_order_refused(members, tmp_path, api):
    long_id = "X" * 64
    run(write(tmp_path / "a.csv", HEADER, f"{long_id},M1,100,,2025-01-02,30,2025-01-05"))
    assert Order.objects.get(external_id=long_id).refunded_amount == Decimal("30.00")

    response = api.order(external_id="LIVE-9", member={"external_id": "M1"}, amount="50.00")
    assert response.status_code == 201, response.json()
    placed = Order.objects.get(external_id="LIVE-9").placed_at.isoformat()
    path = write(tmp_path / "b.csv", HEADER, f"LIVE-9,M1,50.00,CNY,{placed},50,")
    with pytest.raises(CommandError, match="1 rows have problems"):
        out = StringIO()
        call_command("import_orders", path, stdout=out, stderr=StringIO())
    assert "the order was recorded through the API" in out.getvalue()
    assert Order.objects.get(external_id="LIVE-9").refunded_amount == 0


@pytest.mark.parametrize("first_load", [False, True])
def test_the_work_after_the_rows_shows_its_progress(members, tmp_path, monkeypatch, first_load):
    """A running job's sign of life: the totals recomputed beat too, not only the file."""
    from imports.orders import OrdersImport

    lines = [f"O{n},M{1 + n % 2},10.00,,2025-01-{1 + n:02d},," for n in range(5)]
    path = write(tmp_path / "orders.csv", HEADER, *lines)
    monkeypatch.setattr(bulk, "TOTALS_CHUNK", 1)
    seen = []
    report = runner.import_run(
        OrdersImport(first_load=first_load),
        path,
        progress=lambda phase, done, total: seen.append((phase, done, total)),
    )
    assert report.written and report.created == 5
    finishing = [(done, total) for phase, done, total in seen if phase == "finishing"]
    if first_load and connection.vendor == "postgresql":
        assert finishing == []  # every member's totals in one statement
    else:
        assert finishing == [(1, 2), (2, 2)]  # a beat per chunk of members
    assert Member.objects.get(external_id="M1").order_count == 3
    assert list(balances_drift()) == []


def test_a_first_load_only_into_no_orders_and_in_one_transaction(members, tmp_path):
    path = write(tmp_path / "orders.csv", HEADER, "O1,M1,10.00,,2025-01-01,,")
    with pytest.raises(CommandError, match="leave out --skip-invalid"):
        run(path, "--first-load", "--skip-invalid")
    assert "1 rows read: 1 were created" in run(path, "--first-load")
    assert Member.objects.get(external_id="M1").lifetime_spend == Decimal("10.00")
    again = write(tmp_path / "more.csv", HEADER, "O2,M1,10.00,,2025-01-02,,")
    with pytest.raises(CommandError, match="There are orders already"):
        run(again, "--first-load")
    assert not Order.objects.filter(external_id="O2").exists()
