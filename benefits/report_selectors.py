"""What rule firings gave members, for the reports. A firing's coupons and points are
linked to it (`firing`); these read them by firing, whatever the app that fired them."""

from collections.abc import Iterable
from decimal import Decimal

from django.db.models import Case, DecimalField, Q, QuerySet, Sum, Value, When
from django.utils import timezone

from core.money import money

from .models import Coupon, Discount, GrowthEntry, PointsEntry
from .selectors import points_available

ZERO = Decimal("0.00")

# What a coupon is worth on its face: the amount off; for a percentage off, its cap (a
# percentage of an order not yet placed has no amount), or nothing when it has no cap.
FACE_VALUE = Case(
    When(discount=Discount.AMOUNT, then="amount_off"),
    When(discount=Discount.PERCENT, max_discount__isnull=False, then="max_discount"),
    default=Value(ZERO),
    output_field=DecimalField(max_digits=14, decimal_places=2),
)


def coupon_value_by_firing(*, firing_ids: Iterable[int] | QuerySet) -> dict[int, Decimal]:
    """The face value (FACE_VALUE) of the coupons each firing issued, whatever became of
    them since (used, expired, voided by a refund); firings that issued none are absent.
    `firing_ids`: ids, or a query of them."""
    rows = (
        Coupon.objects.filter(firing_id__in=firing_ids)
        .values("firing_id")
        .annotate(value=Sum(FACE_VALUE))
        .order_by()
        .values_list("firing_id", "value")
    )
    return {firing_id: money(value or ZERO) for firing_id, value in rows}


def points_awarded_by_firing(*, firing_ids: Iterable[int] | QuerySet) -> dict[int, int]:
    """The points each firing awarded: its lots in the ledger (earned or bonus), before
    any refund reversed them or they lapsed; firings that awarded none are absent."""
    rows = (
        PointsEntry.objects.filter(
            firing_id__in=firing_ids,
            kind__in=[PointsEntry.Kind.EARN, PointsEntry.Kind.BONUS],
            points__gt=0,
        )
        .values("firing_id")
        .annotate(points=Sum("points"))
        .order_by()
        .values_list("firing_id", "points")
    )
    return dict(rows)


def balances_by_member(*, member_ids: Iterable[int], at=None) -> dict[int, tuple[int, int]]:
    """(points a member can spend, growth points) for each of `member_ids`, at `at`
    (default now): the points as points_balance counts them, for many members at once."""
    ids = list(member_ids)
    points = (
        PointsEntry.objects.filter(member_id__in=ids)
        .values("member_id")
        .annotate(
            total=Sum("points"),
            used=Sum("points", filter=Q(points__lt=0)),
            lapsed=Sum("points", filter=Q(points__gt=0, expires_at__lte=at or timezone.now())),
        )
    )
    growth = dict(
        GrowthEntry.objects.filter(member_id__in=ids)
        .values("member_id")
        .annotate(total=Sum("points"))
        .values_list("member_id", "total")
    )
    spendable = {
        row["member_id"]: points_available(
            total=row["total"] or 0, used=-(row["used"] or 0), lapsed=row["lapsed"] or 0
        )
        for row in points
    }
    return {
        member_id: (spendable.get(member_id, 0), growth.get(member_id) or 0) for member_id in ids
    }
