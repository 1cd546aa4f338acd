"""Reports about members and their orders: growth, repurchase and cohorts."""

from collections.abc import Iterator, Sequence
from typing import Any

from django.utils.translation import gettext_lazy as _

from members import selectors as member_selectors

from .. import figures
from ..periods import Period
from ..recount import COHORT_MONTHS
from ..registry import Column, Kind, Report, fixed, rate, register


def _member_growth(period: Period) -> Iterator[Sequence[Any]]:
    joined = member_selectors.members_joined_by_bucket(
        since=period.since, until=period.until, interval=period.interval
    )
    buyers = figures.buyers_by_bucket(period)
    total = member_selectors.members_joined_before(moment=period.since)
    for bucket in period.buckets():
        total += joined.get(bucket, 0)
        yield [bucket, joined.get(bucket, 0), buyers.get(bucket, (0, 0))[0], total]


register(
    Report(
        name="member-growth",
        title=_("Member growth"),
        definition=_(
            "new_members: joined in the bucket; active_members: placed at least one order "
            "in the bucket; total_members: joined on or before the bucket's last day."
        ),
        columns=fixed(
            Column("bucket", Kind.DATE),
            Column("new_members"),
            Column("active_members"),
            Column("total_members"),
        ),
        rows=_member_growth,
    )
)


def _repurchase(period: Period) -> Iterator[Sequence[Any]]:
    buyers = figures.buyers_by_bucket(period)
    for bucket in period.buckets():
        count, repeat = buyers.get(bucket, (0, 0))
        yield [bucket, count, repeat, rate(repeat, count)]


register(
    Report(
        name="repurchase",
        title=_("Repurchase"),
        definition=_(
            "buyers: members with at least one order placed in the bucket; repeat_buyers: "
            "those with orders on two or more different days of it (a basket split into "
            "several orders on one day is not a repurchase); repurchase_rate: their ratio."
        ),
        columns=fixed(
            Column("bucket", Kind.DATE),
            Column("buyers"),
            Column("repeat_buyers"),
            Column("repurchase_rate", Kind.RATE),
        ),
        rows=_repurchase,
    )
)


def _cohorts(period: Period) -> Iterator[Sequence[Any]]:
    # Whole months: a cohort is every member whose first order falls in its month.
    whole = Period(period.start.replace(day=1), period.end, "month")
    counts = figures.cohort_figures(whole)
    for month in whole.buckets():
        size = counts[month, 0]
        yield [month, size, *(rate(counts[month, n], size) for n in range(COHORT_MONTHS))]


register(
    Report(
        name="cohorts",
        title=_("Cohorts"),
        definition=_(
            "Members by the month of their first order (the cohort: each whole month the "
            "period touches, whatever the interval); size: how many; month_N: the "
            "share of the cohort that placed an order N months after their first month "
            "(month_0 is 1 by definition)."
        ),
        columns=fixed(
            Column("cohort", Kind.DATE),
            Column("size"),
            *(Column(f"month_{n}", Kind.RATE) for n in range(COHORT_MONTHS)),
        ),
        rows=_cohorts,
    )
)
