"""A member's history across the apps, newest first: what happened and, for every effect,
the rule firing behind it (whose entry lists the facts the rule saw)."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from rest_framework.fields import DateTimeField

from benefits.selectors import coupon_timeline, growth_timeline, points_timeline
from members.selectors import engagement_timeline, tier_change_timeline
from notifications.selectors import notification_timeline
from orders.selectors import order_timeline, refund_timeline
from rules.selectors.timeline import firing_timeline

SOURCES = (
    order_timeline,
    refund_timeline,
    engagement_timeline,
    firing_timeline,
    tier_change_timeline,
    coupon_timeline,
    points_timeline,
    growth_timeline,
    notification_timeline,
)


# What happened, as opposed to what it caused.
EVENTS = {"order", "refund", "engagement"}


def member_timeline(
    *, member_id: int, before: datetime | None = None, limit: int = 50
) -> tuple[list[dict], datetime | None]:
    """One page of entries older than `before`, and the cursor for the next page (None
    on the last page)."""
    entries = []
    for source in SOURCES:
        entries.extend(source(member_id=member_id, before=before, limit=limit + 1))
    # Effects are dated by the event that caused them: at the same moment, show the
    # effects above (after) their order, refund or engagement.
    entries.sort(key=lambda entry: (entry["at"], entry["type"] not in EVENTS), reverse=True)
    page, more = entries[:limit], len(entries) > limit
    if more:
        # Never split entries with the same timestamp across pages: the next page asks for
        # entries strictly older than the last one shown.
        cut = page[-1]["at"]
        if entries[limit]["at"] == cut:
            shorter = [entry for entry in page if entry["at"] != cut]
            # A moment with more entries than a page holds is shown whole on one page.
            page = shorter or [entry for entry in entries if entry["at"] >= cut]
            more = len(entries) > len(page)
    return [_jsonable(entry) for entry in page], page[-1]["at"] if more and page else None


def _jsonable(value: Any) -> Any:
    """Money as decimal strings and times in ISO 8601, as everywhere in the API."""
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return DateTimeField().to_representation(value)
    return value
