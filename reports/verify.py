"""Checks the roll-up's figures against the raw rows: each recounted from scratch and
compared, except where rows recorded since the roll-up changed what it should hold (the
next run brings those up to date; the reports count them raw meanwhile)."""

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from .models import (
    BuyerFigure,
    CohortFigure,
    PointsDay,
    PointsLotLeft,
    RuleFigure,
    TierDelta,
    TierSpendFigure,
)
from .periods import EARLIEST, LATEST, Interval, Period
from .recount import (
    buyer_rows,
    cohort_rows,
    delta_rows,
    history,
    lot_rows,
    points_day_rows,
    rule_rows,
    spend_rows,
)
from .rollup import Changes, rollup_mark


@dataclass
class Verdict:
    mark: datetime | None = None
    compared: int = 0
    skipped: int = 0  # figures changed since the roll-up, left to its next run
    differences: list[str] = field(default_factory=list)


def _compare(
    verdict: Verdict, what: str, stored: dict, fresh: dict, changed: Callable[[object], bool]
) -> None:
    for key in sorted(set(stored) | set(fresh), key=str):
        if changed(key):
            verdict.skipped += 1
            continue
        verdict.compared += 1
        kept, counted = stored.get(key), fresh.get(key)
        if kept != counted:
            verdict.differences.append(
                f"{what} {' '.join(map(str, key))}: kept {kept}, counted from the rows {counted}"
            )


def reports_verify(*, start: date | None = None, end: date | None = None) -> Verdict:
    """Recount the figures of the buckets from `start` to `end` (default: all) and compare."""
    start, end = start or EARLIEST, end or LATEST
    mark = rollup_mark()
    verdict = Verdict(mark=mark)
    if mark is None:
        return verdict
    changes = Changes(mark)
    for interval in Interval.values:
        span = history(interval)
        if span is None:
            continue
        span = Period(max(span.start, start), min(span.end, end), interval)
        if span.start > span.end:
            continue
        inside = {"interval": interval, "bucket__gte": span.start, "bucket__lte": span.end}
        dirty = {span.bucket_of(day) for day in changes.order_days}
        _compare(
            verdict,
            f"orders by {interval}",
            {
                (r.bucket,): (r.buyers, r.repeat_buyers)
                for r in BuyerFigure.objects.filter(**inside)
            },
            {(r.bucket,): (r.buyers, r.repeat_buyers) for r in buyer_rows(span) if _in(r, span)},
            lambda key, dirty=dirty, span=span: key[0] in dirty or _partial(key[0], span),
        )
        spend_days = changes.spend_days
        dirty = {span.bucket_of(day) for day in spend_days or ()}
        _compare(
            verdict,
            f"spend by tier by {interval}",
            {_spend_key(r): _spend(r) for r in TierSpendFigure.objects.filter(**inside)},
            {_spend_key(r): _spend(r) for r in spend_rows(span) if _in(r, span)},
            lambda key, dirty=dirty, span=span, everything=spend_days is None: (
                everything or key[0] in dirty or _partial(key[0], span)
            ),
        )
        dirty = {span.bucket_of(day) for day in changes.firing_days}
        _compare(
            verdict,
            f"rule by {interval}",
            {_rule_key(r): _rule(r) for r in RuleFigure.objects.filter(**inside)},
            {_rule_key(r): _rule(r) for r in rule_rows(span) if _in(r, span)},
            lambda key, dirty=dirty, span=span: key[0] in dirty or _partial(key[0], span),
        )
    days = history()
    if days is not None:
        days = Period(max(days.start, start), min(days.end, end))
        _compare(
            verdict,
            "tier change",
            _sums(TierDelta.objects.filter(day__gte=days.start, day__lte=days.end)),
            _sums(delta_rows(days)) if days.start <= days.end else {},
            lambda key: key[0] in changes.tier_days,
        )
    ledger_days = Period(max(EARLIEST, start), min(LATEST, end))
    _compare(
        verdict,
        "points on",
        {(r.day,): _moves(r) for r in PointsDay.objects.filter(day__gte=start, day__lte=end)},
        {(r.day,): _moves(r) for r in points_day_rows(ledger_days)},
        lambda key: key[0] in changes.points_days,
    )
    _compare(
        verdict,
        "cohort",
        {
            (r.cohort, r.offset): r.members
            for r in CohortFigure.objects.filter(cohort__gte=start, cohort__lte=end)
        },
        {
            (r.cohort, r.offset): r.members
            for r in cohort_rows(recorded_before=mark)
            if start <= r.cohort <= end
        },
        lambda key: False,
    )
    _compare(
        verdict,
        "points left of member",
        _lots(PointsLotLeft.objects.iterator(chunk_size=10_000)),
        _lots(lot_rows()),
        lambda key: key[0] in changes.points_members,
    )
    return verdict


def _in(row, span: Period) -> bool:
    return span.start <= row.bucket <= span.end


def _partial(label: date, span: Period) -> bool:
    """A bucket the span cuts: recounting part of it cannot match what was kept."""
    return label < span.start or span.next_bucket(label) > span.end + timedelta(days=1)


def _spend_key(row: TierSpendFigure) -> tuple:
    return (row.bucket, row.tier_id)


def _spend(row: TierSpendFigure) -> tuple:
    return (row.orders, row.buyers, row.spend, row.refunds)


def _rule_key(row: RuleFigure) -> tuple:
    return (row.bucket, row.rule_id)


def _rule(row: RuleFigure) -> tuple:
    return (row.firings, row.members, row.coupon_value, row.points)


def _moves(row: PointsDay) -> tuple:
    return (row.issued, row.redeemed, row.expired, row.reversed)


def _sums(rows: Iterable[TierDelta]) -> dict:
    sums: Counter = Counter()
    for row in rows:
        sums[row.day, row.tier_id] += row.members
    return {key: members for key, members in sums.items() if members}


def _lots(rows: Iterable[PointsLotLeft]) -> dict:
    sums: Counter = Counter()
    for row in rows:
        sums[row.member_id, row.expires_on] += row.points
    return dict(sums)
