"""export_report writes the rows the API gives."""

import pytest
from django.core.management import CommandError, call_command

from members.models import Member


@pytest.fixture
def members(db):
    Member.objects.create(external_id="M-1", name="甲", joined_at="2026-04-01T10:00:00+08:00")
    Member.objects.create(external_id="M-2", name="乙", joined_at="2026-04-03T10:00:00+08:00")


def test_a_report_to_a_csv_file(members, tmp_path, capsys):
    target = tmp_path / "growth.csv"

    call_command(
        "export_report",
        "member-growth",
        "--from",
        "2026-04-01",
        "--to",
        "2026-04-03",
        "--output",
        str(target),
    )

    assert target.read_text(encoding="utf-8-sig").splitlines() == [
        "bucket,new_members,active_members,total_members",
        "2026-04-01,1,0,1",
        "2026-04-02,0,0,1",
        "2026-04-03,1,0,2",
    ]
    assert "3 row(s) written to" in capsys.readouterr().err


def test_xlsx_needs_a_file(members):
    with pytest.raises(CommandError, match="needs --output"):
        call_command(
            "export_report",
            "member-growth",
            "--from",
            "2026-04-01",
            "--to",
            "2026-04-03",
            "--format",
            "xlsx",
        )


def test_bad_input_names_the_option(db):
    with pytest.raises(CommandError, match="--to: The period ends before it starts"):
        call_command("export_report", "repurchase", "--from", "2026-04-05", "--to", "2026-04-01")
    with pytest.raises(CommandError, match=r"Choose one of: .*member-growth"):
        call_command("export_report", "nope", "--from", "2026-04-01", "--to", "2026-04-02")
