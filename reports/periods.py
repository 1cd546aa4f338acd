"""A report's period: business dates `start`..`end` (in TIME_ZONE, both inclusive) cut into
buckets of a day, an ISO week (Monday first) or a calendar month. A bucket is labelled by
its calendar first date, so the first and last buckets of a period that starts or ends
mid-week or mid-month are partial: they count only the period's own days."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.days import start_of_day

MAX_BUCKETS = 1000
# Periods stay clear of the calendar's ends, where a bucket's Monday or the day after the
# period would not exist.
EARLIEST, LATEST = date(1900, 1, 1), date(9999, 11, 30)


class Interval(models.TextChoices):
    DAY = "day", _("day")
    WEEK = "week", _("week")
    MONTH = "month", _("month")


@dataclass(frozen=True)
class Period:
    start: date
    end: date
    interval: str = Interval.DAY

    def bucket_of(self, day: date) -> date:
        if self.interval == Interval.WEEK:
            return day - timedelta(days=day.weekday())
        if self.interval == Interval.MONTH:
            return day.replace(day=1)
        return day

    def bucket_count(self) -> int:
        first = self.bucket_of(self.start)
        if self.interval == Interval.WEEK:
            return (self.end - first).days // 7 + 1
        if self.interval == Interval.MONTH:
            return (self.end.year - first.year) * 12 + self.end.month - first.month + 1
        return (self.end - first).days + 1

    def buckets(self) -> list[date]:
        """Each bucket's label (its first date), oldest first."""
        labels, first = [], self.bucket_of(self.start)
        while first <= self.end:
            labels.append(first)
            first = self.next_bucket(first)
        return labels

    def next_bucket(self, first: date) -> date:
        if self.interval == Interval.WEEK:
            return first + timedelta(days=7)
        if self.interval == Interval.MONTH:
            return (first.replace(day=28) + timedelta(days=4)).replace(day=1)
        return first + timedelta(days=1)

    def last_day(self, first: date) -> date:
        """The bucket's last day inside the period."""
        return min(self.next_bucket(first) - timedelta(days=1), self.end)

    @property
    def since(self) -> datetime:
        """The period's first moment (midnight in TIME_ZONE)."""
        return start_of_day(self.start)

    @property
    def until(self) -> datetime:
        """The moment after the period: midnight after its last day."""
        return start_of_day(self.end + timedelta(days=1))


def period_parse(params: Mapping[str, str]) -> Period:
    """A period from `from`, `to` and `interval` (default: day); field errors otherwise."""
    errors: dict[str, str] = {}
    days: dict[str, date] = {}
    for name in ("from", "to"):
        raw = (params.get(name) or "").strip()
        if not raw:
            errors[name] = gettext("Give a date as YYYY-MM-DD.")
            continue
        try:
            days[name] = date.fromisoformat(raw)
        except ValueError:
            errors[name] = gettext("“%(value)s” is not a date as YYYY-MM-DD.") % {"value": raw}
            continue
        if not EARLIEST <= days[name] <= LATEST:
            errors[name] = gettext("Give a date from %(earliest)s to %(latest)s.") % {
                "earliest": EARLIEST.isoformat(),
                "latest": LATEST.isoformat(),
            }
    interval = (params.get("interval") or Interval.DAY).strip()
    if interval not in Interval.values:
        errors["interval"] = gettext("Choose one of: %(choices)s.") % {
            "choices": ", ".join(Interval.values)
        }
    if errors:
        raise ValidationError(errors)
    if days["from"] > days["to"]:
        raise ValidationError({"to": gettext("The period ends before it starts.")})
    period = Period(days["from"], days["to"], interval)
    if period.bucket_count() > MAX_BUCKETS:
        raise ValidationError(
            {
                "interval": gettext(
                    "The period has more than %(max)d buckets; choose a longer interval or "
                    "a shorter period."
                )
                % {"max": MAX_BUCKETS}
            }
        )
    return period
