"""Clock triggers: whether one happens to a member on a given business day, and which
members the daily job should ask about. The Python predicate decides; the query only has
to include every member for whom it could say yes."""

from calendar import isleap
from datetime import date, datetime, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from benefits import selectors as benefit_selectors
from core.days import start_of_day
from members.models import Member, Tier

from ..models import Trigger


def clock_occurrence_key(
    trigger: str, days: int | None, member: Member, on_date: date
) -> str | None:
    """The occurrence the trigger (with N = `days`) names for the member on `on_date`, or
    None if it does not happen to them that day."""
    if trigger == Trigger.BIRTHDAY:
        if member.birthday and _same_day_of_year(member.birthday, on_date):
            return f"birthday:{on_date.year}"
    elif trigger == Trigger.JOIN_ANNIVERSARY:
        joined = timezone.localdate(member.joined_at)
        if joined.year < on_date.year and _same_day_of_year(joined, on_date):
            return f"anniversary:{on_date.year}"
    elif trigger == Trigger.TIER_EXPIRING:
        lapses = member.tier_expires_at and timezone.localdate(member.tier_expires_at)
        if days is None and member.tier:
            days = member.tier.remind_days_before  # the tier's own reminder
        if lapses and days and lapses == on_date + timedelta(days=days):
            return f"tier_expiring:{lapses}"
    elif trigger == Trigger.INACTIVE:
        last = timezone.localdate(member.last_order_at or member.joined_at)
        if last == on_date - timedelta(days=days):
            return f"inactive:{last}"
    elif trigger == Trigger.POINTS_EXPIRING:
        lapse_day = on_date + timedelta(days=days)
        if benefit_selectors.points_expiring_on(member_id=member.pk, day=lapse_day) > 0:
            return f"points_expiring:{lapse_day}"
    return None


def candidates(trigger: str, days: int | None, on_date: date) -> QuerySet[Member]:
    """Members the trigger may happen to on `on_date` (indexed lookups only)."""
    if trigger == Trigger.BIRTHDAY:
        same_day = Q(birthday__month=on_date.month, birthday__day=on_date.day)
        if (on_date.month, on_date.day) == (2, 28) and not isleap(on_date.year):
            same_day |= Q(birthday__month=2, birthday__day=29)  # celebrated on the 28th
        return Member.objects.filter(same_day)
    if trigger == Trigger.JOIN_ANNIVERSARY:
        same_day = Q(joined_at__month=on_date.month, joined_at__day=on_date.day)
        if (on_date.month, on_date.day) == (2, 28) and not isleap(on_date.year):
            same_day |= Q(joined_at__month=2, joined_at__day=29)
        return Member.objects.filter(same_day, joined_at__lt=start_of_day(date(on_date.year, 1, 1)))
    if trigger == Trigger.TIER_EXPIRING:
        if days is not None:
            return Member.objects.filter(
                tier_expires_at__range=_day_range(on_date + timedelta(days=days))
            )
        lapsing = Q(pk__in=[])
        for tier_id, tier_days in Tier.objects.values_list("pk", "remind_days_before"):
            lapsing |= Q(
                tier_id=tier_id,
                tier_expires_at__range=_day_range(on_date + timedelta(days=tier_days)),
            )
        return Member.objects.filter(lapsing)
    if trigger == Trigger.INACTIVE:
        day = _day_range(on_date - timedelta(days=days))
        return Member.objects.filter(
            Q(last_order_at__range=day) | Q(last_order_at__isnull=True, joined_at__range=day)
        )
    if trigger == Trigger.POINTS_EXPIRING:
        lapse_day = _day_range(on_date + timedelta(days=days))
        return Member.objects.filter(
            points_entries__points__gt=0, points_entries__expires_at__range=lapse_day
        ).distinct()
    raise ValueError(f"{trigger} is not a clock trigger")


def _same_day_of_year(day: date, on_date: date) -> bool:
    if (day.month, day.day) == (on_date.month, on_date.day):
        return True
    # Born (or joined) on 29 February: celebrated on the 28th in other years.
    return (
        (day.month, day.day) == (2, 29)
        and not isleap(on_date.year)
        and (
            on_date.month,
            on_date.day,
        )
        == (2, 28)
    )


def _day_range(day: date) -> tuple[datetime, datetime]:
    """The instants of a business day, for BETWEEN (which includes both ends)."""
    return start_of_day(day), start_of_day(day + timedelta(days=1)) - timedelta(microseconds=1)
