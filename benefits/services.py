"""Every write to coupons and the points ledger. Callers hold the member row lock."""

import secrets
from datetime import timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from members.models import Member

from .models import Coupon, CouponTemplate, PointsEntry

# No 0/O or 1/I: codes are read out at the till.
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def coupon_template_upsert(
    *, code: str, name: str, min_spend: Decimal, amount_off: Decimal, valid_days: int
) -> tuple[CouponTemplate, bool]:
    values = {
        "name": name,
        "min_spend": Decimal(min_spend),
        "amount_off": Decimal(amount_off),
        "valid_days": valid_days,
    }
    template = CouponTemplate.objects.filter(code=code).first()
    if template is not None and all(getattr(template, k) == v for k, v in values.items()):
        return template, False
    template = template or CouponTemplate(code=code)
    for field, value in values.items():
        setattr(template, field, value)
    template.full_clean()
    template.save()
    return template, True


def coupon_issue(*, member: Member, template: CouponTemplate, firing=None) -> Coupon:
    """Issue one coupon with the template's current terms, valid `valid_days` from now."""
    now = timezone.now()
    for _ in range(5):
        coupon = Coupon(
            code=_coupon_code(),
            template=template,
            member=member,
            name=template.name,
            min_spend=template.min_spend,
            amount_off=template.amount_off,
            issued_at=now,
            expires_at=now + timedelta(days=template.valid_days),
            firing=firing,
        )
        try:
            with transaction.atomic():
                coupon.save()
        except IntegrityError:
            continue  # a code collision (one in 10^18): draw another
        return coupon
    raise RuntimeError("Could not draw a unique coupon code.")


def points_award(*, member: Member, points: int, reason: str, firing=None) -> PointsEntry:
    if points <= 0:
        raise ValueError("Awarded points must be positive.")
    return PointsEntry.objects.create(
        member=member, kind=PointsEntry.Kind.BONUS, points=points, reason=reason, firing=firing
    )


def _coupon_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"
