"""Quiet hours (TIERFLOW_QUIET_HOURS, in TIME_ZONE): a message due in them waits until
they end, both when it is saved to the outbox and when its delivery comes due."""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone


def quiet_hours_end(now: datetime) -> datetime | None:
    """When the quiet hours (TIERFLOW_QUIET_HOURS, in TIME_ZONE) that `now` falls in end,
    or None if `now` is not in them."""
    window = settings.TIERFLOW_QUIET_HOURS
    if window is None:
        return None
    start, end = window
    local = timezone.localtime(now)
    moment = local.time()
    quiet = (start <= moment or moment < end) if start > end else (start <= moment < end)
    if not quiet:
        return None
    day = local.date() if moment < end else local.date() + timedelta(days=1)
    return timezone.make_aware(datetime.combine(day, end))


def held_reason(until: datetime | None) -> str:
    """The status reason of a message held until `until` (or "" when it is not held)."""
    return f"held for quiet hours until {timezone.localtime(until):%H:%M}" if until else ""
