"""import_members: every column, checked whole before anything is written, silent (no
rule sees the members join), and the same file twice changes nothing (TIME_ZONE is
Asia/Shanghai)."""

from datetime import datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from benefits.models import GrowthEntry, PointsEntry
from benefits.selectors import growth_balance, points_balance
from members.models import Member, TierChange
from notifications.models import Consent, Notification
from notifications.selectors import member_consents
from rules.models import RuleFiring
from rules.programme.load import programme_load
from tests.helpers import REPORTS_PROGRAMME

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
HEADER = (
    "external_id,name,phone,email,birthday,joined_at,language,tier,tier_since,"
    "tier_expires_at,points,points_expire_at,growth_points,tags,consent_sms,consent_push,"
    "consent_email"
)
NEXT_YEAR = timezone.localdate().year + 1


def write(path, *lines: str, encoding: str = "utf-8-sig") -> str:
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return str(path)


def run(*args: str) -> str:
    out = StringIO()
    call_command("import_members", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture(autouse=True)
def programme(db) -> None:
    programme_load(REPORTS_PROGRAMME)


def test_every_column_imported_silently(tmp_path):
    path = write(
        tmp_path / "members.csv",
        HEADER,
        f"M1,张三,138 0013 8000,zs@example.com,1990/5/1,2024-01-02 09:30,zh,silver,2026-06-01,"
        f'{NEXT_YEAR}-06-30,"1,200",{NEXT_YEAR}-12-31,300,vip;north,是,否,y',
        "M2,Li Si,+86 138-0013-8001,,,2023-03-04,en,,,,,,,,,,",
    )
    out = run(path)
    assert "2 rows read: 2 were created, 0 updated, 0 unchanged; 0 rejected." in out
    assert "Members per tier: regular 1, silver 1." in out

    m1 = Member.objects.get(external_id="M1")
    assert (m1.name, m1.phone, m1.email, str(m1.birthday), m1.language) == (
        "张三", "+8613800138000", "zs@example.com", "1990-05-01", "zh-hans"
    )  # fmt: skip
    assert m1.joined_at == datetime(2024, 1, 2, 9, 30, tzinfo=SHANGHAI)
    assert m1.tier.code == "silver"
    assert m1.tier_since == datetime(2026, 6, 1, tzinfo=SHANGHAI)
    assert m1.tier_expires_at == datetime(NEXT_YEAR, 6, 30, tzinfo=SHANGHAI)
    change = TierChange.objects.get(member=m1)
    assert (change.cause, change.reason, change.seq) == ("import", "tier from the import file", 0)
    assert points_balance(member_id=m1.pk) == 1200 and growth_balance(member_id=m1.pk) == 300
    entry = PointsEntry.objects.get(member=m1)
    assert entry.kind == "opening"
    assert entry.expires_at == datetime(NEXT_YEAR, 12, 31, tzinfo=SHANGHAI)
    assert sorted(m1.tags.values_list("code", flat=True)) == ["north", "vip"]
    consents = member_consents(member_id=m1.pk)
    assert {c: v["granted"] for c, v in consents.items()} == {
        "sms": True, "push": False, "email": True
    }  # fmt: skip
    assert {v["source"] for v in consents.values()} == {"import"}

    m2 = Member.objects.get(external_id="M2")
    assert (m2.tier.code, m2.language, m2.phone) == ("regular", "en", "+8613800138001")
    # Silent: nobody's joining is left for the rules, nothing fired or was sent.
    assert not Member.objects.filter(pending_since__isnull=False).exists()
    assert all(m.is_evaluated for m in Member.objects.all())
    assert not RuleFiring.objects.exists() and not Notification.objects.exists()


def test_dry_run_lists_every_problem_by_row_and_column_and_writes_nothing(tmp_path):
    path = write(
        tmp_path / "members.csv",
        "external_id,phone,birthday,joined_at,tier,tier_since,points_expire_at,language",
        "M1,12,1990-13-01,,,,,",
        "M2,,,2099-01-01,platinum,,,fr",
        "M1,,,,,,,",
        "M3,,,,silver,2020-01-01,,",
        "M4,,,,,,2030-01-01,",
        "bad id,,,,,,,",
    )
    with pytest.raises(CommandError, match="5 rows have problems"):
        out = StringIO()
        call_command("import_members", path, "--dry-run", stdout=out, stderr=StringIO())
    report = out.getvalue()
    for line in [
        "row 2, phone: “12” is not a phone number",
        "row 2, birthday: “1990-13-01” is not a date as YYYY-MM-DD",
        "row 3, joined_at: is in the future",
        "row 3, tier: no tier has the code “platinum”",
        "row 3, language: “fr” is not zh-hans or en",
        "row 4, external_id: also on row 2",
        "row 6, points_expire_at: give the points too",
        "row 7, external_id: Use letters, digits and punctuation",
    ]:
        assert line in report
    assert (
        "row 5, tier_since: the tier would have lapsed already" not in report
    )  # silver never lapses here
    assert not Member.objects.exists()

    # The same file for real: nothing is written either.
    with pytest.raises(CommandError, match="nothing was written"):
        run(path)
    assert not Member.objects.exists()


def test_unknown_columns_are_an_error_unless_ignored(tmp_path):
    path = write(tmp_path / "m.csv", "external_id,nickname", "M1,Zhang")
    with pytest.raises(CommandError, match="unknown column “nickname”"):
        run(path)
    assert "1 were created" in run(path, "--ignore-columns")
    missing = write(tmp_path / "n.csv", "name", "Zhang")
    with pytest.raises(CommandError, match="the column “external_id” is missing"):
        run(missing)


def test_the_same_file_twice_changes_nothing_and_a_new_one_updates(tmp_path):
    lines = [HEADER, "M1,张三,13800138000,,,2024-01-02,,,,,500,,40,vip,1,,"]
    path = write(tmp_path / "members.csv", *lines)
    run(path)
    counts = (PointsEntry.objects.count(), Consent.objects.count(), TierChange.objects.count())
    assert "0 were created, 0 updated, 1 unchanged" in run(path)
    assert counts == (
        PointsEntry.objects.count(), Consent.objects.count(), TierChange.objects.count()
    )  # fmt: skip

    updated = write(
        tmp_path / "again.csv",
        HEADER,
        "M1,张三丰,13800138000,,,2024-01-02,,,,,800,,40,vip;gold,0,,",
    )
    assert "0 were created, 1 updated, 0 unchanged" in run(updated)
    m1 = Member.objects.get()
    assert (
        m1.name == "张三丰"
        and points_balance(member_id=m1.pk) == 800
        and growth_balance(member_id=m1.pk) == 40
    )
    # The ledger stays append-only: the difference is an opening entry of its own.
    assert list(PointsEntry.objects.order_by("pk").values_list("points", flat=True)) == [500, 300]
    assert GrowthEntry.objects.count() == 1
    assert sorted(m1.tags.values_list("code", flat=True)) == ["gold", "vip"]
    assert member_consents(member_id=m1.pk)["sms"]["granted"] is False


def test_skip_invalid_imports_the_valid_rows_and_writes_the_rejected_beside_the_file(tmp_path):
    path = write(tmp_path / "members.csv", "external_id,phone", "M1,13800138000", "M2,12", "M3,")
    out = StringIO()
    with pytest.raises(CommandError, match="1 rows have problems: they were left out"):
        call_command("import_members", path, "--skip-invalid", stdout=out, stderr=StringIO())
    assert "3 rows read: 2 were created, 0 updated, 0 unchanged; 1 rejected." in out.getvalue()
    assert sorted(Member.objects.values_list("external_id", flat=True)) == ["M1", "M3"]
    rejected = (tmp_path / "members.rejected.csv").read_text(encoding="utf-8-sig")
    assert rejected.splitlines() == [
        "external_id,phone,errors", "M2,12,phone: “12” is not a phone number"
    ]  # fmt: skip


def test_possible_duplicates_are_named(tmp_path):
    Member.objects.create(external_id="OLD", phone="+8613800138000")
    path = write(
        tmp_path / "members.csv", "external_id,phone", "M1,138 0013 8000", "M2,+8613800138000"
    )
    out = run(path, "--dry-run")
    assert "Possible duplicates:" in out
    assert "phone 138****8000: M1, M2, OLD" in out


def test_gb18030_and_xlsx_files(tmp_path):
    from openpyxl import Workbook

    path = write(tmp_path / "gb.csv", "external_id,name", "M1,张三", encoding="gb18030")
    run(path)
    assert Member.objects.get(external_id="M1").name == "张三"
    book = Workbook()
    book.active.append(["external_id", "name", "joined_at", "phone"])
    book.active.append(["M2", "李四", datetime(2023, 5, 6, 8, 0), 13800138002])
    book.save(tmp_path / "members.xlsx")
    run(str(tmp_path / "members.xlsx"))
    m2 = Member.objects.get(external_id="M2")
    assert (m2.name, m2.phone) == ("李四", "+8613800138002")
    assert m2.joined_at == datetime(2023, 5, 6, 8, tzinfo=SHANGHAI)
    assert m2.joined_at < timezone.now() - timedelta(days=1)


def test_a_held_tier_given_without_dates_keeps_its_period(tmp_path):
    """Renewed since it went live, a member's period is not set back by the same file."""
    path = write(tmp_path / "m.csv", "external_id,tier", "M1,silver")
    run(path)
    renewed = timezone.now() + timedelta(days=400)
    Member.objects.filter(external_id="M1").update(tier_expires_at=renewed)
    assert "0 were created, 0 updated, 1 unchanged" in run(path)
    assert Member.objects.get().tier_expires_at == renewed
    assert TierChange.objects.count() == 1


def test_numeric_ids_sharing_a_phone_across_batches(tmp_path, monkeypatch):
    from imports import runner

    monkeypatch.setattr(runner, "BATCH", 2)
    path = write(
        tmp_path / "m.csv",
        "external_id,phone",
        "1001,13800138000",
        "1002,13800138001",
        "1003,13800138000",
    )
    out = run(path, "--dry-run")
    assert "phone 138****8000: 1001, 1003" in out


def test_a_lower_opening_balance_never_leaves_a_member_below_zero(tmp_path):
    from benefits.services.points import points_redeem

    run(write(tmp_path / "m.csv", "external_id,points,growth_points", "M1,1000,50"))
    points_redeem(member_external_id="M1", points=800, idempotency_key="spend-1")
    lower = write(tmp_path / "lower.csv", "external_id,points,growth_points", "M1,300,60")
    with pytest.raises(CommandError, match="1 rows have problems"):
        out = StringIO()
        call_command("import_members", lower, "--dry-run", stdout=out, stderr=StringIO())
    assert "row 2, points: the member has 200 now: taking 700 off leaves less than 0" in (
        out.getvalue()
    )
    member = Member.objects.get(external_id="M1")
    assert points_balance(member_id=member.pk) == 200

    # Lowered by less than is left: taken off.
    run(write(tmp_path / "less.csv", "external_id,points,growth_points", "M1,900,10"))
    assert points_balance(member_id=member.pk) == 100
    assert growth_balance(member_id=member.pk) == 10
