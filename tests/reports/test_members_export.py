"""The members export: the member list's filters, masking by permission, every column."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from benefits.models import EarningPolicy
from benefits.services.points import points_award
from members.models import Member, Tag
from reports.models import MembersExport
from tests.factories import TierFactory

EXPORT = reverse("admin:reports_members_export")
HEADER = (
    "external_id,name,phone,email,tier,tier_since,tier_until,lifetime_spend,orders,"
    "last_order,points,growth_points,tags"
)


@pytest.fixture
def members(db):
    gold = TierFactory(code="gold", rank=2)
    TierFactory(code="regular", rank=0)
    first = Member.objects.create(
        external_id="M-1",
        name="王小明",
        phone="13800138000",
        email="wang@example.com",
        tier=gold,
        lifetime_spend=Decimal("2500.00"),
        order_count=3,
    )
    first.tags.add(
        Tag.objects.create(code="vip", name="VIP"), Tag.objects.create(code="b2b", name="B2B")
    )
    points_award(member=first, points=120, reason="welcome", policy=EarningPolicy.current())
    Member.objects.create(external_id="M-2", name="李小红", phone="", email="")
    return first


@pytest.fixture(autouse=True)
def exports_dir(settings, tmp_path):
    settings.TIERFLOW_EXPORTS_DIR = tmp_path / "exports"
    return settings.TIERFLOW_EXPORTS_DIR


@pytest.fixture
def export(django_capture_on_commit_callbacks):
    """Ask for an export as the admin's button does, follow to the job's page, and
    download the file it offers once done."""

    def run(client: Client, params: dict) -> bytes:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.get(EXPORT, params)
        assert response.status_code == 302, response.content
        page = client.get(response.url)
        assert page.status_code == 200
        job = page.context["original"]
        assert job.status == MembersExport.Status.DONE, job.error
        download = reverse("admin:reports_membersexport_download", args=[job.pk])
        assert download in page.content.decode()
        file = client.get(download)
        assert file.status_code == 200
        return b"".join(file.streaming_content)

    return run


def _lines(content: bytes) -> list[str]:
    return content.decode("utf-8-sig").splitlines()


def test_the_superuser_exports_in_clear(admin_client, members, export):
    lines = _lines(export(admin_client, {"format": "csv"}))

    assert lines[0] == HEADER
    first = lines[1].split(",")
    # a leading "+" would make a spreadsheet read the phone as a formula
    assert first[:5] == ["M-1", "王小明", "'+8613800138000", "wang@example.com", "gold"]
    assert first[7:9] == ["2500.00", "3"]
    assert first[10:] == ["120", "0", "b2b vip"]
    assert lines[2].split(",")[:2] == ["M-2", "李小红"]


def test_a_reader_without_the_personal_data_permission_gets_them_masked(members, export):
    user = get_user_model().objects.create_user("analyst", is_staff=True)
    user.groups.add(Group.objects.get(name="Analysts"))
    client = Client()
    client.force_login(user)

    first = _lines(export(client, {"format": "csv"}))[1].split(",")

    assert first[1:4] == ["王**", "138****8000", "w***@example.com"]


def test_the_member_lists_filters_choose_who(admin_client, members, export):
    gold = Member.objects.get(external_id="M-1").tier

    lines = _lines(export(admin_client, {"tier__id__exact": gold.pk, "format": "csv"}))

    assert [line.split(",")[0] for line in lines[1:]] == ["M-1"]


def test_staff_who_cannot_see_members_cannot_export(members):
    user = get_user_model().objects.create_user("clerk", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_reports"))
    client = Client()
    client.force_login(user)

    assert client.get(EXPORT, {"format": "csv"}).status_code == 403


def test_the_member_list_offers_the_export(admin_client, members):
    gold = members.tier

    page = admin_client.get(f"/admin/members/member/?tier__id__exact={gold.pk}").content.decode()

    assert f"{EXPORT}?tier__id__exact={gold.pk}&amp;format=csv" in page


def test_the_command_writes_every_member_masked_by_default(members, tmp_path, capsys):
    target = tmp_path / "members.csv"

    call_command("export_members", "--output", str(target))

    lines = target.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == HEADER
    assert lines[1].split(",")[1] == "王**"
    assert len(lines) == 3
    assert "2 members written" in capsys.readouterr().err


def test_the_command_writes_xlsx(members, tmp_path):
    target = tmp_path / "members.xlsx"

    call_command(
        "export_members", "--format", "xlsx", "--output", str(target), "--show-personal-data"
    )

    assert target.read_bytes()[:2] == b"PK"  # a zip container, as XLSX is


def test_filters_on_personal_data_are_refused_to_who_may_not_see_it(members):
    user = get_user_model().objects.create_user("analyst", is_staff=True)
    user.groups.add(Group.objects.get(name="Analysts"))
    client = Client()
    client.force_login(user)

    # a prefix at a time would give away the masked phone numbers
    export = client.get(EXPORT, {"phone__startswith": "+86138", "format": "csv"})
    listing = client.get("/admin/members/member/", {"phone__startswith": "+86138"})

    assert export.status_code == 400
    assert listing.status_code == 400


def test_a_bad_filter_is_a_400_not_a_500(admin_client, members):
    assert admin_client.get(EXPORT, {"colour": "red", "format": "csv"}).status_code == 400


def test_the_admin_writes_xlsx_and_only_who_asked_may_download_it(admin_client, members, export):
    assert export(admin_client, {"format": "xlsx"})[:2] == b"PK"  # a zip, as XLSX is

    job = MembersExport.objects.get()
    other = get_user_model().objects.create_superuser("other", password="x")
    client = Client()
    client.force_login(other)
    download = reverse("admin:reports_membersexport_download", args=[job.pk])
    assert client.get(download).status_code == 404
    assert (
        client.get(reverse("admin:reports_membersexport_change", args=[job.pk])).status_code != 200
    )


def test_a_file_kept_past_its_hours_is_deleted(admin_client, members, export, exports_dir):
    from reports.tasks import sweep_members_exports

    export(admin_client, {"format": "csv"})
    job = MembersExport.objects.get()
    assert (exports_dir / job.filename).exists()
    assert sweep_members_exports() == 0

    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        assert sweep_members_exports() == 1

    assert list(exports_dir.iterdir()) == []
    half_written = exports_dir / "tmp123.partial"  # left by a run killed while writing
    half_written.write_text("M-1")
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        assert sweep_members_exports() == 1
    assert not half_written.exists()
    job.refresh_from_db()
    assert job.filename == ""
    page = admin_client.get(reverse("admin:reports_membersexport_change", args=[job.pk]))
    assert "deleted after 24 hours" in page.content.decode()


def test_an_unknown_format_is_a_400(admin_client, members):
    assert admin_client.get(EXPORT, {"format": "pdf"}).status_code == 400
    assert not MembersExport.objects.exists()


def test_who_lost_the_personal_data_permission_cannot_download_it_in_clear(members, export):
    user = get_user_model().objects.create_user("lead", is_staff=True)
    user.groups.add(Group.objects.get(name="Analysts"))
    user.user_permissions.add(Permission.objects.get(codename="view_member_pii"))
    client = Client()
    client.force_login(user)
    assert _lines(export(client, {"format": "csv"}))[1].split(",")[1] == "王小明"

    user.user_permissions.clear()
    job = MembersExport.objects.get()
    client = Client()
    client.force_login(get_user_model().objects.get(pk=user.pk))
    download = reverse("admin:reports_membersexport_download", args=[job.pk])
    assert client.get(download).status_code == 403
