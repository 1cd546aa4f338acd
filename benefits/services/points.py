"""The points ledger. Callers hold the member row lock."""

import math
from decimal import Decimal

from core.upsert import upsert
from members.models import Member
from orders.models import Order

from ..models import EarningPolicy, PointsEntry


def order_earn_points(*, member: Member, order: Order, policy: EarningPolicy) -> PointsEntry | None:
    """The points an order earns: its amount times the base rate times the member's tier
    multiplier, rounded down. Refunds take them back in proportion (reversals.py)."""
    multiplier = member.tier.points_multiplier if member.tier else Decimal(1)
    points = math.floor(order.amount * policy.points_per_unit * multiplier)
    if points <= 0:
        return None
    return PointsEntry.objects.create(
        member=member,
        kind=PointsEntry.Kind.EARN,
        points=points,
        reason=f"order {order.external_id}",
        order=order,
        expires_at=policy.points_expiry_from(order.placed_at),
    )


def points_award(
    *, member: Member, points: int, reason: str, policy: EarningPolicy, firing=None
) -> PointsEntry:
    if points <= 0:
        raise ValueError("Awarded points must be positive.")
    entry = PointsEntry(
        member=member, kind=PointsEntry.Kind.BONUS, points=points, reason=reason, firing=firing
    )
    entry.expires_at = policy.points_expiry_from(entry.created_at)
    entry.save()
    return entry


def earning_policy_update(**values) -> tuple[EarningPolicy, bool]:
    return upsert(EarningPolicy, lookup={"pk": 1}, values=values)
