"""Coupon templates and coupons: issuing, redeeming at the till and releasing.

Callers that issue coupons hold the member row lock; a template with a budget is locked
after it (member first, then template: always that order), so that concurrent issues
cannot give out more than the budget. Redeeming needs no lock: a conditional UPDATE
decides which of several concurrent requests uses the coupon."""

import secrets
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import DateTimeField, Sum, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from core.upsert import upsert
from members.models import Member

from ..models import Coupon, CouponIssueJob, CouponTemplate, Discount
from ..selectors import (
    after_tier_discount,
    coupon_code_clean,
    coupon_discount,
    coupon_unusable_reason,
)

Status = Coupon.Status
# No 0/O or 1/I: codes are read out at the till.
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


class CouponUnavailable(Exception):
    """The template cannot give this member a coupon now; nothing was written."""

    PER_MEMBER_LIMIT = "per_member_limit"
    BUDGET = "budget"
    EXPIRED = "expired"
    ALREADY_ISSUED = "already_issued"  # by the same bulk issue job

    def __init__(self, reason: str) -> None:
        super().__init__(f"No coupon can be issued: {reason}.")
        self.reason = reason


class CouponInUse(Exception):
    """The coupon is held by another order (the API answers 409)."""


def coupon_template_upsert(*, code: str, **values: Any) -> tuple[CouponTemplate, bool]:
    return upsert(CouponTemplate, lookup={"code": code}, values=values)


@transaction.atomic
def coupon_issue(
    *,
    member: Member,
    template: CouponTemplate,
    firing=None,
    job: CouponIssueJob | None = None,
) -> Coupon:
    """Issue one coupon with the template's current terms (they are copied onto the
    coupon, so a later edit of the template changes no coupon in hand). Raises
    CouponUnavailable when the member holds the template's per-member limit, the budget
    is spent, or a fixed-date template has ended. The caller holds the member row lock,
    which makes the per-member count reliable."""
    now = timezone.now()
    valid_from, expires_at = template.validity_from(now)
    if expires_at <= now:
        raise CouponUnavailable(CouponUnavailable.EXPIRED)
    held = Coupon.objects.filter(template=template).exclude(status=Status.VOID)
    if (
        template.per_member_limit is not None
        and held.filter(member=member).count() >= template.per_member_limit
    ):
        raise CouponUnavailable(CouponUnavailable.PER_MEMBER_LIMIT)
    if template.budget is not None:
        # Concurrent issues of one template queue on its row here, so each counts the
        # coupons the others committed and the last coupon of the budget goes only once.
        budget = (
            CouponTemplate.objects.select_for_update()
            .values_list("budget", flat=True)
            .get(pk=template.pk)
        )
        if budget is not None and held.count() >= budget:
            raise CouponUnavailable(CouponUnavailable.BUDGET)
    for _ in range(5):
        coupon = Coupon(
            code=_coupon_code(),
            template=template,
            member=member,
            name=template.name,
            discount=template.discount,
            min_spend=template.min_spend,
            amount_off=template.amount_off,
            percent_off=template.percent_off,
            max_discount=template.max_discount,
            stacking=template.stacking,
            issued_at=now,
            valid_from=valid_from,
            expires_at=expires_at,
            firing=firing,
            job=job,
        )
        try:
            with transaction.atomic():
                coupon.save()
        except IntegrityError:
            if job is not None and Coupon.objects.filter(job=job, member=member).exists():
                raise CouponUnavailable(CouponUnavailable.ALREADY_ISSUED) from None
            continue  # a code collision (one in 10^18): draw another
        return coupon
    raise RuntimeError("Could not draw a unique coupon code.")


def _coupon_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def coupons_void_for_order(*, order_id: int, at: datetime | None = None) -> int:
    """A refunded order takes back the unused coupons that rules issued for it. They are
    voided as of `at`, the refund's moment (default now), like the points it takes back;
    never before a coupon was issued (an order evaluated late issued its coupons late)."""
    return Coupon.objects.filter(
        firing__order_id=order_id,
        firing__trigger="order_paid",
        status=Status.ISSUED,
        expires_at__gt=timezone.now(),
    ).update(
        status=Status.VOID,
        voided_at=Greatest("issued_at", Value(at or timezone.now(), DateTimeField())),
    )


