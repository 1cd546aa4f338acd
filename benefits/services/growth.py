"""The growth points ledger (成长值). Callers hold the member row lock."""

import math
from datetime import timedelta

from django.utils import timezone

from core.days import start_of_day
from members.models import EngagementEvent, Member
from orders.models import Order

from ..models import EarningPolicy, GrowthEntry


def order_earn_growth(*, member: Member, order: Order, policy: EarningPolicy) -> GrowthEntry | None:
    points = math.floor(order.amount * policy.growth_per_unit)
    if points <= 0:
        return None
    return GrowthEntry.objects.create(
        member=member,
        kind=GrowthEntry.Kind.SPEND,
        points=points,
        reason=f"order {order.external_id}",
        order=order,
    )


def engagement_earn_growth(*, member: Member, event: EngagementEvent) -> GrowthEntry | None:
    """The growth points of an engagement, unless the member has already reached the
    kind's daily cap on that day (the day the event happened, in TIME_ZONE)."""
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
    return GrowthEntry.objects.create(
        member=member,
        kind=GrowthEntry.Kind.ENGAGEMENT,
        points=kind.growth_points,
        reason=f"{kind.name} {event.external_id}",
        event=event,
    )


def growth_award(*, member: Member, points: int, reason: str, firing=None) -> GrowthEntry:
    if points <= 0:
        raise ValueError("Awarded growth points must be positive.")
    return GrowthEntry.objects.create(
        member=member, kind=GrowthEntry.Kind.BONUS, points=points, reason=reason, firing=firing
    )
