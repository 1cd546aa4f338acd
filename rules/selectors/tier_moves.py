"""Tier moves with the rule behind each, for the reports: rules sit above members, so
here the tier history can be read with the rule that caused each change."""

from datetime import datetime

from django.db.models import Count, F

from core.days import business_bucket
from members.models import TierChange


def tier_moves_by_bucket(*, since: datetime, until: datetime, interval: str) -> list[dict]:
    """Tier changes in [since, until) between tiers (not a member's first tier), grouped by
    bucket, from and to tier, cause and rule: how many members, and the tiers' ranks."""
    rows = (
        TierChange.objects.filter(
            created_at__gte=since, created_at__lt=until, from_tier__isnull=False
        )
        .values(
            "cause",
            bucket=business_bucket("created_at", interval),
            from_code=F("from_tier__code"),
            from_rank=F("from_tier__rank"),
            to_code=F("to_tier__code"),
            to_rank=F("to_tier__rank"),
            rule=F("firing__rule__code"),
        )
        .annotate(members=Count("member_id", distinct=True))
        .order_by("bucket", "from_rank", "to_rank", "cause", "rule")
    )
    return list(rows)