@transaction.atomic
def coupon_redeem(
    *,
    code: str,
    member_external_id: str,
    order_external_id: str,
    amount: Decimal | None = None,
) -> tuple[Coupon, bool]:
    """Use a member's coupon on an order: (coupon, created). Exactly once: of concurrent
    requests, only the one whose conditional update finds the coupon still issued uses
    it. A replay for the same order returns the coupon with created=False; another order
    gets CouponInUse. Raises Coupon.DoesNotExist for an unknown code and ValidationError
    (on `member`, `code` or `amount`) when the coupon cannot be used; either way nothing
    changes. `amount`, the basket before discounts, is checked against the minimum spend."""
    coupon = Coupon.objects.select_related("member__tier").get(code=coupon_code_clean(code))
    if coupon.member.external_id != member_external_id:
        raise ValidationError({"member": "This coupon belongs to another member."})
    for _ in range(2):
        if coupon.status == Status.REDEEMED:
            if coupon.redeemed_order == order_external_id:
                return coupon, False
            raise CouponInUse(f"The coupon {coupon.code} has already been used on another order.")
        now = timezone.now()
        problem = coupon_unusable_reason(coupon, now=now)
        if problem:
            raise ValidationError({"code": problem[1]})
        if amount is not None and amount < coupon.min_spend:
            raise ValidationError(
                {"amount": f"The minimum spend for this coupon is {coupon.min_spend}."}
            )
        # The row count decides: 0 means another request used (or voided) it first.
        if Coupon.objects.filter(pk=coupon.pk, status=Status.ISSUED).update(
            status=Status.REDEEMED,
            redeemed_order=order_external_id,
            redeemed_at=now,
            discount_given=_discount_given(coupon, order_external_id, amount),
        ):
            coupon.refresh_from_db()
            return coupon, True
        coupon.refresh_from_db()
    raise CouponInUse(f"The coupon {coupon.code} is being changed by another request.")


def _discount_given(coupon: Coupon, order_external_id: str, amount: Decimal | None):
    """What the coupon takes off the order, worked out as the checkout quote does: the
    tier's discount first, then the coupon's share of what is left, never more than is
    left to pay after the member's other coupons used on the same order. Without the
    basket's amount, an amount coupon takes its amount and a percentage coupon's share is
    unknown (None)."""
    if amount is None:
        return coupon.amount_off if coupon.discount == Discount.AMOUNT else None
    _, payable = after_tier_discount(amount, coupon.member.tier)
    taken = (
        Coupon.objects.filter(
            member_id=coupon.member_id, status=Status.REDEEMED, redeemed_order=order_external_id
        )
        .exclude(pk=coupon.pk)
        .aggregate(total=Sum("discount_given"))["total"]
    )
    return min(coupon_discount(coupon, payable), max(payable - (taken or 0), Decimal("0.00")))


@transaction.atomic
def coupon_release(*, code: str, order_external_id: str) -> Coupon:
    """Give back a coupon used on an order that did not go ahead (cancelled, or the till
    aborted the payment): it is issued again, and usable until it expires. Idempotent: a
    coupon not used on any order is returned unchanged. A coupon used on another order
    raises CouponInUse; an unknown code raises Coupon.DoesNotExist."""
    coupon = Coupon.objects.select_related("member").get(code=coupon_code_clean(code))
    if coupon.status != Status.REDEEMED:
        return coupon
    if coupon.redeemed_order != order_external_id:
        raise CouponInUse(f"The coupon {coupon.code} was used on another order.")
    released = Coupon.objects.filter(
        pk=coupon.pk, status=Status.REDEEMED, redeemed_order=order_external_id
    ).update(status=Status.ISSUED, redeemed_order="", redeemed_at=None, discount_given=None)
    coupon.refresh_from_db()
    if not released and coupon.status == Status.REDEEMED:
        # Released and used on another order between our read and our update.
        raise CouponInUse(f"The coupon {coupon.code} was used on another order.")
    return coupon
