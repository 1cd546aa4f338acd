"""The points ledger. Callers hold the member row lock."""

import math
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models import Q, Sum
from django.utils import timezone

from core.idempotency import payload_fingerprint, record_once
from core.upsert import upsert
from members import selectors as member_selectors
from members import services as member_services
from members.models import Member
from orders.models import Order

from ..models import EarningPolicy, PointsEntry
from ..selectors import points_balance


def order_points_entries(
    *, member: Member, order: Order, policy: EarningPolicy, at: datetime
) -> list[PointsEntry]:
    """The ledger entries, unsaved, of the points an order earns: its amount times the
    base rate times the member's tier multiplier, rounded down, as a lot lapsing by the
    policy from when the order was placed. Points of an order placed so long ago that
    they lapsed before they were earned are written off in the same breath, so they
    never count. Refunds take them back in proportion (reversals.py)."""
    multiplier = member.tier.points_multiplier if member.tier else Decimal(1)
    points = math.floor(order.amount * policy.points_per_unit * multiplier)
    if points <= 0:
        return []
    lot = PointsEntry(
        member=member,
        kind=PointsEntry.Kind.EARN,
        points=points,
        reason=f"order {order.external_id}",
        order=order,
        expires_at=policy.points_expiry_from(order.placed_at),
        created_at=at,
    )
    if lot.expires_at is None or lot.expires_at > timezone.now():
        return [lot]
    lapsed = PointsEntry(
        member=member,
        kind=PointsEntry.Kind.EXPIRE,
        points=-points,
        reason=f"points of order {order.external_id} lapsed before they were earned",
        order=order,
        created_at=at,
    )
    return [lot, lapsed]


def points_entries_create(entries: list[PointsEntry]) -> None:
    """Save entries built for a batch, in one INSERT."""
    PointsEntry.objects.bulk_create(entries)


def points_award(
    *,
    member: Member,
    points: int,
    reason: str,
    policy: EarningPolicy,
    firing=None,
    at: datetime | None = None,
) -> PointsEntry:
    """A bonus lot, at `at` (default now: the moment of the event that earned it)."""
    if points <= 0:
        raise ValueError("Awarded points must be positive.")
    entry = PointsEntry(
        member=member,
        kind=PointsEntry.Kind.BONUS,
        points=points,
        reason=reason,
        firing=firing,
        created_at=at or timezone.now(),
    )
    entry.expires_at = policy.points_expiry_from(entry.created_at)
    entry.save()
    return entry


def points_expire(*, member_ids: list[int], at: datetime) -> int:
    """Write off, as one ledger entry each at `at`, what is left of the locked members'
    lots that lapsed by then: one query and one INSERT for them all. Spending uses up the
    soonest-lapsing lots first, so what is left of the lapsed lots is exactly what was
    never used, max(0, lapsed - used); running it twice writes nothing the second time.
    Returns the members whose points were written off."""
    rows = (
        PointsEntry.objects.filter(member_id__in=member_ids)
        .values("member_id")
        .annotate(
            used=Sum("points", filter=Q(points__lt=0)),
            lapsed=Sum("points", filter=Q(points__gt=0, expires_at__lte=at)),
        )
        .values_list("member_id", "used", "lapsed")
    )
    entries = [
        PointsEntry(
            member_id=member_id,
            kind=PointsEntry.Kind.EXPIRE,
            points=-left,
            reason="points lapsed",
            created_at=at,
        )
        for member_id, used, lapsed in rows
        if (left := (lapsed or 0) + (used or 0)) > 0
    ]
    PointsEntry.objects.bulk_create(entries)
    return len(entries)


def points_redeem(
    *, member_external_id: str, points: int, idempotency_key: str, reason: str = ""
) -> tuple[PointsEntry, bool]:
    """Spend points, once per idempotency key: (entry, created). A replay returns the
    recorded entry; the key reused with other details raises SubjectConflict. Never takes
    a balance below zero: lapsed points are written off first, then the rest must cover
    the redemption."""
    payload_hash = payload_fingerprint(member=member_external_id, points=points, reason=reason)

    def create() -> PointsEntry:
        found = member_selectors.member_get(external_id=member_external_id)
        member = member_services.member_lock(member_id=found.pk)
        points_expire(member_ids=[member.pk], at=timezone.now())
        balance = points_balance(member_id=member.pk)
        if points > balance:
            raise ValidationError(
                {"points": f"Only {balance} points are available; {points} were asked for."}
            )
        return PointsEntry.objects.create(
            member=member,
            kind=PointsEntry.Kind.REDEEM,
            points=-points,
            reason=reason or "redeemed",
            external_id=idempotency_key,
            payload_hash=payload_hash,
        )

    return record_once(
        PointsEntry, external_id=idempotency_key, payload_hash=payload_hash, create=create
    )


def earning_policy_update(**values) -> tuple[EarningPolicy, bool]:
    return upsert(EarningPolicy, lookup={"pk": 1}, values=values)
