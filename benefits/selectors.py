from django.db.models import Sum
from django.utils import timezone

from core.models import newest

from .models import Coupon, CouponTemplate, GrowthEntry, PointsEntry


def points_balance(*, member_id: int) -> int:
    entries = PointsEntry.objects.filter(member_id=member_id)
    return entries.aggregate(total=Sum("points"))["total"] or 0


def growth_balance(*, member_id: int) -> int:
    entries = GrowthEntry.objects.filter(member_id=member_id)
    return entries.aggregate(total=Sum("points"))["total"] or 0


def coupon_templates_by_code(codes: set[str] | None = None) -> dict[str, CouponTemplate]:
    templates = CouponTemplate.objects.all()
    if codes is not None:
        templates = templates.filter(code__in=codes)
    return {template.code: template for template in templates}


def member_coupons(*, member_id: int) -> list[dict]:
    now = timezone.now()
    return [
        {
            "code": coupon.code,
            "name": coupon.name,
            "min_spend": coupon.min_spend,
            "amount_off": coupon.amount_off,
            "issued_at": coupon.issued_at,
            "expires_at": coupon.expires_at,
            "status": coupon.display_status(now),
        }
        for coupon in Coupon.objects.filter(member_id=member_id)
    ]


def coupon_timeline(*, member_id: int, before=None, limit: int) -> list[dict]:
    coupons = Coupon.objects.filter(member_id=member_id).select_related("firing__rule")
    return [
        {
            "type": "coupon_issued",
            "at": coupon.issued_at,
            "code": coupon.code,
            "name": coupon.name,
            "min_spend": coupon.min_spend,
            "amount_off": coupon.amount_off,
            "expires_at": coupon.expires_at,
            "rule": coupon.firing.reference if coupon.firing else None,
        }
        for coupon in newest(coupons, at="issued_at", before=before, limit=limit)
    ]


def points_timeline(*, member_id: int, before=None, limit: int) -> list[dict]:
    entries = PointsEntry.objects.filter(member_id=member_id).select_related("firing__rule")
    return [
        {
            "type": "points",
            "at": entry.created_at,
            "kind": entry.kind,
            "points": entry.points,
            "reason": entry.reason,
            "rule": entry.firing.reference if entry.firing else None,
        }
        for entry in newest(entries, at="created_at", before=before, limit=limit)
    ]


def points_lots(*, member_id: int) -> list[tuple[PointsEntry, int]]:
    """Each positive entry (a lot) with the points left in it. Spent, expired and reversed
    points use up the lots that expire soonest first (lots that never expire last)."""
    entries = list(PointsEntry.objects.filter(member_id=member_id))
    used = -sum(entry.points for entry in entries if entry.points < 0)
    lots = sorted(
        (entry for entry in entries if entry.points > 0),
        key=lambda lot: (
            lot.expires_at is None,
            lot.expires_at or lot.created_at,
            lot.created_at,
            lot.pk,
        ),
    )
    remaining = []
    for lot in lots:
        taken = min(lot.points, used)
        used -= taken
        remaining.append((lot, lot.points - taken))
    return remaining


def points_expiring_on(*, member_id: int, day) -> int:
    """Points that will lapse on `day` (a business date) unless spent first."""
    return sum(
        left
        for lot, left in points_lots(member_id=member_id)
        if lot.expires_at and timezone.localdate(lot.expires_at) == day
    )


def growth_timeline(*, member_id: int, before=None, limit: int) -> list[dict]:
    entries = GrowthEntry.objects.filter(member_id=member_id).select_related("firing__rule")
    return [
        {
            "type": "growth_points",
            "at": entry.created_at,
            "kind": entry.kind,
            "points": entry.points,
            "reason": entry.reason,
            "rule": entry.firing.reference if entry.firing else None,
        }
        for entry in newest(entries, at="created_at", before=before, limit=limit)
    ]
