"""Coupon templates and coupons. Callers that issue coupons hold the member row lock."""

import secrets
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.upsert import upsert
from members.models import Member

from ..models import Coupon, CouponTemplate

# No 0/O or 1/I: codes are read out at the till.
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def coupon_template_upsert(*, code: str, **values: Any) -> tuple[CouponTemplate, bool]:
    return upsert(CouponTemplate, lookup={"code": code}, values=values)


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


def _coupon_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def coupons_void_for_order(*, order_id: int) -> int:
    """A refunded order takes back the unused coupons that rules issued for it."""
    return Coupon.objects.filter(
        firing__order_id=order_id,
        firing__trigger="order_paid",
        status=Coupon.Status.ISSUED,
        expires_at__gt=timezone.now(),
    ).update(status=Coupon.Status.VOID)
