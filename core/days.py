from datetime import date, datetime, time, timedelta

from django.db.models import DateField, Expression
from django.db.models.functions import Trunc
from django.utils import timezone


def start_of_day(day: date) -> datetime:
    """The first instant of a business day (TIME_ZONE): where "that day" starts for
    birthdays, periods, lapses and caps."""
    return timezone.make_aware(datetime.combine(day, time.min))


def next_midnight(moment: datetime) -> datetime:
    """`moment` rounded up to the start of a business day: tiers and points lapse at
    midnight, so the daily job just after it finds everything that lapsed."""
    local = timezone.localtime(moment)
    if local.time() == time.min:
        return local
    return start_of_day(local.date() + timedelta(days=1))


def business_bucket(field: str | Expression, interval: str) -> Expression:
    """The business date that starts `field`'s bucket of a day, an ISO week (Monday) or a
    month, in TIME_ZONE: for grouping by period in the database."""
    return Trunc(field, interval, output_field=DateField(), tzinfo=timezone.get_current_timezone())
