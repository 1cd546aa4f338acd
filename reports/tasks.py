from celery import shared_task

from .export_jobs import members_export_run, members_exports_expire, members_exports_resume
from .rollup import reports_rollup
from .summaries import report_summary_send


@shared_task
def send_summary(kind: str) -> bool:
    return report_summary_send(kind=kind)


# The first roll-up of a large base recounts everything (README, Reports: minutes at a
# million members), as does a members export of a million; the catch-ups take seconds.
# Under the broker's visibility timeout, so a task is not handed to a second worker while
# it runs.
LONG_TASK_TIME_LIMIT = 3000


@shared_task(time_limit=LONG_TASK_TIME_LIMIT, soft_time_limit=LONG_TASK_TIME_LIMIT - 60)
def rollup() -> str:
    """Idempotent: a run covers what was recorded since the last, whenever it runs."""
    return str(reports_rollup().recorded_before)


@shared_task(time_limit=LONG_TASK_TIME_LIMIT, soft_time_limit=LONG_TASK_TIME_LIMIT - 60)
def export_members(job_id: int) -> str:
    """One task writes the whole file (an XLSX file cannot be written in parts by several
    tasks); a million members take minutes."""
    return members_export_run(job_id=job_id)


@shared_task
def sweep_members_exports() -> int:
    members_exports_resume()
    return members_exports_expire()
