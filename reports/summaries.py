"""The weekly and monthly summaries: the headline figures and every report's table for the
last whole week (Monday to Sunday) or month, by day, as an XLSX attachment e-mailed to
TIERFLOW_REPORT_RECIPIENTS. Nothing is sent when that setting is empty; a period's
summary is sent once."""

import io
from datetime import date, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.utils import timezone

from .exports import XLSX, xlsx_write
from .models import SummarySent
from .periods import Interval, Period
from .registry import REPORTS, Column, Kind
from .tables import headline, report_table

WEEKLY, MONTHLY = "weekly", "monthly"


def summary_period(kind: str, today: date) -> Period:
    if kind == WEEKLY:
        monday = today - timedelta(days=today.weekday() + 7)
        return Period(monday, monday + timedelta(days=6), Interval.DAY)
    if kind == MONTHLY:
        last = today.replace(day=1) - timedelta(days=1)
        return Period(last.replace(day=1), last, Interval.DAY)
    raise ValueError(f"Unknown summary kind: {kind}")


def summary_workbook(period: Period) -> bytes:
    tables = {name: report_table(report, period) for name, report in REPORTS.items()}
    figures = [
        [str(label), value, str(definition)] for label, value, definition in headline(tables)
    ]
    summary = [
        Column("figure", Kind.TEXT),
        Column("value", Kind.TEXT),
        Column("definition", Kind.TEXT),
    ]
    sheets = [("summary", summary, figures)]
    sheets += [(name, columns, rows) for name, (columns, rows) in tables.items()]
    out = io.BytesIO()
    xlsx_write(out, sheets=sheets)
    return out.getvalue()


def report_summary_send(*, kind: str, today: date | None = None) -> bool:
    """E-mail the summary of the last whole week or month; False when there is nobody to
    send it to or it was sent already. The reports are computed before anything is
    written; the period is claimed in a short transaction, and the claim given back if
    the mail cannot be sent, so that the next run tries again."""
    recipients = settings.TIERFLOW_REPORT_RECIPIENTS
    if not recipients:
        return False
    period = summary_period(kind, today or timezone.localdate())
    if SummarySent.objects.filter(kind=kind, period_start=period.start).exists():
        return False
    workbook = summary_workbook(period)
    try:
        with transaction.atomic():
            claim = SummarySent.objects.create(
                kind=kind, period_start=period.start, recipients=", ".join(recipients)
            )
    except IntegrityError:
        return False  # another run claimed it
    message = EmailMessage(
        subject=f"tierflow {kind} summary {period.start} – {period.end}",
        body=(
            f"The programme's figures for {period.start} to {period.end}, by day, are "
            "attached: a sheet of headline figures and one per report (definitions in the "
            "admin's Reports)."
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
    )
    message.attach(f"tierflow-{kind}-{period.start}.xlsx", workbook, XLSX)
    try:
        message.send()
    except Exception:
        claim.delete()
        raise
    return True
