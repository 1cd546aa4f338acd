"""The admin's import pages: upload, the first rows and the dry run's report, then the
import confirmed; problems stop it; only those who may add members and orders import."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile

from imports.models import ImportJob
from members.models import Member

pytestmark = pytest.mark.django_db

NEW = "/admin/imports/importjob/new/"


@pytest.fixture(autouse=True)
def files_dir(settings, tmp_path):
    settings.TIERFLOW_IMPORTS_DIR = tmp_path / "imports"


def upload(client, capture, text: str, **options):
    file = SimpleUploadedFile("members.csv", text.encode("utf-8-sig"), "text/csv")
    with capture(execute=True):
        response = client.post(NEW, {"kind": "members", "file": file, **options})
    assert response.status_code == 302, response.content.decode()[:2000]
    return ImportJob.objects.get(pk=response.url.rstrip("/").split("/")[-2])


def test_upload_check_then_import(admin_client, django_capture_on_commit_callbacks):
    assert admin_client.get(NEW).status_code == 200
    job = upload(
        admin_client, django_capture_on_commit_callbacks, "external_id,name\nM1,张三\nM2,李四\n"
    )
    assert (job.dry_run, job.status, job.rejected) == (True, "done", 0)
    assert not Member.objects.exists()
    page = admin_client.get(f"/admin/imports/importjob/{job.pk}/change/").content.decode()
    assert "<td>张三</td>" in page  # the first rows
    assert "2 rows read: 2 would be created" in page
    assert f"/admin/imports/importjob/{job.pk}/confirm/" in page

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/admin/imports/importjob/{job.pk}/confirm/")
    real = ImportJob.objects.exclude(pk=job.pk).get()
    # A second confirmation (a double click) imports nothing more.
    assert admin_client.post(f"/admin/imports/importjob/{job.pk}/confirm/").status_code == 403
    assert ImportJob.objects.count() == 2
    assert response.url == f"/admin/imports/importjob/{real.pk}/change/"
    assert (real.dry_run, real.status, real.processed, real.total) == (
        False, "done", real.total, real.total
    )  # fmt: skip
    assert "2 rows read: 2 were created" in real.report
    assert sorted(Member.objects.values_list("name", flat=True)) == ["张三", "李四"]


def test_a_file_with_problems_cannot_be_imported(admin_client, django_capture_on_commit_callbacks):
    job = upload(admin_client, django_capture_on_commit_callbacks, "external_id,phone\nM1,12\n")
    assert job.rejected == 1
    page = admin_client.get(f"/admin/imports/importjob/{job.pk}/change/").content.decode()
    assert "row 2, phone: “12” is not a phone number" in page
    assert "/confirm/" not in page
    assert admin_client.post(f"/admin/imports/importjob/{job.pk}/confirm/").status_code == 403
    assert not Member.objects.exists()


def test_a_bad_upload_is_refused_with_a_field_error(admin_client):
    file = SimpleUploadedFile("members.pdf", b"%PDF", "application/pdf")
    response = admin_client.post(NEW, {"kind": "members", "file": file})
    assert response.status_code == 200
    assert "Upload a .csv or .xlsx file." in response.content.decode()
    assert not ImportJob.objects.exists()


def test_analysts_cannot_import(client):
    user = get_user_model().objects.create_user("analyst", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="Analysts"))
    client.force_login(user)
    assert client.get(NEW).status_code == 403
    assert client.get("/admin/imports/importjob/").status_code == 403


def test_uploaded_files_are_deleted_once_kept_long_enough(
    admin_client, django_capture_on_commit_callbacks, settings
):
    from datetime import timedelta

    from django.utils import timezone

    from imports.jobs import import_files_expire, import_path

    job = upload(admin_client, django_capture_on_commit_callbacks, "external_id\nM1\n")
    path = import_path(job)
    assert path.exists() and import_files_expire() == 0
    old = timezone.now() - timedelta(hours=settings.TIERFLOW_EXPORT_KEEP_HOURS + 1)
    ImportJob.objects.filter(pk=job.pk).update(finished_at=old)
    assert import_files_expire() == 1
    assert not path.exists()
    page = admin_client.get(f"/admin/imports/importjob/{job.pk}/change/").content.decode()
    assert "The file was deleted" in page
