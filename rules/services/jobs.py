"""Operators' background jobs on a rule: apply it to the members who already qualify, or
simulate it on past data. Progress is kept on the job row for the admin to show."""

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from core.queue import enqueue, tasks_run_in_process

from ..models import Rule, RuleJob
from ..selectors.preview import members_matching
from ..selectors.simulation import rule_simulate
from .evaluation import members_apply_rule

logger = logging.getLogger(__name__)
Status = RuleJob.Status
# Members an "apply" task handles before handing over to the next task: short tasks,
# well within the broker's visibility timeout, and a job that resumes where it stopped.
APPLY_CHUNK = 1000
MORE = "more"  # a chunk is done and more members remain


def rule_job_start(
    *,
    rule: Rule,
    kind: str,
    created_by: AbstractBaseUser | None = None,
    send_notifications: bool = True,
    days: int | None = None,
) -> RuleJob:
    if kind == RuleJob.Kind.APPLY and not rule.is_live():
        raise ValidationError(gettext("Only an active rule can be applied to existing members."))
    if kind == RuleJob.Kind.APPLY and (unchecked := members_matching(rule).unchecked):
        numbers = ", ".join(map(str, unchecked))
        raise ValidationError(
            gettext(
                "Condition(s) %(numbers)s are about the triggering event (its amount or kind); "
                "outside the event they cannot hold, so applying this rule would fire nothing."
            )
            % {"numbers": numbers}
        )
    if kind == RuleJob.Kind.SIMULATE and not days:
        raise ValidationError({"days": gettext("Give the number of days to replay.")})
    job = RuleJob.objects.create(
        rule=rule,
        kind=kind,
        created_by=created_by,
        send_notifications=send_notifications,
        days=days if kind == RuleJob.Kind.SIMULATE else None,
    )
    transaction.on_commit(lambda: _continue(job.pk), robust=True)
    return job


def _continue(job_id: int) -> None:
    from ..tasks import run_rule_job  # tasks import services

    enqueue(run_rule_job, job_id)


def rule_job_run(*, job_id: int) -> str:
    """Run (a chunk of) a job. Safe to run twice: a finished job is left alone, and
    firings are unique per member and job."""
    if not RuleJob.objects.filter(pk=job_id, status__in=[Status.QUEUED, Status.RUNNING]).update(
        status=Status.RUNNING, heartbeat_at=timezone.now()
    ):
        return RuleJob.objects.get(pk=job_id).status
    job = RuleJob.objects.select_related("rule").get(pk=job_id)
    try:
        if job.kind == RuleJob.Kind.APPLY:
            # In-process (the demo), chunks run in a loop: a chain of nested tasks would
            # overflow the stack on a large job.
            while (status := _apply_chunk(job)) == MORE and tasks_run_in_process():
                job.refresh_from_db()
                RuleJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
            if status == MORE:
                _continue(job.pk)
                return Status.RUNNING
            return status
        result = rule_simulate(
            job.rule, days=job.days, progress=lambda done, total: _progress(job, done, total)
        )
    except Exception as exc:
        logger.exception("rule job #%s failed", job_id)
        RuleJob.objects.filter(pk=job_id).update(
            status=Status.FAILED, error=f"{type(exc).__name__}: {exc}", finished_at=timezone.now()
        )
        return Status.FAILED
    return _finish(job, result)


def _apply_chunk(job: RuleJob) -> str:
    rule = Rule.objects.prefetch_related("conditions__event_kind", "actions").get(pk=job.rule_id)
    candidates = members_matching(rule).members.order_by("pk")
    if job.cursor == 0 and job.processed == 0:
        job.total = candidates.count()
        job.result = {"fired": 0}
        RuleJob.objects.filter(pk=job.pk).update(total=job.total, result=job.result)
    member_ids = list(
        candidates.filter(pk__gt=job.cursor).values_list("pk", flat=True)[:APPLY_CHUNK]
    )
    batch = settings.TIERFLOW_EVALUATION_BATCH
    fired = sum(
        len(members_apply_rule(member_ids=member_ids[start : start + batch], rule=rule, job=job))
        for start in range(0, len(member_ids), batch)
    )
    if member_ids:
        job.result["fired"] = job.result.get("fired", 0) + fired
        RuleJob.objects.filter(pk=job.pk).update(
            cursor=member_ids[-1], processed=job.processed + len(member_ids), result=job.result
        )
    if len(member_ids) == APPLY_CHUNK:
        return MORE
    job.refresh_from_db()
    # Members the job fired for may since have stopped matching the candidates' query.
    RuleJob.objects.filter(pk=job.pk).update(processed=job.total)
    return _finish(job, job.result)


def _progress(job: RuleJob, done: int, total: int) -> None:
    RuleJob.objects.filter(pk=job.pk).update(
        processed=done, total=total, heartbeat_at=timezone.now()
    )


def rule_jobs_resume(*, queued_for: timedelta, silent_for: timedelta, limit: int) -> int:
    """Publish again the jobs whose task was lost: still queued after `queued_for` (never
    published: the broker was down), or running with no sign of life for `silent_for`
    (longer than any task may run: its worker died). An apply job resumes at its cursor,
    firing nobody twice; a simulation starts again (it writes nothing but its result)."""
    now = timezone.now()
    stalled = list(
        RuleJob.objects.filter(
            Q(status=Status.QUEUED, heartbeat_at__lte=now - queued_for)
            | Q(status=Status.RUNNING, heartbeat_at__lte=now - silent_for)
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    # Published now: wait a full period again before the next try.
    RuleJob.objects.filter(pk__in=stalled).update(heartbeat_at=now)
    for job_id in stalled:
        _continue(job_id)
    if stalled:
        logger.info("re-published rule jobs %s", ", ".join(map(str, stalled)))
    return len(stalled)


def _finish(job: RuleJob, result: dict) -> str:
    RuleJob.objects.filter(pk=job.pk).update(
        status=Status.DONE, result=result, finished_at=timezone.now()
    )
    return Status.DONE
