"""Opening balances brought from the system a business had before (imports): each one
ledger entry of its own kind, with its expiry. The ledgers are append-only, so bringing a
different balance for a member later adds an entry of the difference: a member's opening
entries always sum to the last balance brought."""

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from core.copy import rows_insert

from ..models import GrowthEntry, PointsEntry

REASON = "opening balance (import)"


def opening_balances(member_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """(points, growth points) brought so far for each member that has any."""
    ids = list(member_ids)
    found: dict[int, list[int]] = {}
    for index, ledger in enumerate((PointsEntry, GrowthEntry)):
        rows = (
            ledger.objects.filter(member_id__any_of=ids, kind=ledger.Kind.OPENING)
            .values("member_id")
            .annotate(total=Sum("points"))
            .order_by()
            .values_list("member_id", "total")
        )
        for member_id, total in rows:
            found.setdefault(member_id, [0, 0])[index] = total
    return {member_id: (points, growth) for member_id, (points, growth) in found.items()}


@transaction.atomic
def opening_balances_record(
    *,
    points: list[tuple[int, int, datetime | None]],
    growth: list[tuple[int, int]],
    at: datetime | None = None,
) -> None:
    """Entries of (member id, points, expiry) and (member id, growth points), dated `at`
    (default now): the differences between the balances brought now and before."""
    at = at or timezone.now()
    rows_insert(
        PointsEntry,
        ["member_id", "kind", "points", "reason", "expires_at", "created_at"],
        [
            (member_id, PointsEntry.Kind.OPENING, amount, REASON, expires_at, at)
            for member_id, amount, expires_at in points
            if amount
        ],
    )
    rows_insert(
        GrowthEntry,
        ["member_id", "kind", "points", "reason", "created_at"],
        [(m, GrowthEntry.Kind.OPENING, amount, REASON, at) for m, amount in growth if amount],
    )
