"""The benefits as the reports read them: what rule firings gave members (a firing's
coupons and points are linked to it, `firing`), coupons by bucket, the points ledger
rolled forward, and the lots' outstanding points."""

from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal

from django.db.models import Case, Count, DecimalField, F, Q, QuerySet, Sum, Value, When, Window
from django.utils import timezone

from core.days import business_bucket
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


def coupons_by_bucket(
    *, since: datetime, until: datetime, interval: str, now: datetime | None = None
) -> dict[tuple[date, str], dict]:
    """By (bucket, template code), over [since, until): the coupons issued; redeemed (used
    and not given back), with the discount_given they took off; expired (their expiry
    passed, by `now`, while they were neither used nor void); and voided."""
    now = now or timezone.now()
    Status = Coupon.Status
    figures = {
        "issued": ("issued_at", Q()),
        "redeemed": ("redeemed_at", Q(status=Status.REDEEMED)),
        "expired": ("expires_at", Q(status=Status.ISSUED, expires_at__lte=now)),
        "voided": ("voided_at", Q(status=Status.VOID)),
    }
    table: dict[tuple[date, str], dict] = {}
    for figure, (moment, which) in figures.items():
        rows = (
            Coupon.objects.filter(which, **{f"{moment}__gte": since, f"{moment}__lt": until})
            .values("template__code", bucket=business_bucket(moment, interval))
            .annotate(count=Count("pk"), given=Sum("discount_given"))
            .values_list("bucket", "template__code", "count", "given")
        )
        for bucket, code, count, given in rows:
            cell = table.setdefault(
                (bucket, code), {**dict.fromkeys(figures, 0), "discount_given": money(0)}
            )
            cell[figure] = count
            if figure == "redeemed":
                cell["discount_given"] = money(given or 0)
    return table


def points_ledger_total(*, before: datetime) -> int:
    """All members' balances summed just before `before`: the ledger's entries dated
    before it (a balance is the sum of its ledger)."""
    total = PointsEntry.objects.filter(created_at__lt=before).aggregate(total=Sum("points"))
    return total["total"] or 0


def points_movements_by_bucket(
    *, since: datetime, until: datetime, interval: str
) -> dict[date, dict[str, int]]:
    """By bucket of the ledger's entries dated in [since, until), as positive numbers:
    issued (every positive entry: earned and bonus lots), redeemed, expired (written off)
    and reversed (refunds' take-backs, and any other negative entry)."""
    negative = Q(points__lt=0)
    # A negative entry of a kind other than these (there is none yet) counts as reversed.
    named = Q(kind__in=[PointsEntry.Kind.REDEEM, PointsEntry.Kind.EXPIRE])
    rows = (
        PointsEntry.objects.filter(created_at__gte=since, created_at__lt=until)
        .values(bucket=business_bucket("created_at", interval))
        .annotate(
            issued=Sum("points", filter=Q(points__gt=0)),
            redeemed=Sum("points", filter=negative & Q(kind=PointsEntry.Kind.REDEEM)),
            expired=Sum("points", filter=negative & Q(kind=PointsEntry.Kind.EXPIRE)),
            reversed=Sum("points", filter=negative & ~named),
        )
    )
    return {
        row["bucket"]: {
            "issued": row["issued"] or 0,
            "redeemed": -(row["redeemed"] or 0),
            "expired": -(row["expired"] or 0),
            "reversed": -(row["reversed"] or 0),
        }
        for row in rows
    }


def points_outstanding(
    *, before: datetime, member_ids: Iterable[int] | None = None
) -> Iterator[tuple[int, datetime | None, int]]:
    """(member id, expires at, points left) of every lot with points left and not lapsed
    just before `before`, from the entries dated before it (of the members `member_ids`,
    default all)."""
    for member_id, expires_at, left in points_lots_left(before=before, member_ids=member_ids):
        if expires_at is None or expires_at >= before:
            yield member_id, expires_at, left


def points_lots_left(
    *, before: datetime | None = None, member_ids: Iterable[int] | None = None
) -> Iterator[tuple[int, datetime | None, int]]:
    """(member id, expires at, points left) of every lot with points left, lapsed or not,
    from the entries dated before `before` (default: all of them), of the members
    `member_ids` (default: all). As points_lots and points_expire do: every negative entry
    (spent, written off, reversed) uses up the member's lots that lapse soonest first,
    lots that never lapse last, so what is left of the lapsed lots is what points_balance
    leaves out, and the rows sum to the balances."""
    entries = PointsEntry.objects.all()
    if before is not None:
        entries = entries.filter(created_at__lt=before)
    if member_ids is not None:
        entries = entries.filter(member_id__in=member_ids)
    used = dict(
        entries.filter(points__lt=0)
        .values("member_id")
        .annotate(used=-Sum("points"))
        .values_list("member_id", "used")
    )
    # The lots in the order they are used up, with a running total per member: what the
    # member's negative entries leave of a lot is its part of the total beyond them.
    lots = (
        entries.filter(points__gt=0)
        .annotate(
            running=Window(
                Sum("points"),
                partition_by=[F("member_id")],
                order_by=[F("expires_at").asc(nulls_last=True), F("created_at"), F("pk")],
            )
        )
        .values_list("member_id", "expires_at", "points", "running")
    )
    for member_id, expires_at, points, running in lots.iterator(chunk_size=10_000):
        left = min(points, running - used.get(member_id, 0))
        if left > 0:
            yield member_id, expires_at, left


def points_member_ids_recorded_since(moment: datetime) -> set[int]:
    """Members with ledger entries recorded at or after `moment`."""
    entries = PointsEntry.objects.filter(recorded_at__gte=moment).order_by()
    return set(entries.values_list("member_id", flat=True).distinct())


def points_days_recorded_since(moment: datetime) -> set[date]:
    """The business days the ledger entries recorded at or after `moment` are dated on."""
    entries = PointsEntry.objects.filter(recorded_at__gte=moment).order_by()
    return set(entries.values_list(business_bucket("created_at", "day"), flat=True).distinct())
