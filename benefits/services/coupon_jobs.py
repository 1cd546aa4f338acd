"""Bulk issue: an operator gives a template's coupon to every member a filter selects.

The job runs in the background in chunks of members, in id order, one task per chunk;
each member is handled in a transaction of its own under their row lock, so the job never
holds many locks or a long transaction. The job row is the record of the work: its cursor
(the last member id done) moves on with a conditional update, so a task delivered twice,
or re-published by the sweeper while another still runs, does a chunk at most once; and
a member gets at most one coupon from a job (a unique constraint backs that up)."""

import logging
from contextlib import suppress
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Max, QuerySet
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from django.utils.translation import gettext

from core.queue import enqueue, tasks_run_in_process
from members import services as member_services
from members.models import Member, Tag, Tier

from ..models import Coupon, CouponIssueJob, CouponTemplate
from ..selectors import members_for_coupon_issue
from .coupons import CouponUnavailable, coupon_issue

logger = logging.getLogger(__name__)
MORE = "more"  # a chunk is done and more members remain
Status = CouponIssueJob.Status
# Members one task handles before handing over to the next: a few seconds of work, well
# within the task time limit, and progress the admin can show as it goes.
ISSUE_CHUNK = 500
FILTERS = ("tier", "tag", "joined_from", "joined_until", "min_lifetime_spend")


def coupon_issue_job_start(
    *,
    template: CouponTemplate,
    created_by: AbstractBaseUser | None = None,
    tier: Tier | None = None,
    tag: Tag | None = None,
    joined_from: date | None = None,
    joined_until: date | None = None,
    min_lifetime_spend: Decimal | None = None,
) -> CouponIssueJob:
    """Record the job and publish its first task once the caller's transaction commits."""
    _, expires_at = template.validity_from(timezone.now())
    if expires_at <= timezone.now():
        raise ValidationError(gettext("This coupon template's validity has ended."))
    if joined_from and joined_until and joined_until < joined_from:
        raise ValidationError(
            {"joined_until": gettext("Must be on or after 'joined on or after'.")}
        )
    filters = {
        "tier": tier,
        "tag": tag,
        "joined_from": joined_from,
        "joined_until": joined_until,
        "min_lifetime_spend": min_lifetime_spend,
    }
    with transaction.atomic():
        job = CouponIssueJob.objects.create(template=template, created_by=created_by, **filters)
        job.total = job_members(job).count()
        job.save(update_fields=["total"])
        transaction.on_commit(lambda: _continue(job.pk), robust=True)
    return job


def job_members(job: CouponIssueJob) -> QuerySet[Member]:
    """The job's filter, over the members who existed when it started: members who join
    while it runs are not part of it."""
    members = members_for_coupon_issue(**{name: getattr(job, name) for name in FILTERS})
    return members.filter(created_at__lte=job.created_at)


def _continue(job_id: int) -> None:
    from ..tasks import run_coupon_issue_job  # tasks import services

    enqueue(run_coupon_issue_job, job_id)


def coupon_issue_job_run(*, job_id: int) -> str:
    """Run the next chunk of a job; returns its status. Safe to run twice, or twice at
    once: a finished job is left alone, and a chunk counts only for the task that moves
    the cursor past it."""
    if not CouponIssueJob.objects.filter(
        pk=job_id, status__in=[Status.QUEUED, Status.RUNNING]
    ).update(status=Status.RUNNING):
        return CouponIssueJob.objects.get(pk=job_id).status
    try:
        # In-process (the demo), chunks run in a loop: a chain of nested tasks would
        # overflow the stack on a large job.
        while (status := _issue_chunk(_job(job_id))) == MORE and tasks_run_in_process():
            pass
        if status == MORE:
            _continue(job_id)
            return Status.RUNNING
        return status
    except Exception as exc:
        logger.exception("coupon issue job #%s failed", job_id)
        CouponIssueJob.objects.filter(pk=job_id).update(
            status=Status.FAILED, error=f"{type(exc).__name__}: {exc}", finished_at=timezone.now()
        )
        return Status.FAILED


def _job(job_id: int) -> CouponIssueJob:
    return CouponIssueJob.objects.select_related("template", "tier", "tag").get(pk=job_id)


def _issue_chunk(job: CouponIssueJob) -> str:
    member_ids = list(
        job_members(job)
        .filter(pk__gt=job.cursor)
        .order_by("pk")
        .values_list("pk", flat=True)[:ISSUE_CHUNK]
    )
    for member_id in member_ids:
        _issue_to(job, member_id)
    if member_ids:
        # Counted from the coupons themselves, so coupons a task issued before it died
        # count once, as issued, however often their chunk is run again.
        issued = Coupon.objects.filter(job=job).count()
        moved = CouponIssueJob.objects.filter(pk=job.pk, cursor=job.cursor).update(
            cursor=member_ids[-1],
            processed=F("processed") + len(member_ids),
            issued=issued,
            skipped=Greatest(F("processed") + len(member_ids) - issued, 0),
        )
        if not moved:
            return Status.RUNNING  # another task did this chunk and carries the job on
    if len(member_ids) == ISSUE_CHUNK:
        return MORE
    # Members who left the filter while the job ran were never reached: the job is
    # complete at what it processed.
    CouponIssueJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(
        status=Status.DONE, total=F("processed"), finished_at=timezone.now()
    )
    return Status.DONE


def _issue_to(job: CouponIssueJob, member_id: int) -> None:
    """One member's coupon, in a transaction of its own under their row lock."""
    with transaction.atomic():
        member = member_services.member_lock(member_id=member_id)
        if Coupon.objects.filter(job=job, member=member).exists():
            return  # issued before this chunk was interrupted
        # Over the per-member limit or the budget: the member is counted as skipped.
        with suppress(CouponUnavailable):
            coupon_issue(member=member, template=job.template, job=job)


def coupon_issue_jobs_resume(*, older_than: timedelta, limit: int) -> int:
    """Publish again the jobs left unfinished with no sign of life for `older_than`: their
    task was never published (the broker was down) or was lost with its worker. A job that
    is in fact still running loses nothing: of two tasks on one chunk only one counts."""
    cutoff = timezone.now() - older_than
    stalled = list(
        CouponIssueJob.objects.filter(status__in=[Status.QUEUED, Status.RUNNING])
        .annotate(last_issue=Coalesce(Max("coupons__issued_at"), F("created_at")))
        .filter(last_issue__lte=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    for job_id in stalled:
        _continue(job_id)
    if stalled:
        logger.info("re-published coupon issue jobs %s", ", ".join(map(str, stalled)))
    return len(stalled)
