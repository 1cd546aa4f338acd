"""Thin tasks: ids in, a service call, safe to run twice."""

from datetime import date, timedelta

from celery import shared_task
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone

from core.queue import coalesced_started

from .services import daily, evaluation, jobs


@shared_task(
    autoretry_for=(OperationalError,),  # lock timeouts, a dropped connection, a deadlock
    retry_backoff=2,
    retry_backoff_max=120,
    max_retries=8,
)
def evaluate_waiting() -> int:
    """Evaluate the members with waiting events, batch after batch (services.evaluation).
    Takes no ids: the database says what waits."""
    coalesced_started(evaluate_waiting)
    return evaluation.waiting_drain(seconds=settings.TIERFLOW_EVALUATION_DRAIN_SECONDS)


@shared_task
def evaluate(*args) -> int:
    """The task of earlier versions (one per event, with ids), still in a queue after an
    upgrade: the events it named are waiting like any other."""
    return evaluate_waiting()


@shared_task
def sweep_pending() -> int:
    """Publish an evaluation if members have waited longer than the grace period: their
    task was never published (broker down) or was lost with its worker."""
    return evaluation.waiting_enqueue(
        older_than=timedelta(seconds=settings.TIERFLOW_PENDING_GRACE_SECONDS)
    )


@shared_task
def run_daily(on_date: str | None = None) -> int:
    """Celery beat's daily job: today's clock triggers, one task per batch of members."""
    day = date.fromisoformat(on_date) if on_date else timezone.localdate()
    return daily.clock_triggers_enqueue(day)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=2, max_retries=8)
def evaluate_clock_batch(trigger: str, member_ids: list[int], on_date: str) -> int:
    return daily.clock_batch_evaluate(
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
