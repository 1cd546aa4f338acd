"""The members of a batch as they stood right after each of their events.

A batch evaluation locks its members and loads, once for all of them and only what its
rules read: their waiting events, their orders and engagements recent enough for the
rules' windows and tier periods, their ledgers in brief and their tags. A member's row
holds running totals of every event recorded; right after event `seq` they were those
totals less what the later events added. A member's events are evaluated in order, so
every event recorded after `seq` is still waiting and the batch has it in hand: no
evaluation ever sees an event recorded after its own.

Windows ("spend in the last N days") count the orders recorded up to the event whose
`placed_at` falls in the N days up to the event's own time (engagements by
`occurred_at`), net of the refunds recorded up to the event."""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from django.db.models import F, Q, Sum

from benefits.models import GrowthEntry, PointsEntry
from benefits.selectors import points_available
from core.money import money
from members.models import EngagementEvent, KeepMetric, Member, TierChange
from orders.models import Order, Refund

from ..models import Trigger

ZERO = Decimal("0.00")


class Waiting(NamedTuple):
    """One event waiting for evaluation: its number, its trigger and what it is about
    (an order, a refund, an engagement, a tier change, or the member for joining)."""

    seq: int
    trigger: str
    subject: Any


def waiting_events(members: list[Member]) -> dict[int, list[Waiting]]:
    """Each locked member's waiting events, in the order they were recorded: four
    queries for the whole batch, however many members and events."""
    waiting: dict[int, list[Waiting]] = {member.pk: [] for member in members}
    behind = [member.pk for member in members if member.evaluated_seq < member.event_seq]
    for member in members:
        if member.evaluated_seq < 1:
            waiting[member.pk].append(Waiting(1, Trigger.MEMBER_JOINED, member))
    if behind:
        sources = (
            (Trigger.ORDER_PAID, Order.objects.all()),
            (Trigger.ORDER_REFUNDED, Refund.objects.select_related("order")),
            (Trigger.ENGAGEMENT, EngagementEvent.objects.select_related("kind")),
            (Trigger.TIER_CHANGED, TierChange.objects.select_related("from_tier", "to_tier")),
        )
        for trigger, queryset in sources:
            rows = queryset.filter(member_id__in=behind, seq__gt=F("member__evaluated_seq"))
            for subject in rows:
                waiting[subject.member_id].append(Waiting(subject.seq, trigger, subject))
    for events in waiting.values():
        events.sort(key=lambda item: item.seq)
    return waiting


@dataclass
class OrderRow:
    pk: int
    seq: int
    amount: Decimal
    refunded: Decimal  # by every refund recorded so far
    placed_at: datetime


@dataclass
class PointsBook:
    """A member's points ledger in brief, enough to tell what they could spend at any
    moment of the batch's span: the sum, what negative entries used, the lots lapsed by
    the span's start, and the lots lapsing within it."""

    start: datetime
    total: int = 0
    used: int = 0
    lapsed: int = 0
    lapsing: list[tuple[datetime, int]] = field(default_factory=list)

    def add(self, points: int, expires_at: datetime | None) -> None:
        self.total += points
        if points < 0:
            self.used -= points
        elif expires_at is not None and expires_at <= self.start:
            self.lapsed += points
        elif expires_at is not None:
            self.lapsing.append((expires_at, points))

    def available(self, at: datetime) -> int:
        lapsed = self.lapsed + sum(points for when, points in self.lapsing if when <= at)
        return points_available(total=self.total, used=self.used, lapsed=lapsed)


@dataclass
class GrowthBook:
    total: int = 0
    # (when, points) of the entries since the earliest tier period, when rules need it.
    entries: list[tuple[datetime, int]] | None = None

    def add(self, points: int, at: datetime) -> None:
        self.total += points
        if self.entries is not None:
            self.entries.append((at, points))

    def between(self, start: datetime, end: datetime) -> int:
        return sum(points for at, points in self.entries or () if start < at <= end)


