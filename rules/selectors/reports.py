"""Rule firings for the reports: which rules fired when, and for whom."""

from collections.abc import Iterator
from datetime import date, datetime

from django.db.models import F, QuerySet

from core.days import business_bucket

from ..models import Rule, RuleFiring


def rule_firing_ids(*, since: datetime, until: datetime) -> QuerySet:
    """The ids of the firings in [since, until), as a query: other apps' selectors filter
    on it as a subquery rather than on a list of every id."""
    return RuleFiring.objects.filter(fired_at__gte=since, fired_at__lt=until).values("pk")


def rule_firings_by_bucket(
    *, since: datetime, until: datetime, interval: str
) -> Iterator[tuple[int, date, str, int]]:
    """(firing id, business date starting its bucket, rule code, member id) of each firing
    in [since, until), in no particular order."""
    rows = (
        RuleFiring.objects.filter(fired_at__gte=since, fired_at__lt=until)
        .order_by()
        .values_list("pk", business_bucket("fired_at", interval), F("rule__code"), "member_id")
    )
    return rows.iterator(chunk_size=10_000)


def rule_ids_by_code() -> dict[str, int]:
    return dict(Rule.objects.values_list("code", "pk"))
