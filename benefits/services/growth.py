"""The growth points ledger (成长值). Callers hold the member row lock."""

import math
from datetime import datetime, timedelta

from django.utils import timezone

from core.days import start_of_day
from members.models import EngagementEvent, Member
from orders.models import Order

from ..models import EarningPolicy, GrowthEntry


def order_growth_entry(
    *, member: Member, order: Order, policy: EarningPolicy, at: datetime
) -> GrowthEntry | None:
    """The growth points an order earns, as an unsaved entry at `at` (the order's own
    time, so tier periods count it where it happened)."""
    points = math.floor(order.amount * policy.growth_per_unit)
    if points <= 0:
        return None
    return GrowthEntry(
        member=member,
        kind=GrowthEntry.Kind.SPEND,
        points=points,
        reason=f"order {order.external_id}",
        order=order,
        created_at=at,
    )


def engagement_growth_entry(
    *, member: Member, event: EngagementEvent, at: datetime
) -> GrowthEntry | None:
    """The growth points of an engagement, as an unsaved entry, unless the member has
    already reached the kind's daily cap on that day (the day the event happened, in
    TIME_ZONE; counted from the saved entries, so the caller saves those first)."""
    kind = event.kind
    if not kind.growth_points:
        return None
    if kind.daily_cap is not None:
        day = timezone.localdate(event.occurred_at)
        start = start_of_day(day)
        earned_that_day = GrowthEntry.objects.filter(
            member=member,
            kind=GrowthEntry.Kind.ENGAGEMENT,
            event__kind=kind,
            event__occurred_at__gte=start,
            event__occurred_at__lt=start + timedelta(days=1),
        ).count()
        if earned_that_day >= kind.daily_cap:
            return None
    return GrowthEntry(
        member=member,
        kind=GrowthEntry.Kind.ENGAGEMENT,
        points=kind.growth_points,
        reason=f"{kind.name} {event.external_id}",
        event=event,
        created_at=at,
    )


def growth_entries_create(entries: list[GrowthEntry]) -> None:
    """Save entries built for a batch, in one INSERT."""
    GrowthEntry.objects.bulk_create(entries)


def growth_award(
    *, member: Member, points: int, reason: str, firing=None, at: datetime | None = None
) -> GrowthEntry:
    if points <= 0:
        raise ValueError("Awarded growth points must be positive.")
    return GrowthEntry.objects.create(
        member=member,
        kind=GrowthEntry.Kind.BONUS,
        points=points,
        reason=reason,
        firing=firing,
        created_at=at or timezone.now(),
    )
