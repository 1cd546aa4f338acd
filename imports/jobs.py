"""Imports asked for in the admin, run by a background task through the job runner
(core.jobs): one long step that reads the whole file, its progress the bytes read. The
task is safe to run twice: a finished job is left alone, and an import run again
changes nothing it already did (runner.py)."""

import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from core.jobs import job_finish, job_progress, job_run, jobs_resume
from core.queue import enqueue

from .files import FileError, open_table
from .members import MembersImport
from .models import ImportJob
from .orders import OrdersImport
from .runner import import_run

IMPORTERS = {ImportJob.Kind.MEMBERS: MembersImport, ImportJob.Kind.ORDERS: OrdersImport}
PREVIEW_ROWS = 10


def import_path(job: ImportJob) -> Path:
    return Path(settings.TIERFLOW_IMPORTS_DIR) / job.filename


def import_job_start(
    *, user: AbstractBaseUser, kind: str, upload: UploadedFile, **options: bool
) -> ImportJob:
    """Keep the uploaded file and check it in the background (a dry run)."""
    folder = Path(settings.TIERFLOW_IMPORTS_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    filename = f"{uuid.uuid4().hex}{Path(upload.name).suffix.lower()[:10]}"
    with (folder / filename).open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    return _create(
        user=user, kind=kind, filename=filename, original_name=upload.name, dry_run=True, **options
    )


class AlreadyImported(Exception):
    pass


@transaction.atomic
def import_job_confirm(*, job: ImportJob, user: AbstractBaseUser) -> ImportJob:
    """Import for real the file a finished dry run checked, with its options; once (a
    second confirmation, a double click, raises AlreadyImported)."""
    ImportJob.objects.select_for_update().filter(pk=job.pk).first()
    if ImportJob.objects.filter(filename=job.filename, dry_run=False).exists():
        raise AlreadyImported
    return _create(
        user=user,
        kind=job.kind,
        filename=job.filename,
        original_name=job.original_name,
        dry_run=False,
        skip_invalid=job.skip_invalid,
        ignore_columns=job.ignore_columns,
        tiers_from_rules=job.tiers_from_rules,
    )


def _create(*, user: AbstractBaseUser, **fields) -> ImportJob:
    with transaction.atomic():
        job = ImportJob.objects.create(requested_by=user, **fields)
        transaction.on_commit(lambda: _publish(job.pk), robust=True)
    return job


def _publish(job_id: int) -> None:
    from .tasks import run_import  # tasks import this module

    enqueue(run_import, job_id)


def import_preview(job: ImportJob) -> tuple[list[str], list[list[str]]]:
    """The file's header and first rows, as read."""
    if not job.filename:
        return [_("The file was deleted (TIERFLOW_EXPORT_KEEP_HOURS after its import).")], []
    try:
        table = open_table(import_path(job))
    except FileError as exc:
        return [str(exc)], []
    rows = []
    try:
        for _number, cells in table.rows:
            rows.append(["" if cell is None else str(cell) for cell in cells])
            if len(rows) == PREVIEW_ROWS:
                break
    except FileError as exc:  # the report says it too, row by row
        rows.append([str(exc)])
    table.rows.close()
    return table.header, rows


def import_job_run(*, job_id: int) -> str:
    return job_run(ImportJob, job_id, step=_run, publish=_publish)


def _run(job: ImportJob) -> str:
    importer = IMPORTERS[job.kind](tiers_from_rules=job.tiers_from_rules)
    try:
        report = import_run(
            importer,
            import_path(job),
            dry_run=job.dry_run,
            # A transaction per batch, so the progress shows: the import is confirmed only
            # after a dry run found no problem (or with skip_invalid), and a row that has
            # become invalid since is left out and reported.
            skip_invalid=not job.dry_run,
            ignore_columns=job.ignore_columns,
            progress=lambda _phase, done, size: job_progress(job, processed=done, total=size),
        )
    except FileError as exc:
        return job_finish(job, report=str(exc), rejected=1)
    return job_finish(job, report="\n".join(report.lines()), rejected=report.rejected)


def import_jobs_resume() -> int:
    """Publish again the imports whose task was lost (never published, or its worker
    died: a running import beats its heart with every batch)."""
    grace = timedelta(seconds=settings.TIERFLOW_PENDING_GRACE_SECONDS)
    return jobs_resume(
        ImportJob,
        publish=_publish,
        queued_for=grace,
        silent_for=grace * 5,
        limit=settings.TIERFLOW_SWEEP_BATCH,
    )


def import_files_expire() -> int:
    """Delete the uploaded files (they hold personal data), and the rows left out beside
    them, once every job on them finished TIERFLOW_EXPORT_KEEP_HOURS ago; returns how
    many."""
    cutoff = timezone.now() - timedelta(hours=settings.TIERFLOW_EXPORT_KEEP_HOURS)
    jobs = ImportJob.objects.exclude(filename="")
    busy = jobs.filter(Q(finished_at__isnull=True) | Q(finished_at__gte=cutoff))
    kept = set(busy.values_list("filename", flat=True))
    old = set(jobs.values_list("filename", flat=True)) - kept
    for filename in old:
        with transaction.atomic():
            ImportJob.objects.filter(filename=filename).update(filename="")
            upload = Path(settings.TIERFLOW_IMPORTS_DIR) / filename
            upload.unlink(missing_ok=True)
            # The rows a run left out, with their reasons, written beside it.
            upload.with_name(upload.stem + ".rejected.csv").unlink(missing_ok=True)
    return len(old)
