"""The member summary: the member's own row with what the other apps hold for them."""

from benefits.selectors import growth_balance, member_coupons, points_balance
from members.models import Member
from notifications.selectors import member_consents
from rules.selectors import tier_period


def member_summary(*, member: Member) -> dict:
    """What the member API answers with: tier, running totals, balances, tags, coupons,
    consents and the progress towards keeping the tier."""
    return {
        "external_id": member.external_id,
        "name": member.name,
        "birthday": member.birthday,
        "joined_at": member.joined_at,
        "tier": member.tier,
        "tier_since": member.tier_since,
        "tier_expires_at": member.tier_expires_at,
        "keep_tier": member_keep_tier(member=member),
        "lifetime_spend": member.lifetime_spend,
        "order_count": member.order_count,
        "points_balance": points_balance(member_id=member.pk),
        "growth_points": growth_balance(member_id=member.pk),
        "tags": sorted(member.tags.values_list("code", flat=True)),
        "coupons": member_coupons(member_id=member.pk),
        "language": member.language,
        "consents": member_consents(member_id=member.pk),
    }


def member_keep_tier(*, member: Member) -> dict | None:
    """How far the member is towards keeping their tier this period; None when the tier
    has no keep-tier threshold."""
    tier = member.tier
    if tier is None or tier.keep_threshold is None:
        return None
    figures = tier_period.period_figures(member=member)
    return {
        "measure": tier.keep_metric,
        "threshold": tier.keep_threshold,
        "reached": figures[tier.keep_metric],
        "shortfall": tier_period.keep_shortfall(tier, figures),
        "period_start": member.tier_period_start or member.tier_since,
    }
