"""The weekly and monthly summaries e-mailed by beat."""

import io
import zipfile
from datetime import date

import pytest
from django.conf import settings

from members.models import Member
from reports.periods import Period
from reports.summaries import report_summary_send, summary_period
from reports.tasks import send_summary


def test_the_last_whole_week_and_month():
    wednesday = date(2026, 4, 15)

    assert summary_period("weekly", wednesday) == Period(date(2026, 4, 6), date(2026, 4, 12))
    assert summary_period("monthly", wednesday) == Period(date(2026, 3, 1), date(2026, 3, 31))
    assert summary_period("monthly", date(2026, 1, 1)) == Period(
        date(2025, 12, 1), date(2025, 12, 31)
    )


@pytest.mark.django_db
def test_nothing_is_sent_without_recipients(mailoutbox, settings):
    settings.TIERFLOW_REPORT_RECIPIENTS = []

    assert send_summary("weekly") is False
    assert mailoutbox == []


@pytest.mark.django_db
def test_a_summary_is_sent_once_with_every_report(mailoutbox, settings):
    settings.TIERFLOW_REPORT_RECIPIENTS = ["lead@example.com", "cfo@example.com"]
    Member.objects.create(external_id="M-1", name="王小明", joined_at="2026-04-07T10:00:00+08:00")

    first = report_summary_send(kind="weekly", today=date(2026, 4, 15))
    again = report_summary_send(kind="weekly", today=date(2026, 4, 16))

    assert (first, again) == (True, False)
    [message] = mailoutbox
    assert message.to == ["lead@example.com", "cfo@example.com"]
    assert "2026-04-06" in message.subject
    [(filename, content, mimetype)] = message.attachments
    assert mimetype.endswith("spreadsheetml.sheet")
    assert filename == "tierflow-weekly-2026-04-06.xlsx"
    with zipfile.ZipFile(io.BytesIO(content)) as book:
        workbook = book.read("xl/workbook.xml").decode()
    assert 'name="summary"' in workbook and 'name="member-growth"' in workbook


def test_beat_sends_both_summaries():
    tasks = {entry["task"]: entry for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    kinds = sorted(
        entry["args"][0]
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] == "reports.tasks.send_summary"
    )

    assert "reports.tasks.send_summary" in tasks
    assert kinds == ["monthly", "weekly"]
