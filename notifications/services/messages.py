"""What a template sees: the member, their tier, coupon, points and order as plain values,
money and discounts written the way a shopper reads them (see rendering.VARIABLES)."""

from decimal import Decimal

from django.utils import timezone

from members.models import Member


def amount_text(amount: Decimal) -> str:
    """Money as a shopper reads it in a message: 500, not 500.00; 12.50 stays 12.50."""
    return (
        str(amount.quantize(Decimal(1)))
        if amount == amount.to_integral_value()
        else f"{amount:.2f}"
    )


def message_context(*, member: Member, coupon=None, points: int | None = None, order=None) -> dict:
    """The plain values a template may read (see rendering.VARIABLES)."""
    tier = member.tier
    return {
        "member": {"name": member.name, "external_id": member.external_id},
        "tier": tier
        and {
            "code": tier.code,
            "name": tier.name,
            "discount_percent": tier.discount_percent,
            "discount_label": tier.discount_label,
            "expires_at": member.tier_expires_at and timezone.localtime(member.tier_expires_at),
        },
        "coupon": coupon
        and {
            "code": coupon.code,
            "name": coupon.name,
            "min_spend": amount_text(coupon.min_spend),
            # A percentage coupon has no amount off (and maybe no cap): those read "".
            "amount_off": amount_text(coupon.amount_off) if coupon.amount_off else "",
            "percent_off": f"{coupon.percent_off.normalize():f}" if coupon.percent_off else "",
            "max_discount": amount_text(coupon.max_discount) if coupon.max_discount else "",
            # "满300减50", "满300享9折": how a shopper reads the terms (10% off is 9折).
            "discount_text": (f"满{amount_text(coupon.min_spend)}" if coupon.min_spend else "")
            + (
                f"减{amount_text(coupon.amount_off)}"
                if coupon.amount_off
                else f"享{((100 - coupon.percent_off) / 10).normalize():f}折"
            ),
            "expires_at": timezone.localtime(coupon.expires_at),
        },
        "points": points,
        "order": order and {"external_id": order.external_id, "amount": amount_text(order.amount)},
    }
