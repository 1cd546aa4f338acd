"""Each count of a report leads to the rows behind it: the admin list of those members,
orders, ledger entries or messages, filtered to the bucket."""

from datetime import date

from django.urls import reverse
from django.utils.http import urlencode

from core.days import start_of_day

from .periods import Period

OUTBOX = "admin:notifications_notification_changelist"
# The outbox's statuses behind each column of the messages report.
MESSAGE_STATUSES = {
    "queued": "queued,sending",
    "sent": "sent",
    "delivered": "delivered",
    "failed": "failed",
    "suppressed": "suppressed",
}
# report -> column -> (admin list, date field filtered by the bucket, filters from the
# row: list filter -> the row's column it takes its value from, or a fixed value)
LINKS: dict[str, dict[str, tuple[str, str, dict]]] = {
    "member-growth": {"new_members": ("admin:members_member_changelist", "joined_at", {})},
    "messages": {
        column: (OUTBOX, "created_at", {"channel__exact": "@channel", "status__in": statuses})
        for column, statuses in MESSAGE_STATUSES.items()
    },
}


def count_links(
    name: str, columns: list[str], rows: list[list], period: Period
) -> list[list[dict]]:
    """The rows as cells {"value", "url"}: a url where the count has a list behind it."""
    links = LINKS.get(name, {})
    bucket_index = columns.index("bucket") if "bucket" in columns else None
    out = []
    for row in rows:
        cells = []
        for column, value in zip(columns, row, strict=True):
            url = None
            if column in links and bucket_index is not None and value:
                url = _bucket_url(
                    links[column], date.fromisoformat(row[bucket_index]), period, columns, row
                )
            cells.append({"value": value, "url": url})
        out.append(cells)
    return out


def _bucket_url(
    link: tuple[str, str, dict], bucket: date, period: Period, columns: list[str], row: list
) -> str:
    view, field, filters = link
    fixed = {
        name: row[columns.index(value[1:])] if value.startswith("@") else value
        for name, value in filters.items()
    }
    start = max(bucket, period.start)
    end = period.next_bucket(bucket)
    if end > period.end:
        end = date.fromordinal(period.end.toordinal() + 1)
    # Aware moments: the bucket's business days in TIME_ZONE.
    query = {
        f"{field}__gte": start_of_day(start).isoformat(),
        f"{field}__lt": start_of_day(end).isoformat(),
        **fixed,
    }
    return f"{reverse(view)}?{urlencode(query)}"
