"""Reports about benefits: coupons by template, the points ledger rolled forward, and the
outstanding points by when they lapse."""

from collections.abc import Iterator, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from benefits import report_selectors as benefit_reports
from core.money import money

from .. import figures
from ..periods import Period
from ..registry import Column, Kind, Report, fixed, register

COUPON_FIGURES = ("issued", "redeemed", "expired", "voided")


def _coupons(period: Period) -> Iterator[Sequence[Any]]:
    table = benefit_reports.coupons_by_bucket(
        since=period.since, until=period.until, interval=period.interval
    )
    codes = sorted({code for _bucket, code in table})
    for bucket in period.buckets():
        for code in codes:
            cell = table.get((bucket, code))
            if cell is None:
                yield [bucket, code, 0, 0, 0, 0, money(0)]
            else:
                yield [bucket, code, *(cell[f] for f in COUPON_FIGURES), cell["discount_given"]]


register(
    Report(
        name="coupons",
        title=_("Coupons"),
        definition=_(
            "One row per bucket for each coupon template (by its code) with any coupon "
            "issued, redeemed, expired or voided in the period. issued: coupons issued in "
            "the bucket; redeemed: used at the till in the bucket (a coupon given back "
            "after its order did not go ahead is not counted); expired: coupons whose "
            "expiry fell in the bucket (and has passed) while they were neither used nor "
            "void; voided: coupons taken back in the bucket because the order whose rule "
            "issued them was refunded in full; discount_given: what the coupons redeemed "
            "in the bucket took off their orders (after the tier's discount, never more "
            "than was left to pay; a percentage coupon used without the basket's amount "
            "counts as nothing)."
        ),
        columns=fixed(
            Column("bucket", Kind.DATE),
            Column("template", Kind.TEXT),
            Column("issued"),
            Column("redeemed"),
            Column("expired"),
            Column("voided"),
            Column("discount_given", Kind.MONEY),
        ),
        rows=_coupons,
    )
)


def _value(points: int) -> Decimal:
    return money(points * settings.TIERFLOW_POINT_VALUE)


def _points(period: Period) -> Iterator[Sequence[Any]]:
    closing, moves = figures.points_movements(period)
    for bucket in period.buckets():
        opening = closing
        m = moves.get(bucket, {"issued": 0, "redeemed": 0, "expired": 0, "reversed": 0})
        closing = opening + m["issued"] - m["redeemed"] - m["expired"] - m["reversed"]
        yield [
            bucket,
            opening,
            m["issued"],
            m["redeemed"],
            m["expired"],
            m["reversed"],
            closing,
            _value(closing),
        ]


register(
    Report(
        name="points",
        title=_("Points liability"),
        definition=_(
            "The points ledger rolled forward, all members together. opening and closing: "
            "the members' balances summed at the start and the end of the bucket (the sum "
            "of the ledger's entries dated before that moment); issued: points earned on "
            "orders and awarded by rules in the bucket (every positive entry); redeemed: "
            "spent at the till; expired: written off because they lapsed (the daily job "
            "dates the write-off at the midnight the points lapsed at, and points of an "
            "order so old that they lapsed before they were earned are written off when "
            "earned); reversed: taken back by refunds (and any other kind of negative "
            "entry). opening + issued - redeemed - expired - reversed = closing in every "
            "bucket. closing_value: closing times the value of a point "
            "(TIERFLOW_POINT_VALUE)."
        ),
        columns=fixed(
            Column("bucket", Kind.DATE),
            Column("opening"),
            Column("issued"),
            Column("redeemed"),
            Column("expired"),
            Column("reversed"),
            Column("closing"),
            Column("closing_value", Kind.MONEY),
        ),
        rows=_points,
    )
)


AGING = (  # (row, the last month it covers, counted from the month of the `to` date)
    ("this_month", 0),
    ("next_month", 1),
    ("within_3_months", 2),
    ("within_6_months", 5),
    ("within_12_months", 11),
    ("later", None),
)
NEVER = "never"
AGING_ROWS = [name for name, _last in AGING] + [NEVER]


def _months_after(day: date, start: date) -> int:
    return (day.year - start.year) * 12 + day.month - start.month


def _points_aging(period: Period) -> Iterator[Sequence[Any]]:
    end = period.end

    def row_of(expires_on: date | None) -> str:
        if expires_on is None:
            return NEVER
        months = _months_after(expires_on, end)
        return next(name for name, last in AGING if last is None or months <= last)

    first = Period(end, end, "month")
    bounds, bound = [], end.replace(day=1)
    for name, last in AGING:
        if last is None:
            bounds.append((name, None))
            continue
        while _months_after(bound, end) <= last:
            bound = first.next_bucket(bound)
        bounds.append((name, bound))
    found = figures.points_by_expiry(end, bounds, row_of)
    for row in AGING_ROWS:
        points, members = found.get(row, (0, 0))
        yield [row, points, _value(points), members]


register(
    Report(
        name="points-aging",
        title=_("Points by when they lapse"),
        definition=_(
            "The points outstanding at the end of the period's last day (the `to` date; "
            "`from` and `interval` do not change it), by the day they lapse (the day the "
            "daily job writes them off): this_month (the month of the `to` date), "
            "next_month, within_3_months (the month after next), within_6_months (the 4th "
            "to 6th months, counting the month of `to` as the 1st), within_12_months (the "
            "7th to 12th), later, and never (points that do not lapse). Spent, written-off "
            "and reversed points use up each member's points that lapse soonest first, as "
            "the balance does, so the rows add up to the members' balances. value: points "
            "times the value of a point (TIERFLOW_POINT_VALUE); members: members holding "
            "such points (a member may be in several rows)."
        ),
        columns=fixed(
            Column("expires_in", Kind.TEXT),
            Column("points"),
            Column("value", Kind.MONEY),
            Column("members"),
        ),
        rows=_points_aging,
    )
)
