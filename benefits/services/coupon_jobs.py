"""Bulk issue: an operator gives a template's coupon to every member a filter selects.

The job runs through the job runner (core.jobs) in chunks of members, in id order, one
task per chunk; each member is handled in a transaction of its own under their row lock,
so the job never holds many locks or a long transaction. A member gets at most one coupon
from a job (a unique constraint backs that up), so a chunk run twice issues nothing more."""

import logging
from contextlib import suppress
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, QuerySet
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext

from core.jobs import MORE, job_advance, job_finish, job_run, jobs_resume
from core.queue import enqueue
from members import services as member_services
from members.models import Member, Tag, Tier

from ..models import Coupon, CouponIssueJob, CouponTemplate
from ..selectors import members_for_coupon_issue
from .coupons import CouponUnavailable, coupon_issue

logger = logging.getLogger(__name__)
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
    return job_run(CouponIssueJob, job_id, step=_issue_chunk, publish=_continue, load=_load)


def _load(pk: int) -> CouponIssueJob:
    return CouponIssueJob.objects.select_related("template", "tier", "tag").get(pk=pk)


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
        moved = job_advance(
            job,
            cursor=member_ids[-1],
            done=len(member_ids),
            issued=issued,
            skipped=Greatest(F("processed") + len(member_ids) - issued, 0),
        )
        if not moved:
            return Status.RUNNING  # another task did this chunk and carries the job on
    if len(member_ids) == ISSUE_CHUNK:
        return MORE
    # Members who left the filter while the job ran were never reached: the job is
    # complete at what it processed.
    return job_finish(job, total=F("processed"))


def _issue_to(job: CouponIssueJob, member_id: int) -> None:
    """One member's coupon, in a transaction of its own under their row lock."""
    with transaction.atomic():
        member = member_services.member_lock(member_id=member_id)
        if Coupon.objects.filter(job=job, member=member).exists():
            return  # issued before this chunk was interrupted
        # Over the per-member limit or the budget: the member is counted as skipped.
        with suppress(CouponUnavailable):
            coupon_issue(member=member, template=job.template, job=job)


def coupon_issue_jobs_resume(*, queued_for: timedelta, silent_for: timedelta, limit: int) -> int:
    """Publish again the jobs whose task was lost (core.jobs.jobs_resume). A job that is
    in fact still running loses nothing: of two tasks on one chunk only one counts."""
    return jobs_resume(
        CouponIssueJob,
        publish=_continue,
        queued_for=queued_for,
        silent_for=silent_for,
        limit=limit,
    )
