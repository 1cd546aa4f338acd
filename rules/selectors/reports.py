"""Rule firings for the reports: which rules fired when, and for whom; and the tier moves
with the rule behind each (rules sit above members, so here the tier history can be read
with the rule that caused each change)."""

from collections.abc import Iterator
from datetime import date, datetime

from django.db.models import Count, F, QuerySet

from core.days import business_bucket
from members.models import TierChange

from ..models import Rule, RuleFiring


def rule_firing_ids(*, since: datetime, until: datetime) -> QuerySet:
    """The ids of the firings in [since, until), as a query: other apps' selectors filter
    on it as a subquery rather than on a list of every id."""
    return RuleFiring.objects.filter(fired_at__gte=since, fired_at__lt=until).values("pk")


def rule_firings_by_bucket(
    *, since: datetime, until: datetime, interval: str
) -> Iterator[tuple[int, date, int, int]]:
    """(firing id, business date starting its bucket, rule id, member id) of each firing
    in [since, until), in no particular order."""
    rows = (
        RuleFiring.objects.filter(fired_at__gte=since, fired_at__lt=until)
        .order_by()
        .values_list("pk", business_bucket("fired_at", interval), "rule_id", "member_id")
    )
    return rows.iterator(chunk_size=10_000)


def firing_days_since(moment: datetime) -> set[date]:
    """The business days of the firings fired at or after `moment`. A firing is dated when
    it is recorded (never back-dated), so these are the days firings recorded since fell
    on."""
    firings = RuleFiring.objects.filter(fired_at__gte=moment).order_by()
    return set(firings.values_list(business_bucket("fired_at", "day"), flat=True).distinct())


def rule_ids_by_code() -> dict[str, int]:
    return dict(Rule.objects.values_list("code", "pk"))


def rule_codes() -> dict[int, str]:
    return dict(Rule.objects.values_list("pk", "code"))


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
