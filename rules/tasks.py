"""Thin tasks: ids in, a service call, safe to run twice."""

from datetime import date, timedelta

from celery import shared_task
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone

from .services import clock, evaluation, jobs


@shared_task(
    autoretry_for=(OperationalError,),  # lock timeouts, a dropped connection
    retry_backoff=2,
    retry_backoff_max=120,
    max_retries=8,
)
def evaluate(
    member_id: int, trigger: str, subject_id: int | None = None, on_date: str | None = None
) -> int:
    return len(
        evaluation.member_evaluate(
            member_id=member_id,
            trigger=trigger,
            subject_id=subject_id,
            on_date=date.fromisoformat(on_date) if on_date else None,
        ).fired
    )


@shared_task
def sweep_pending() -> int:
    """Publish again the evaluations of orders, refunds, engagements and new members
    still pending after the grace period: never published (broker down) or lost with
    their worker."""
    return evaluation.pending_enqueue(
        older_than=timedelta(seconds=settings.TIERFLOW_PENDING_GRACE_SECONDS),
        limit=settings.TIERFLOW_SWEEP_BATCH,
    )


@shared_task
def run_daily(on_date: str | None = None) -> int:
    """Celery beat's daily job: today's clock triggers, one task per batch of members."""
    day = date.fromisoformat(on_date) if on_date else timezone.localdate()
    return clock.clock_triggers_enqueue(day)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=2, max_retries=8)
def evaluate_clock_batch(trigger: str, member_ids: list[int], on_date: str) -> int:
    return clock.clock_batch_evaluate(
        trigger=trigger, member_ids=member_ids, on_date=date.fromisoformat(on_date)
    )


@shared_task
def sweep_rule_jobs() -> int:
    """Publish again the rule jobs whose task was lost (broker down, worker died)."""
    return jobs.rule_jobs_resume(
        queued_for=timedelta(seconds=settings.TIERFLOW_PENDING_GRACE_SECONDS),
        silent_for=timedelta(seconds=2 * settings.CELERY_TASK_TIME_LIMIT),
        limit=settings.TIERFLOW_SWEEP_BATCH,
    )


@shared_task
def run_rule_job(job_id: int) -> str:
    return jobs.rule_job_run(job_id=job_id)
