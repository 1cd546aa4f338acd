"""Bulk issue from the admin: a template's coupon to every member a filter selects, in
chunks run in the background, resuming where it stopped without issuing twice, with its
progress on the job's page."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from benefits.models import Coupon, CouponIssueJob
from benefits.services import coupon_jobs
from benefits.services.coupon_jobs import coupon_issue_job_start
from benefits.services.coupons import coupon_issue
from benefits.tasks import run_coupon_issue_job, sweep_coupon_issue_jobs
from members.models import Member, Tag
from tests.factories import CouponTemplateFactory, MemberFactory, TierFactory
from tests.helpers import broker_down

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def template():
    return CouponTemplateFactory(code="spring", name="春季满300减50")


@pytest.fixture
def operator(db) -> User:
    return User.objects.create_user("operator", is_staff=True)


def start(capture, template, **filters) -> CouponIssueJob:
    """Start a job and run it as the worker would, after the transaction commits."""
    with capture(execute=True):
        job = coupon_issue_job_start(template=template, **filters)
    job.refresh_from_db()
    return job


def holders(template) -> set[str]:
    return set(
        Coupon.objects.filter(template=template).values_list("member__external_id", flat=True)
    )


def counts(job) -> tuple:
    job.refresh_from_db()
    return job.status, job.total, job.processed, job.issued, job.skipped


# --- the job --------------------------------------------------------------------------


def test_a_job_issues_one_coupon_to_each_member_the_filter_selects(
    template, operator, django_capture_on_commit_callbacks
):
    # given: Gold members with the vip tag who joined in 2025 and spent 1000 or more
    gold, silver = TierFactory(code="gold", rank=2), TierFactory(code="silver", rank=1)
    vip = Tag.objects.create(code="vip", name="大客户")
    joined = datetime(2025, 6, 1, 12, tzinfo=SHANGHAI)

    def member(external_id, *, tier=gold, tags=(vip,), joined_at=joined, spend=1000):
        made = MemberFactory(
            external_id=external_id, tier=tier, joined_at=joined_at, lifetime_spend=Decimal(spend)
        )
        made.tags.set(tags)
        return made

    member("YES-1")
    member("YES-2", spend=5000, joined_at=datetime(2025, 12, 31, 23, 30, tzinfo=SHANGHAI))
    member("SILVER", tier=silver)
    member("NO-TAG", tags=())
    member("EARLY", joined_at=datetime(2024, 12, 31, 23, 59, tzinfo=SHANGHAI))
    member("LATE", joined_at=datetime(2026, 1, 1, 0, 0, tzinfo=SHANGHAI))
    member("SMALL", spend="999.99")

    # when
    job = start(
        django_capture_on_commit_callbacks,
        template,
        created_by=operator,
        tier=gold,
        tag=vip,
        joined_from=datetime(2025, 1, 1).date(),
        joined_until=datetime(2025, 12, 31).date(),
        min_lifetime_spend=Decimal(1000),
    )

    # then
    assert holders(template) == {"YES-1", "YES-2"}
    assert counts(job) == ("done", 2, 2, 2, 0)
    assert (job.created_by, job.cursor, job.percent_done) == (
        operator,
        Member.objects.get(external_id="YES-2").pk,
        100,
    )
    assert job.finished_at is not None
    assert set(Coupon.objects.values_list("job_id", flat=True)) == {job.pk}


def test_members_over_the_limit_or_the_budget_are_skipped(django_capture_on_commit_callbacks):
    # given: one per member, three in all; one of five members already holds one
    template = CouponTemplateFactory(per_member_limit=1, budget=3)
    members = [MemberFactory() for _ in range(5)]
    coupon_issue(member=members[0], template=template)

    # when
    job = start(django_capture_on_commit_callbacks, template)

    # then: members 1 and 2 get the last two of the budget
    assert counts(job) == ("done", 5, 5, 2, 3)
    assert holders(template) == {m.external_id for m in members[:3]}


def test_members_who_join_while_the_job_runs_are_not_part_of_it(
    template, monkeypatch, django_capture_on_commit_callbacks
):
    # given: the job starts, but its task has not run yet
    monkeypatch.setattr(coupon_jobs, "_continue", lambda job_id: None)
    monkeypatch.setattr("core.jobs.tasks_run_in_process", lambda: False)  # as with a broker
    MemberFactory(external_id="BEFORE")
    with django_capture_on_commit_callbacks(execute=True):
        job = coupon_issue_job_start(template=template)
    with time_machine.travel(timezone.now() + timedelta(seconds=1)):
        MemberFactory(external_id="AFTER")

    # when
    run_coupon_issue_job(job.pk)

    # then
    assert holders(template) == {"BEFORE"}
    assert counts(job) == ("done", 1, 1, 1, 0)


def test_each_chunk_hands_over_to_the_next_task_with_its_progress(
    template, monkeypatch, django_capture_on_commit_callbacks
):
    # given: chunks of two; the hand-over is recorded, not run, so each chunk can be watched
    monkeypatch.setattr(coupon_jobs, "ISSUE_CHUNK", 2)
    handed_over = []
    monkeypatch.setattr(coupon_jobs, "_continue", handed_over.append)
    monkeypatch.setattr("core.jobs.tasks_run_in_process", lambda: False)  # as with a broker
    for _ in range(5):
        MemberFactory()
    with django_capture_on_commit_callbacks(execute=True):
        job = coupon_issue_job_start(template=template)
    assert handed_over == [job.pk]
    progress = []

    # when
    for _ in range(3):
        status = run_coupon_issue_job(job.pk)
        job.refresh_from_db()
        progress.append((status, job.processed, job.total, job.issued, job.percent_done))

    # then
    assert progress == [
        ("running", 2, 5, 2, 40),
        ("running", 4, 5, 4, 80),
        ("done", 5, 5, 5, 100),
    ]
    assert handed_over == [job.pk, job.pk, job.pk]


def test_a_job_resumes_after_a_worker_died_midway_through_a_chunk_without_issuing_twice(
    template, monkeypatch, django_capture_on_commit_callbacks
):
    # given: the first chunk done; of the second, one member got their coupon before the
    # worker died (the cursor did not move past them)
    monkeypatch.setattr(coupon_jobs, "ISSUE_CHUNK", 2)
    monkeypatch.setattr(coupon_jobs, "_continue", lambda job_id: None)
    monkeypatch.setattr("core.jobs.tasks_run_in_process", lambda: False)  # as with a broker
    members = [MemberFactory() for _ in range(5)]
    with django_capture_on_commit_callbacks(execute=True):
        job = coupon_issue_job_start(template=template)
    run_coupon_issue_job(job.pk)
    coupon_issue(member=members[2], template=template, job=job)

    # when: the task is delivered again, and the job runs to its end
    statuses = [run_coupon_issue_job(job.pk) for _ in range(3)]

    # then: every member has exactly one coupon, counted once
    assert statuses == ["running", "done", "done"]
    assert sorted(Coupon.objects.values_list("member_id", flat=True)) == [m.pk for m in members]
    assert counts(job) == ("done", 5, 5, 5, 0)
    assert job.cursor == members[-1].pk


def test_a_chunk_counts_only_for_the_task_that_moves_the_cursor(
    template, monkeypatch, django_capture_on_commit_callbacks
):
    # given: two deliveries of one task; the first finishes the job
    monkeypatch.setattr(coupon_jobs, "_continue", lambda job_id: None)
    monkeypatch.setattr("core.jobs.tasks_run_in_process", lambda: False)  # as with a broker
    members = [MemberFactory() for _ in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        job = coupon_issue_job_start(template=template)
    late = CouponIssueJob.objects.select_related("template").get(pk=job.pk)
    run_coupon_issue_job(job.pk)
    CouponIssueJob.objects.filter(pk=job.pk).update(status="running")

    # when: the second, which read the job before the first moved on, does its chunk
    status = coupon_jobs._issue_chunk(late)

    # then: nothing twice, nothing counted twice
    assert status == "running"
    assert Coupon.objects.count() == len(members)
    assert counts(job)[2:] == (3, 3, 0)


def test_running_a_finished_job_again_issues_nothing(template, django_capture_on_commit_callbacks):
    # given
    MemberFactory()
    job = start(django_capture_on_commit_callbacks, template)

    # when
    again = run_coupon_issue_job(job.pk)

    # then
    assert again == "done"
    assert Coupon.objects.count() == 1


def test_a_job_whose_task_was_never_published_is_resumed_by_the_sweeper(
    template, django_capture_on_commit_callbacks
):
    # given: the broker was down when the job started
    MemberFactory(external_id="M-1")
    with broker_down(), django_capture_on_commit_callbacks(execute=True):
        job = coupon_issue_job_start(template=template)
    assert counts(job)[0] == "queued"
    fresh = CouponIssueJob.objects.create(template=template)  # started later: left alone
    done = CouponIssueJob.objects.create(template=template, status="done")

    # when: a sweep within the grace period, then one after it
    assert sweep_coupon_issue_jobs() == 0
    CouponIssueJob.objects.filter(pk=fresh.pk).update(
        heartbeat_at=timezone.now() + timedelta(minutes=2)
    )
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        resumed = sweep_coupon_issue_jobs()

    # then
    assert resumed == 1
    assert counts(job) == ("done", 1, 1, 1, 0)
    assert holders(template) == {"M-1"}
    assert counts(fresh)[0] == "queued"
    assert counts(done)[0] == "done"


def test_a_running_job_is_swept_only_when_its_heart_stopped(template, monkeypatch):
    # given: a job whose task did a chunk a moment ago, and one that went quiet
    long_ago = timezone.now() - timedelta(hours=1)
    busy = CouponIssueJob.objects.create(template=template, status="running", created_at=long_ago)
    quiet = CouponIssueJob.objects.create(
        template=template, status="running", created_at=long_ago, heartbeat_at=long_ago
    )
    resumed = []
    monkeypatch.setattr(coupon_jobs, "_continue", resumed.append)

    # when
    sweep_coupon_issue_jobs()

    # then
    assert resumed == [quiet.pk]
    assert CouponIssueJob.objects.get(pk=busy.pk).status == "running"


def test_a_job_that_fails_records_the_error(
    template, monkeypatch, django_capture_on_commit_callbacks
):
    # given
    MemberFactory()

    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(coupon_jobs, "coupon_issue", broken)

    # when
    job = start(django_capture_on_commit_callbacks, template)

    # then
    assert (job.status, job.error) == ("failed", "RuntimeError: disk full")
    assert job.finished_at is not None


def test_an_ended_template_or_reversed_dates_are_refused(template):
    ended = CouponTemplateFactory(valid_days=None, valid_until=timezone.now() - timedelta(days=1))
    with pytest.raises(ValidationError, match="validity has ended"):
        coupon_issue_job_start(template=ended)
    with pytest.raises(ValidationError) as refused:
        coupon_issue_job_start(
            template=template,
            joined_from=datetime(2026, 2, 1).date(),
            joined_until=datetime(2026, 1, 1).date(),
        )
    assert list(refused.value.message_dict) == ["joined_until"]
    assert not CouponIssueJob.objects.exists()


# --- the admin ------------------------------------------------------------------------


def issue_url(template) -> str:
    return reverse("admin:benefits_coupontemplate_issue", args=[template.pk])


def test_the_template_page_has_an_issue_button(admin_client, template):
    page = admin_client.get(reverse("admin:benefits_coupontemplate_change", args=[template.pk]))
    assert f'href="{issue_url(template)}"' in page.content.decode()
    assert "Issue to members…" in page.content.decode()


def test_the_issue_form_counts_the_members_the_filter_selects(admin_client, template):
    # given
    gold = TierFactory(code="gold", rank=2)
    MemberFactory(tier=gold)
    MemberFactory(tier=gold)
    MemberFactory(tier=None)

    # when
    everyone = admin_client.get(issue_url(template))
    filtered = admin_client.post(issue_url(template), {"tier": gold.pk, "_count": "Count members"})

    # then
    assert everyone.status_code == filtered.status_code == 200
    assert "The filter selects 3 members." in everyone.content.decode()
    assert "The filter selects 2 members." in filtered.content.decode()
    assert not CouponIssueJob.objects.exists()


def test_issuing_from_the_admin_starts_the_job_and_opens_its_page(
    admin_client, template, django_capture_on_commit_callbacks
):
    # given
    gold = TierFactory(code="gold", rank=2)
    chosen = MemberFactory(tier=gold)
    MemberFactory(tier=None)

    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            issue_url(template), {"tier": gold.pk, "_issue": "Issue coupons"}
        )

    # then
    job = CouponIssueJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:benefits_couponissuejob_change", args=[job.pk])
    assert (job.template, job.tier, job.created_by.username) == (template, gold, "boss")
    assert counts(job) == ("done", 1, 1, 1, 0)
    assert list(Coupon.objects.values_list("member", flat=True)) == [chosen.pk]


def test_the_issue_form_explains_mistakes(admin_client, template):
    response = admin_client.post(
        issue_url(template),
        {"joined_from": "2026-02-01", "joined_until": "2026-01-01", "_issue": "Issue"},
    )
    assert response.status_code == 200
    assert "Must be on or after" in response.content.decode()
    assert not CouponIssueJob.objects.exists()


def test_an_ended_template_is_refused_with_a_message(admin_client):
    ended = CouponTemplateFactory(valid_days=None, valid_until=timezone.now() - timedelta(days=1))
    response = admin_client.post(issue_url(ended), {"_issue": "Issue"}, follow=True)
    assert "This coupon template&#x27;s validity has ended." in response.content.decode()
    assert not CouponIssueJob.objects.exists()


def test_staff_without_permission_to_change_templates_cannot_issue(client, template, operator):
    client.force_login(operator)
    assert client.get(issue_url(template)).status_code == 403


def test_the_job_page_shows_progress_and_refreshes_until_done(admin_client, template):
    # given
    running = CouponIssueJob.objects.create(
        template=template, status="running", total=5, processed=2, issued=1, skipped=1
    )
    done = CouponIssueJob.objects.create(
        template=template, status="done", total=1, processed=1, issued=1
    )

    # when
    running_page = admin_client.get(
        reverse("admin:benefits_couponissuejob_change", args=[running.pk])
    )
    done_page = admin_client.get(reverse("admin:benefits_couponissuejob_change", args=[done.pk]))
    listing = admin_client.get(reverse("admin:benefits_couponissuejob_changelist"))

    # then
    refresh = '<meta http-equiv="refresh" content="2">'
    assert refresh in running_page.content.decode()
    assert "40% (2 / 5)" in running_page.content.decode()
    assert "all members" in running_page.content.decode()
    assert refresh not in done_page.content.decode()
    assert "40% (2 / 5)" in listing.content.decode()


def test_the_job_page_links_to_the_coupons_it_issued(
    admin_client, template, django_capture_on_commit_callbacks
):
    # given
    MemberFactory(external_id="M-1")
    job = start(django_capture_on_commit_callbacks, template)
    other = coupon_issue(member=MemberFactory(external_id="M-2"), template=template)

    # when
    page = admin_client.get(reverse("admin:benefits_couponissuejob_change", args=[job.pk]))
    coupons_url = reverse("admin:benefits_coupon_changelist") + f"?job__id__exact={job.pk}"
    coupons = admin_client.get(coupons_url)

    # then
    assert f'href="{coupons_url}"' in page.content.decode()
    assert coupons.status_code == 200
    [listed] = coupons.context["cl"].result_list
    assert listed.member.external_id == "M-1"
    assert listed != other


@pytest.mark.parametrize(
    "name", ["benefits_coupontemplate_issue", "benefits_coupontemplate_change"]
)
def test_the_bulk_issue_pages_render_in_simplified_chinese(admin_client, template, name):
    response = admin_client.get(
        reverse(f"admin:{name}", args=[template.pk]), HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    assert response.status_code == 200
    assert 'lang="zh-hans"' in response.content.decode()
