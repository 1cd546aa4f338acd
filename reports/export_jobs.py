"""Members exports asked for in the admin, written by a background task (core.jobs) to a
file in TIERFLOW_EXPORTS_DIR: a million members take longer than a request may. The
members are those the member list's filters selected when it was asked for, read again
through that list (so the export and the list always agree)."""

import os
import tempfile
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet
from django.http import QueryDict
from django.test import RequestFactory
from django.utils import timezone

from core.jobs import job_finish, job_progress, job_run, jobs_resume
from core.queue import enqueue
from members.models import Member

from .exports import table_write
from .members_export import COLUMNS, member_rows
from .models import MembersExport


def members_export_start(
    *, user: AbstractBaseUser, filters: str, file_format: str, show_pii: bool
) -> MembersExport:
    with transaction.atomic():
        job = MembersExport.objects.create(
            requested_by=user, filters=filters, file_format=file_format, show_pii=show_pii
        )
        transaction.on_commit(lambda: _publish(job.pk), robust=True)
    return job


def _publish(job_id: int) -> None:
    from .tasks import export_members  # tasks import this module

    enqueue(export_members, job_id)


def job_members(job: MembersExport) -> QuerySet[Member]:
    """The members the member list selects with the job's filters, as its user sees it."""
    request = RequestFactory().get("/", QueryDict(job.filters))
    request.user = job.requested_by
    members_admin = admin.site._registry[Member]
    return members_admin.get_changelist_instance(request).get_queryset(request)


def export_path(job: MembersExport) -> Path | None:
    if not job.filename:
        return None
    return Path(settings.TIERFLOW_EXPORTS_DIR) / job.filename


def members_export_run(*, job_id: int) -> str:
    """Write the job's file; safe to run twice (the second finds the job done, or, if both
    run at once, both write the same rows and the last to finish names the file)."""
    return job_run(MembersExport, job_id, step=_write, publish=_publish)


def _write(job: MembersExport) -> str:
    members = job_members(job)
    total = members.count()
    job_progress(job, processed=0, total=total)
    rows = member_rows(
        members,
        show_pii=job.show_pii,
        progress=lambda done: job_progress(job, processed=done, total=total),
    )
    folder = Path(settings.TIERFLOW_EXPORTS_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"members-{job.pk}.{job.file_format}"  # one per job, however often it runs
    # Written under a temporary name, then renamed: a download never finds half a file.
    handle, partial = tempfile.mkstemp(dir=folder, suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as out:
            table_write(
                out, file_format=job.file_format, sheet="members", columns=COLUMNS, rows=rows
            )
        os.replace(partial, folder / name)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return job_finish(job, filename=name, total=total, processed=total)


def members_exports_resume() -> int:
    """Publish again the exports whose task was lost (never published, or its worker
    died: a running export beats its heart every 2,000 members)."""
    grace = timedelta(seconds=settings.TIERFLOW_PENDING_GRACE_SECONDS)
    return jobs_resume(
        MembersExport,
        publish=_publish,
        queued_for=grace,
        silent_for=grace * 5,
        limit=settings.TIERFLOW_SWEEP_BATCH,
    )


def members_exports_expire() -> int:
    """Delete the files kept longer than TIERFLOW_EXPORT_KEEP_HOURS, and any other file in
    the folder as old (what a killed run left half written); returns how many."""
    hours = settings.TIERFLOW_EXPORT_KEEP_HOURS
    cutoff = timezone.now() - timedelta(hours=hours)
    expired = 0
    for job in MembersExport.objects.filter(finished_at__lt=cutoff).exclude(filename=""):
        with transaction.atomic():
            if MembersExport.objects.filter(pk=job.pk, filename=job.filename).update(filename=""):
                export_path(job).unlink(missing_ok=True)
                expired += 1
    folder = Path(settings.TIERFLOW_EXPORTS_DIR)
    kept = set(MembersExport.objects.exclude(filename="").values_list("filename", flat=True))
    for stray in folder.glob("*") if folder.is_dir() else ():
        if stray.name not in kept and stray.stat().st_mtime < cutoff.timestamp():
            stray.unlink(missing_ok=True)
            expired += 1
    return expired
