"""A member's current tier period, and how far it goes towards keeping the tier: what the
daily job judges at expiry, and what facts and the member API show before then."""

from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from benefits import selectors as benefit_selectors
from members.models import KeepMetric, Member, Tier
from orders import selectors as order_selectors


def period_figures(*, member: Member, now: datetime | None = None) -> dict[str, Decimal]:
    """Spend and growth points in the member's current tier period: after the moment
    that started it (so the order that moved the member up counts for the tier below),
    up to and including its end (`now` for a tier that never lapses)."""
    start = member.tier_period_start or member.tier_since or member.joined_at
    end = member.tier_expires_at or now or timezone.now()
    return {
        KeepMetric.SPEND: order_selectors.member_spend_between(
            member_id=member.pk, start=start, end=end
        ),
        KeepMetric.GROWTH: Decimal(
            benefit_selectors.growth_between(member_id=member.pk, start=start, end=end)
        ),
    }


def keeps(tier: Tier, figures: dict[str, Decimal]) -> bool:
    return tier.keep_threshold is None or figures[tier.keep_metric] >= tier.keep_threshold


def keep_shortfall(tier: Tier | None, figures: dict[str, Decimal]) -> Decimal:
    """How much more the member needs in this period to keep the tier (0: kept)."""
    if tier is None or tier.keep_threshold is None:
        return Decimal(0)
    return max(Decimal(0), tier.keep_threshold - figures[tier.keep_metric])
