"""The one runner of operators' background jobs, on a job of each kind."""

import pytest

from benefits.models import CouponIssueJob
from core.jobs import MORE, job_advance, job_finish, job_run
from rules.models import RuleJob
from tests.factories import CouponTemplateFactory, RuleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["coupons", "rule"])
def job(request):
    if request.param == "coupons":
        return CouponIssueJob.objects.create(template=CouponTemplateFactory(), total=4)
    return RuleJob.objects.create(rule=RuleFactory(), kind="apply", total=4)


def test_steps_run_until_the_job_is_done_with_one_progress_model(job, monkeypatch):
    # given
    monkeypatch.setattr("core.jobs.tasks_run_in_process", lambda: False)  # as with a broker
    published, seen = [], []

    def step(current):
        seen.append(current.percent_done)
        job_advance(current, cursor=current.cursor + 2, done=2)
        return MORE if current.cursor < 2 else job_finish(current)

    # when
    first = job_run(type(job), job.pk, step=step, publish=published.append)
    second = job_run(type(job), job.pk, step=step, publish=published.append)
    third = job_run(type(job), job.pk, step=step, publish=published.append)

    # then: a chunk a task, handed over by publishing; a finished job is left alone
    job.refresh_from_db()
    assert (first, second, third) == ("running", "done", "done")
    assert published == [job.pk]
    assert seen == [0, 50]
    assert (job.status, job.processed, job.cursor, job.percent_done) == ("done", 4, 4, 100)


def test_a_chunk_counts_only_for_the_task_that_moves_the_cursor(job):
    # given: two tasks holding the job as it stood before either did the chunk
    job.status = "running"
    job.save()
    stale = type(job).objects.get(pk=job.pk)

    # when
    moved = [job_advance(job, cursor=10, done=3), job_advance(stale, cursor=10, done=3)]

    # then
    job.refresh_from_db()
    assert moved == [True, False]
    assert (job.cursor, job.processed) == (10, 3)


def test_a_step_that_raises_fails_the_job_with_the_error(job):
    def step(current):
        raise RuntimeError("disk full")

    status = job_run(type(job), job.pk, step=step, publish=lambda pk: None)

    job.refresh_from_db()
    assert (status, job.status, job.error) == ("failed", "failed", "RuntimeError: disk full")
    assert job.finished_at is not None
