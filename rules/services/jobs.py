"""Operators' background jobs on a rule: apply it to the members who already qualify, or
simulate it on past data. Progress is kept on the job row for the admin to show."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext

from core.jobs import MORE, job_advance, job_finish, job_progress, job_run, jobs_resume
from core.queue import enqueue

from ..models import Rule, RuleFiring, RuleJob
from ..selectors.preview import members_matching
from ..selectors.simulation import rule_simulate
from .evaluation import members_apply_rule

Status = RuleJob.Status
# Members an "apply" task handles before handing over to the next task: short tasks,
# well within the broker's visibility timeout, and a job that resumes where it stopped.
APPLY_CHUNK = 1000


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
    """Run (a chunk of) a job through the job runner. Safe to run twice: a finished job
    is left alone, and firings are unique per member and job."""
    return job_run(RuleJob, job_id, step=_step, publish=_continue, load=_load)


def _load(pk: int) -> RuleJob:
    return RuleJob.objects.select_related("rule").get(pk=pk)


def _step(job: RuleJob) -> str:
    if job.kind == RuleJob.Kind.APPLY:
        return _apply_chunk(job)
    result = rule_simulate(
        job.rule,
        days=job.days,
        progress=lambda done, total: job_progress(job, processed=done, total=total),
    )
    return job_finish(job, result=result)


def _apply_chunk(job: RuleJob) -> str:
    rule = Rule.objects.prefetch_related("conditions__event_kind", "actions").get(pk=job.rule_id)
    candidates = members_matching(rule).members.order_by("pk")
    if job.cursor == 0 and job.processed == 0 and not job.total:
        RuleJob.objects.filter(pk=job.pk).update(total=candidates.count(), result={"fired": 0})
    member_ids = list(
        candidates.filter(pk__gt=job.cursor).values_list("pk", flat=True)[:APPLY_CHUNK]
    )
    batch = settings.TIERFLOW_EVALUATION_BATCH
    for start in range(0, len(member_ids), batch):
        members_apply_rule(member_ids=member_ids[start : start + batch], rule=rule, job=job)
    # Counted from the firings themselves, so those of a chunk that a task did before it
    # died count once however often the chunk runs again.
    result = {"fired": RuleFiring.objects.filter(job=job).count()}
    if member_ids and not job_advance(
        job, cursor=member_ids[-1], done=len(member_ids), result=result
    ):
        return Status.RUNNING  # another task did this chunk and carries the job on
    if len(member_ids) == APPLY_CHUNK:
        return MORE
    # Members the job fired for may since have stopped matching the candidates' query.
    return job_finish(job, total=F("processed"), result=result)


def rule_jobs_resume(*, queued_for: timedelta, silent_for: timedelta, limit: int) -> int:
    """Publish again the jobs whose task was lost (core.jobs.jobs_resume). An apply job
    resumes at its cursor, firing nobody twice; a simulation starts again (it writes
    nothing but its result)."""
    return jobs_resume(
        RuleJob, publish=_continue, queued_for=queued_for, silent_for=silent_for, limit=limit
    )
