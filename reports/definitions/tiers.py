"""Reports about tiers: how they fill, who moves and why, what each tier spends."""

from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext_lazy as _

from core.money import money
from members import selectors as member_selectors
from rules.selectors.reports import tier_moves_by_bucket

from .. import figures
from ..periods import Period
from ..registry import Column, Kind, Report, fixed, register


def _distribution_columns() -> Sequence[Column]:
    tiers = [Column(tier.code) for tier in member_selectors.tiers_ranked()]
    return [Column("bucket", Kind.DATE), *tiers]


def _distribution(period: Period) -> Iterator[Sequence[Any]]:
    tiers = member_selectors.tiers_ranked()
    counts, deltas = figures.tier_counts(period)
    for bucket in period.buckets():
        counts.update(deltas.get(bucket, {}))
        yield [bucket, *(counts.get(tier.pk, 0) for tier in tiers)]


register(
    Report(
        name="tier-distribution",
        title=_("Tier distribution"),
        definition=_(
            "Members on each tier at the end of the bucket's last day, from the tier "
            "history (not today's tiers); a member counts from the day they joined, and a "
            "tier change dated before that (an order back-dated before joining) from then."
        ),
        columns=_distribution_columns,
        rows=_distribution,
    )
)


def _move(from_rank: int, to_rank: int) -> str:
    if to_rank > from_rank:
        return "upgrade"
    return "downgrade" if to_rank < from_rank else "renewal"


def _movements(period: Period) -> Iterator[Sequence[Any]]:
    for row in tier_moves_by_bucket(
        since=period.since, until=period.until, interval=period.interval
    ):
        cause = row["rule"] if row["cause"] == "rule" and row["rule"] else row["cause"]
        yield [
            row["bucket"],
            row["from_code"],
            row["to_code"],
            _move(row["from_rank"], row["to_rank"]),
            cause,
            row["members"],
        ]


register(
    Report(
        name="tier-movements",
        title=_("Tier movements"),
        definition=_(
            "Tier changes in the bucket, by from and to tier: move is upgrade, downgrade "
            "or renewal (a new period on the same tier); cause is the code of the rule "
            "that moved them, manual (an operator), lapse (the tier period ended: renewed "
            "or moved down) or refund. A member's first tier is not a movement."
        ),
        columns=fixed(
            Column("bucket", Kind.DATE),
            Column("from_tier", Kind.TEXT),
            Column("to_tier", Kind.TEXT),
            Column("move", Kind.TEXT),
            Column("cause", Kind.TEXT),
            Column("members"),
        ),
        rows=_movements,
    )
)


def _spend(period: Period) -> Iterator[Sequence[Any]]:
    tiers = member_selectors.tiers_ranked()
    spend_figures = figures.spend_by_tier(period)
    for bucket in period.buckets():
        for tier in tiers:
            found = spend_figures.get((bucket, tier.pk))
            if found is None:
                continue
            orders, spend = found["orders"], found["spend"]
            aov = money(Decimal(spend) / orders) if orders else money(0)
            yield [
                bucket,
                tier.code,
                orders,
                found["buyers"],
                money(spend),
                money(found["refunds"]),
                aov,
            ]


register(
    Report(
        name="spend-by-tier",
        title=_("Spend by tier"),
        definition=_(
            "Orders placed in the bucket by the tier the member held when the order was "
            "placed (before any move the order caused): orders, distinct buyers, spend "
            "(the orders' amounts) and aov (spend / orders); refunds are those dated in the "
            "bucket, against the tier of the order they refund. Only tiers with orders or "
            "refunds in the bucket."
        ),
        columns=fixed(
            Column("bucket", Kind.DATE),
            Column("tier", Kind.TEXT),
            Column("orders"),
            Column("buyers"),
            Column("spend", Kind.MONEY),
            Column("refunds", Kind.MONEY),
            Column("aov", Kind.MONEY),
        ),
        rows=_spend,
    )
)