class History:
    """What a batch knows of its locked members, each source loaded for all of them on
    first use. `span` is the earliest and latest moment the batch judges facts at;
    `horizon` the earliest moment a window or tier period may reach back to."""

    def __init__(
        self,
        members: list[Member],
        waiting: dict[int, list[Waiting]],
        *,
        span: tuple[datetime, datetime],
        horizon: datetime,
        before_load: Callable[[], None] = lambda: None,
    ) -> None:
        # `before_load` saves what the caller holds back (ledger entries written in bulk)
        # before a ledger is read from the database.
        self.before_load = before_load
        self.members = {member.pk: member for member in members}
        self.waiting, self.span, self.horizon = waiting, span, horizon
        # Refunds recorded after a given event are all still waiting: by order, in hand.
        self._refunds: dict[int, list[tuple[int, Decimal]]] = defaultdict(list)
        for events in waiting.values():
            for item in events:
                if item.trigger == Trigger.ORDER_REFUNDED:
                    self._refunds[item.subject.order_id].append((item.seq, item.subject.amount))
        self._totals: dict[int, list[tuple[int, tuple[Decimal, int]]]] = {}
        self._orders: tuple[datetime, dict[int, list[OrderRow]]] | None = None
        self._engagements: tuple[datetime, dict[int, list[tuple]]] | None = None
        self._points: dict[int, PointsBook] | None = None
        self._growth: dict[int, GrowthBook] | None = None
        self._growth_since: datetime | None = None
        self._tags: dict[int, set[str]] | None = None

    # --- as of an event ------------------------------------------------------------

    def refunded(self, order_id: int, refunded_now: Decimal, seq: int) -> Decimal:
        """What had been refunded of an order right after event `seq`."""
        later = sum((amount for at, amount in self._refunds.get(order_id, ()) if at > seq), ZERO)
        return refunded_now - later

    def totals(self, member_id: int, seq: int) -> tuple[Decimal, int]:
        """(lifetime spend, orders not refunded in full) right after event `seq`."""
        if member_id not in self._totals:
            self._totals[member_id] = self._walk_back(self.members[member_id])
        return next(value for at, value in reversed(self._totals[member_id]) if at <= seq)

    def _walk_back(self, member: Member) -> list[tuple[int, tuple[Decimal, int]]]:
        """(event, the totals right after it) for each waiting event, in order, after
        the totals before the first of them: from today's totals, each waiting event's
        own change is taken off in turn, the latest first."""
        spend, count = member.lifetime_spend, member.order_count
        steps = []
        for item in reversed(self.waiting.get(member.pk, ())):
            steps.append((item.seq, (spend, count)))
            if item.trigger == Trigger.ORDER_PAID:
                spend, count = spend - item.subject.amount, count - 1
            elif item.trigger == Trigger.ORDER_REFUNDED:
                refund, order = item.subject, item.subject.order
                now_refunded = self.refunded(order.pk, order.refunded_amount, refund.seq)
                closed = order.amount > 0 and (
                    now_refunded >= order.amount > now_refunded - refund.amount
                )
                spend, count = spend + refund.amount, count + (1 if closed else 0)
        steps.append((-1, (spend, count)))
        return steps[::-1]

    # --- sources, loaded for the whole batch on first use --------------------------

    def orders(self, member_id: int, since: datetime) -> list[OrderRow]:
        if self._orders is None or since < self._orders[0]:
            since = min(since, self.horizon)
            rows = defaultdict(list)
            for pk, owner, seq, amount, refunded, placed_at in Order.objects.filter(
                member_id__in=self.members, placed_at__gte=since
            ).values_list("pk", "member_id", "seq", "amount", "refunded_amount", "placed_at"):
                rows[owner].append(OrderRow(pk, seq, amount, refunded, placed_at))
            self._orders = (since, rows)
        return self._orders[1].get(member_id, [])

    def engagements(self, member_id: int, since: datetime) -> list[tuple[int, datetime, str]]:
        if self._engagements is None or since < self._engagements[0]:
            since = min(since, self.horizon)
            rows = defaultdict(list)
            for owner, seq, occurred_at, kind in EngagementEvent.objects.filter(
                member_id__in=self.members, occurred_at__gt=since
            ).values_list("member_id", "seq", "occurred_at", "kind__code"):
                rows[owner].append((seq, occurred_at, kind))
            self._engagements = (since, rows)
        return self._engagements[1].get(member_id, [])

    @property
    def has_points(self) -> bool:
        return self._points is not None

    @property
    def has_growth(self) -> bool:
        return self._growth is not None

    def points(self, member_id: int) -> PointsBook:
        if self._points is None:
            self._points = self._load_points(list(self.members))
        return self._points[member_id]

    def _load_points(self, member_ids: list[int]) -> dict[int, PointsBook]:
        self.before_load()
        start, end = self.span
        books = {member_id: PointsBook(start) for member_id in member_ids}
        for owner, total, used, lapsed in (
            PointsEntry.objects.filter(member_id__in=member_ids)
            .values("member_id")
            .annotate(
                total=Sum("points"),
                used=Sum("points", filter=Q(points__lt=0)),
                lapsed=Sum("points", filter=Q(points__gt=0, expires_at__lte=start)),
            )
            .values_list("member_id", "total", "used", "lapsed")
        ):
            books[owner].total, books[owner].used = total or 0, -(used or 0)
            books[owner].lapsed = lapsed or 0
        if end > start:
            for owner, expires_at, points in PointsEntry.objects.filter(
                member_id__in=member_ids, points__gt=0, expires_at__gt=start, expires_at__lte=end
            ).values_list("member_id", "expires_at", "points"):
                books[owner].lapsing.append((expires_at, points))
        return books

    def growth(self, member_id: int, since: datetime | None = None) -> GrowthBook:
        """The growth ledger in brief; with `since`, also its entries from then on."""
        wanted = since is not None and (self._growth_since is None or since < self._growth_since)
        if self._growth is None or wanted:
            self._growth = self._load_growth(list(self.members), since)
        return self._growth[member_id]

    def _load_growth(self, member_ids: list[int], since: datetime | None) -> dict:
        self.before_load()
        books = {member_id: GrowthBook() for member_id in member_ids}
        entries = GrowthEntry.objects.filter(member_id__in=member_ids)
        totals = entries.values("member_id").annotate(total=Sum("points"))
        for owner, total in totals.values_list("member_id", "total"):
            books[owner].total = total or 0
        if since is not None:
            since = min(since, self.horizon)
            self._growth_since = since
            for book in books.values():
                book.entries = []
            for owner, at, points in entries.filter(created_at__gte=since).values_list(
                "member_id", "created_at", "points"
            ):
                books[owner].entries.append((at, points))
        return books

    def tags(self, member_id: int) -> set[str]:
        if self._tags is None:
            self._tags = self._load_tags(list(self.members))
        return self._tags[member_id]

    def _load_tags(self, member_ids: list[int]) -> dict[int, set[str]]:
        tags = {member_id: set() for member_id in member_ids}
        links = Member.tags.through.objects.filter(member_id__in=member_ids)
        for owner, code in links.values_list("member_id", "tag__code"):
            tags[owner].add(code)
        return tags

    def reload(self, member_id: int, sources: set[str]) -> None:
        """Read again what a firing's actions changed for a member, through the owning
        apps' services ("points_balance", "growth_points", "tags")."""
        if "points_balance" in sources and self._points is not None:
            self._points.update(self._load_points([member_id]))
        if "growth_points" in sources and self._growth is not None:
            since = self._growth_since
            book = self._load_growth([member_id], since)[member_id]
            self._growth[member_id] = book
        if "tags" in sources and self._tags is not None:
            self._tags.update(self._load_tags([member_id]))


