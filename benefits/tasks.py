"""Thin tasks: ids in, a service call, safe to run twice."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from .services import coupon_jobs


@shared_task
def run_coupon_issue_job(job_id: int) -> str:
    return coupon_jobs.coupon_issue_job_run(job_id=job_id)


@shared_task
def sweep_coupon_issue_jobs() -> int:
    """Publish again the bulk issues whose task was lost: never published (broker down)
    or lost with its worker."""
    # A chunk takes seconds and beats the job's heart: silent for the grace period, the
    # job's task is lost.
    grace = timedelta(seconds=settings.TIERFLOW_PENDING_GRACE_SECONDS)
    return coupon_jobs.coupon_issue_jobs_resume(
        queued_for=grace, silent_for=grace, limit=settings.TIERFLOW_SWEEP_BATCH
    )
