"""The one runner of operators' background jobs (core.models.Job).

A job runs as a chain of tasks, a chunk of members each, so no task runs long and a job
resumes where it stopped. The row is the record of the work: a task claims the job with
a conditional update (a finished job is left alone), moves the cursor on with another
(so of two tasks on one chunk, delivered twice or re-published by the sweeper while the
first still runs, only one counts it), and beats the job's heart as it goes; the sweeper
publishes again the jobs whose heart stopped. In process (the demo), chunks run in a
loop instead: a chain of nested tasks would overflow the stack on a large job."""

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from django.db.models import F, Q
from django.utils import timezone

from .models import Job
from .queue import tasks_run_in_process

logger = logging.getLogger(__name__)
Status = Job.Status
MORE = "more"  # a step's answer: a chunk is done and more remain

J = TypeVar("J", bound=Job)


def job_run(
    model: type[J],
    job_id: int,
    *,
    step: Callable[[J], str],
    publish: Callable[[int], Any],
    load: Callable[[int], J] | None = None,
) -> str:
    """Run a job: `step(job)` does one chunk and answers MORE, or the job's status once
    it has finished it (job_finish). Returns the job's status. Safe to run twice, or
    twice at once. A step that raises fails the job, with the error on the row."""
    if not model.objects.filter(pk=job_id, status__in=[Status.QUEUED, Status.RUNNING]).update(
        status=Status.RUNNING, heartbeat_at=timezone.now()
    ):
        return model.objects.get(pk=job_id).status
    load = load or model.objects.get
    try:
        while (status := step(load(pk=job_id))) == MORE:
            if not tasks_run_in_process():
                publish(job_id)
                return Status.RUNNING
    except Exception as exc:
        logger.exception("%s #%s failed", model._meta.verbose_name, job_id)
        model.objects.filter(pk=job_id).update(
            status=Status.FAILED, error=f"{type(exc).__name__}: {exc}", finished_at=timezone.now()
        )
        return Status.FAILED
    return status


def job_advance(job: Job, *, cursor: int, done: int, **fields: Any) -> bool:
    """Record a chunk done: the cursor moved on to `cursor`, `done` more members processed
    and the job's own `fields` (counts, result). False if another task moved the cursor
    first: it did this chunk and carries the job on."""
    return bool(
        type(job)
        .objects.filter(pk=job.pk, cursor=job.cursor, status=Status.RUNNING)
        .update(
            cursor=cursor,
            processed=F("processed") + done,
            heartbeat_at=timezone.now(),
            **fields,
        )
    )


def job_progress(job: Job, *, processed: int, total: int) -> None:
    """Progress of a job that is one long step (a simulation), and its sign of life."""
    type(job).objects.filter(pk=job.pk).update(
        processed=processed, total=total, heartbeat_at=timezone.now()
    )


def job_finish(job: Job, **fields: Any) -> str:
    """The job done, with its final `fields` (`total` may be an expression: members who
    left the job's selection while it ran were never reached)."""
    type(job).objects.filter(pk=job.pk, status=Status.RUNNING).update(
        status=Status.DONE, finished_at=timezone.now(), **fields
    )
    return Status.DONE


def jobs_resume(
    model: type[Job],
    *,
    publish: Callable[[int], Any],
    queued_for: timedelta,
    silent_for: timedelta,
    limit: int,
) -> int:
    """Publish again the jobs whose task was lost: still queued after `queued_for` (never
    published: the broker was down), or running with no sign of life for `silent_for`
    (their worker died). Each resumes at its cursor. Returns how many."""
    now = timezone.now()
    stalled = list(
        model.objects.filter(
            Q(status=Status.QUEUED, heartbeat_at__lte=now - queued_for)
            | Q(status=Status.RUNNING, heartbeat_at__lte=now - silent_for)
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    # Published now: wait a full period again before the next try.
    model.objects.filter(pk__in=stalled).update(heartbeat_at=now)
    for job_id in stalled:
        publish(job_id)
    if stalled:
        logger.info(
            "re-published %s %s", model._meta.verbose_name_plural, ", ".join(map(str, stalled))
        )
    return len(stalled)