class AsOf:
    """The data facts are computed from (see facts.FactSource) for a member as they stood
    right after their event `seq`, judged at `at`."""

    def __init__(self, history: History, member_id: int, seq: int, at: datetime) -> None:
        self.history, self.member_id, self.seq, self.at = history, member_id, seq, at

    def totals(self) -> tuple[Decimal, int]:
        return self.history.totals(self.member_id, self.seq)

    def _orders(self, since: datetime) -> list[tuple[OrderRow, Decimal]]:
        """Orders recorded up to the event placed since `since`, with what had been
        refunded of each by then."""
        history = self.history
        return [
            (row, history.refunded(row.pk, row.refunded, self.seq))
            for row in history.orders(self.member_id, since)
            if row.seq <= self.seq and row.placed_at >= since
        ]

    def order_windows(self, windows: set[int]) -> dict[int, tuple[Decimal, int]]:
        if not windows:
            return {}
        rows = self._orders(self.at - timedelta(days=max(windows)))
        result = {}
        for days in windows:
            start = self.at - timedelta(days=days)
            recent = [(row, refunded) for row, refunded in rows if start < row.placed_at <= self.at]
            spend = sum((row.amount - refunded for row, refunded in recent), ZERO)
            count = sum(1 for row, refunded in recent if row.amount == 0 or refunded < row.amount)
            result[days] = (money(spend), count)
        return result

    def engagement_counts(self, windows: set[tuple[int, str | None]]) -> dict:
        if not windows:
            return {}
        since = self.at - timedelta(days=max(days for days, _ in windows))
        events = [
            (occurred_at, kind)
            for seq, occurred_at, kind in self.history.engagements(self.member_id, since)
            if seq <= self.seq
        ]
        return {
            (days, kind): sum(
                1
                for occurred_at, event_kind in events
                if self.at - timedelta(days=days) < occurred_at <= self.at
                and kind in (None, event_kind)
            )
            for days, kind in windows
        }

    def points_balance(self) -> int:
        return self.history.points(self.member_id).available(self.at)

    def growth_points(self) -> int:
        return self.history.growth(self.member_id).total

    def period_figures(self, member: Member) -> dict[str, Decimal]:
        """Spend and growth points in the member's current tier period, as of the event
        (up to its time for a tier that never lapses)."""
        start = member.tier_period_start or member.tier_since or member.joined_at
        end = member.tier_expires_at or self.at
        spend = sum(
            (
                row.amount - refunded
                for row, refunded in self._orders(start)
                if start < row.placed_at <= end
            ),
            ZERO,
        )
        growth = self.history.growth(self.member_id, since=start).between(start, end)
        return {KeepMetric.SPEND: money(spend), KeepMetric.GROWTH: Decimal(growth)}

    def tags(self) -> frozenset[str]:
        return frozenset(self.history.tags(self.member_id))
