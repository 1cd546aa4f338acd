"""Simulate a rule, even a draft, on the last N days: replay what happened in that time
(paid orders, refunds, engagements, new members; for clock triggers, each day) in time
order, as if the rule had been live, and count what it would have done and cost. Nothing
is written.

Facts are taken as they stood at each moment: spend, order counts and windows from the
orders placed by then (net of their refunds as known today), the tier from the tier
history, points and growth points from the ledgers, engagements from the events, plus
what the simulated rule itself gave earlier in the replay. Tags, birthdays and lapse
dates are today's. The same fact functions as the engine's compute the values.
"""

import bisect
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import islice
from types import SimpleNamespace

from django.db.models.functions import Coalesce
from django.utils import timezone

from benefits.models import GrowthEntry, PointsEntry
from core.days import start_of_day
from core.money import money
from members.models import EngagementEvent, Member, TierChange
from orders.models import Order, Refund

from ..engine import clock_triggers, evaluate
from ..engine.facts import FACTS, PERIOD_FACTS, FactSource, facts_compute
from ..engine.occurrences import Occurrence, occurrence_key
from ..models import CLOCK_TRIGGERS, ActionKind, FiringLimit, Rule, RuleFiring, Trigger
from . import tier_period

MEMBERS_PER_BATCH = 500


@dataclass
class Totals:
    occurrences: int = 0
    firings: int = 0
    members: int = 0
    coupons: int = 0
    coupon_value: Decimal = Decimal(0)
    points: int = 0
    growth_points: int = 0
    tier_changes: int = 0
    messages: int = 0
    webhooks: int = 0
    over_budget: int = 0

    def as_dict(self) -> dict:
        data = dict(self.__dict__)
        data["coupon_value"] = str(money(self.coupon_value))
        return data


@dataclass(order=True)
class _Firing:
    at: datetime
    member_id: int = field(compare=False)
    cost: dict = field(compare=False)


def rule_simulate(
    rule: Rule,
    *,
    days: int,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    now = now or timezone.now()
    start = now - timedelta(days=days)
    by_member = _occurrences(rule, start, now)
    totals = Totals(occurrences=sum(len(items) for items in by_member.values()))
    already = set(RuleFiring.objects.filter(rule=rule).values_list("member_id", "occurrence_key"))
    needs = evaluate.fact_needs([rule])
    firings: list[_Firing] = []
    member_ids = sorted(by_member)
    done = 0
    iterator = iter(member_ids)
    while batch := list(islice(iterator, MEMBERS_PER_BATCH)):
        histories = _load_histories(batch, needs, now)
        for member_id in batch:
            firings.extend(
                _replay(rule, histories[member_id], by_member[member_id], needs, already)
            )
        done += len(batch)
        if progress:
            progress(done, len(member_ids))
    firings.sort()
    spent = RuleFiring.objects.filter(rule=rule).count() if rule.budget is not None else 0
    allowed = len(firings) if rule.budget is None else max(rule.budget - spent, 0)
    totals.over_budget = max(len(firings) - allowed, 0)
    for firing in firings[:allowed]:
        totals.firings += 1
        for key, value in firing.cost.items():
            setattr(totals, key, getattr(totals, key) + value)
    totals.members = len({firing.member_id for firing in firings[:allowed]})
    return {"days": days, "from": start.isoformat(), "to": now.isoformat(), **totals.as_dict()}


def _occurrences(rule: Rule, start: datetime, now: datetime) -> dict[int, list[SimpleNamespace]]:
    """Per member, what happened in the window that the rule's trigger answers to."""
    found: dict[int, list[SimpleNamespace]] = defaultdict(list)
    if rule.trigger == Trigger.ORDER_PAID:
        for order in Order.objects.filter(placed_at__gt=start, placed_at__lte=now):
            found[order.member_id].append(_at(order.placed_at, f"order:{order.pk}", order=order))
    elif rule.trigger == Trigger.ORDER_REFUNDED:
        refunds = Refund.objects.filter(refunded_at__gt=start, refunded_at__lte=now).select_related(
            "order"
        )
        for refund in refunds:
            found[refund.order.member_id].append(
                _at(refund.refunded_at, f"refund:{refund.pk}", refund=refund, order=refund.order)
            )
    elif rule.trigger == Trigger.ENGAGEMENT:
        events = EngagementEvent.objects.filter(
            occurred_at__gt=start, occurred_at__lte=now
        ).select_related("kind")
        if rule.engagement_kind_id:
            events = events.filter(kind_id=rule.engagement_kind_id)
        for event in events:
            found[event.member_id].append(_at(event.occurred_at, f"event:{event.pk}", event=event))
    elif rule.trigger == Trigger.TIER_CHANGED:
        changes = TierChange.objects.filter(created_at__gt=start, created_at__lte=now)
        for change in changes.select_related("from_tier", "to_tier"):
            found[change.member_id].append(
                _at(change.created_at, f"tier_change:{change.pk}", tier_change=change)
            )
    elif rule.trigger == Trigger.MEMBER_JOINED:
        for member_id, joined_at in Member.objects.filter(
            joined_at__gt=start, joined_at__lte=now
        ).values_list("pk", "joined_at"):
            found[member_id].append(_at(joined_at, "joined"))
    elif rule.trigger in CLOCK_TRIGGERS:
        first, last = timezone.localdate(start) + timedelta(days=1), timezone.localdate(now)
        for day, member_id, key in _clock_days(rule, first, last):
            moment = min(now, start_of_day(day + timedelta(days=1)) - timedelta(microseconds=1))
            found[member_id].append(_at(moment, key))
    for items in found.values():
        items.sort(key=lambda item: item.at)
    return found


def _at(at: datetime, key: str, **subjects) -> SimpleNamespace:
    return SimpleNamespace(
        at=at,
        key=key,
        order=subjects.get("order"),
        refund=subjects.get("refund"),
        event=subjects.get("event"),
        tier_change=subjects.get("tier_change"),
    )


class _History:
    """One member's history, loaded once, answering facts as of any moment."""

    def __init__(self, member: Member, orders, changes, points, growth, events) -> None:
        self.member = member
        self.order_times = [o.placed_at for o in orders]
        self.order_nets = [o.amount - o.refunded_amount for o in orders]
        self.order_counted = [o.amount == 0 or o.refunded_amount < o.amount for o in orders]
        self.changes = changes  # (at, from tier, to tier), oldest first
        self.points = points  # (at, points)
        self.growth = growth
        self.events = events  # (at, kind code)

    def tier_at(self, at: datetime):
        earlier = [change for change in self.changes if change[0] <= at]
        if earlier:
            return earlier[-1][2]
        return self.changes[0][1] if self.changes else self.member.tier

    def orders_between(self, after: datetime | None, until: datetime) -> tuple[Decimal, int]:
        low = 0 if after is None else bisect.bisect_right(self.order_times, after)
        high = bisect.bisect_right(self.order_times, until)
        spend = sum(self.order_nets[low:high], Decimal(0))
        return money(spend), sum(self.order_counted[low:high])

    @staticmethod
    def total(entries, until: datetime) -> int:
        return sum(points for at, points in entries if at <= until)


def _load_histories(member_ids: list[int], needs, now: datetime) -> dict[int, _History]:
    members = Member.objects.select_related("tier").prefetch_related("tags").in_bulk(member_ids)
    grouped = {
        name: defaultdict(list) for name in ("orders", "changes", "points", "growth", "events")
    }
    for order in Order.objects.filter(member_id__in=member_ids, placed_at__lte=now).order_by(
        "placed_at"
    ):
        grouped["orders"][order.member_id].append(order)
    for change in (
        TierChange.objects.filter(member_id__in=member_ids)
        .select_related("from_tier", "to_tier")
        .order_by("created_at")
    ):
        grouped["changes"][change.member_id].append(
            (change.created_at, change.from_tier, change.to_tier)
        )
    sources = {f.source for f in (FACTS[need.fact] for need in needs)}
    # A ledger entry counts from when what caused it happened (its order was placed, its
    # engagement occurred), not from when it was written: orders are evaluated, and often
    # posted, after they are placed.
    if any(need.fact == "points_balance" for need in needs):
        entries = PointsEntry.objects.filter(member_id__in=member_ids)
        for member_id, at, points in entries.values_list("member_id", _caused_at(), "points"):
            grouped["points"][member_id].append((at, points))
    if any(need.fact == "growth_points" for need in needs):
        entries = GrowthEntry.objects.filter(member_id__in=member_ids)
        for member_id, at, points in entries.values_list(
            "member_id", _caused_at(event=True), "points"
        ):
            grouped["growth"][member_id].append((at, points))
    if "engagements" in sources:
        for member_id, at, kind in EngagementEvent.objects.filter(
            member_id__in=member_ids
        ).values_list("member_id", "occurred_at", "kind__code"):
            grouped["events"][member_id].append((at, kind))
    return {
        member_id: _History(members[member_id], *(grouped[name][member_id] for name in grouped))
        for member_id in member_ids
    }


def _replay(rule: Rule, history: _History, occurrences, needs, already: set) -> list[_Firing]:
    member = history.member
    overlay = {"tier": None, "points": 0, "growth": 0, "tags": {t.code for t in member.tags.all()}}
    firings = []
    for item in occurrences:
        tier = overlay["tier"] or history.tier_at(item.at)
        spend, count = history.orders_between(None, item.at)
        snapshot = SimpleNamespace(
            pk=member.pk,
            tier=tier,
            joined_at=member.joined_at,
            birthday=member.birthday,
            tier_expires_at=member.tier_expires_at,
        )
        if "period_figures" not in overlay and any(n.fact in PERIOD_FACTS for n in needs):
            # The current tier period's figures, as of today (not replayed).
            overlay["period_figures"] = tier_period.period_figures(member=member)
        source = FactSource(
            member=snapshot,
            now=item.at,
            needs=needs,
            data=_Replayed(history, overlay, item.at, spend, count),
            order=item.order,
            refund=item.refund,
            event=item.event,
            tier_change=item.tier_change,
        )
        if not evaluate.rule_evaluate(rule, facts_compute(source)).matched:
            continue
        occurrence = Occurrence(trigger=rule.trigger, key=item.key, day=timezone.localdate(item.at))
        # An item's key already names its occurrence (for clock triggers, the clock's key).
        every_time = rule.firing_limit == FiringLimit.EVERY_TIME
        key = item.key if every_time else occurrence_key(rule, snapshot, occurrence)
        if (member.pk, key) in already:
            continue
        already.add((member.pk, key))
        firings.append(_Firing(at=item.at, member_id=member.pk, cost=_apply(rule, overlay, tier)))
    return firings


class _Replayed:
    """FactSource data for a moment of the replay: the member's history up to `at`, plus
    what the simulated rule gave earlier in it (`overlay`)."""

    def __init__(self, history: _History, overlay: dict, at: datetime, spend, count) -> None:
        self.history, self.overlay, self.at = history, overlay, at
        self.spend, self.count = spend, count

    def totals(self) -> tuple[Decimal, int]:
        return self.spend, self.count

    def order_windows(self, windows: set[int]) -> dict[int, tuple[Decimal, int]]:
        at = self.at
        return {
            days: self.history.orders_between(at - timedelta(days=days), at) for days in windows
        }

    def engagement_counts(self, windows: set[tuple[int, str | None]]) -> dict:
        return {
            (days, event_kind): sum(
                1
                for at, kind in self.history.events
                if self.at - timedelta(days=days) < at <= self.at and event_kind in (None, kind)
            )
            for days, event_kind in windows
        }

    def points_balance(self) -> int:
        return self.history.total(self.history.points, self.at) + self.overlay["points"]

    def growth_points(self) -> int:
        return self.history.total(self.history.growth, self.at) + self.overlay["growth"]

    def period_figures(self, member) -> dict[str, Decimal] | None:
        return self.overlay.get("period_figures")

    def tags(self) -> frozenset[str]:
        return frozenset(self.overlay["tags"])


def _apply(rule: Rule, overlay: dict, tier) -> dict:
    """What the rule's actions would have done, carried into later facts, and their cost."""
    cost = defaultdict(int)
    for action in rule.actions.all():
        if action.kind == ActionKind.SET_TIER:
            current = overlay["tier"] or tier
            if current != action.tier and (
                current is None or action.tier.rank > current.rank or action.allow_downgrade
            ):
                overlay["tier"] = action.tier
                cost["tier_changes"] += 1
        elif action.kind == ActionKind.ISSUE_COUPON:
            cost["coupons"] += 1
            # A percentage coupon's value is at most its cap (0 when uncapped: unknown).
            template = action.coupon_template
            cost["coupon_value"] += template.amount_off or template.max_discount or 0
        elif action.kind == ActionKind.AWARD_POINTS:
            overlay["points"] += action.points
            cost["points"] += action.points
        elif action.kind == ActionKind.AWARD_GROWTH_POINTS:
            overlay["growth"] += action.points
            cost["growth_points"] += action.points
        elif action.kind in (ActionKind.ADD_TAG, ActionKind.REMOVE_TAG):
            (overlay["tags"].add if action.kind == ActionKind.ADD_TAG else overlay["tags"].discard)(
                action.tag.code
            )
        elif action.kind == ActionKind.NOTIFY:
            cost["messages"] += 1
        elif action.kind == ActionKind.WEBHOOK:
            cost["webhooks"] += 1
    return dict(cost)


def _caused_at(*, event: bool = False):
    causes = [
        "order__placed_at",
        "firing__order__placed_at",
        *(["event__occurred_at"] if event else []),
        "created_at",
    ]
    return Coalesce(*causes)


def _clock_days(rule: Rule, first: date, last: date):
    """(day, member id, occurrence key) for each day the clock trigger happened to a
    member in [first, last], from the history: inactivity from the orders placed by then,
    a lapsing tier from the tier history. Birthdays, anniversaries and points lapsing are
    read from today's data."""
    days = rule.trigger_days
    if rule.trigger == Trigger.INACTIVE:
        yield from _inactive_days(first, last, days)
    elif rule.trigger == Trigger.TIER_EXPIRING:
        yield from _tier_lapse_days(first, last, days)
    else:
        day = first
        while day <= last:
            for member in clock_triggers.candidates(rule.trigger, days, day):
                key = clock_triggers.clock_occurrence_key(rule.trigger, days, member, day)
                if key:
                    yield day, member.pk, key
            day += timedelta(days=1)


def _inactive_days(first: date, last: date, days: int):
    """Members whose last order (or, with none, their joining) was N days before the day."""
    orders = Order.objects.filter(placed_at__lt=start_of_day(last + timedelta(days=1)))
    last_seen: dict[int, list[date]] = defaultdict(list)
    for member_id, placed_at in orders.values_list("member_id", "placed_at"):
        last_seen[member_id].append(timezone.localdate(placed_at))
    joined = Member.objects.filter(joined_at__lt=start_of_day(last + timedelta(days=1)))
    for member_id, joined_at in joined.values_list("pk", "joined_at"):
        order_days = sorted(last_seen.get(member_id, []))
        day = first
        while day <= last:
            position = bisect.bisect_right(order_days, day)
            seen = order_days[position - 1] if position else timezone.localdate(joined_at)
            if seen == day - timedelta(days=days):
                yield day, member_id, f"inactive:{seen}"
            day += timedelta(days=1)


def _tier_lapse_days(first: date, last: date, days: int):
    """Members whose tier, as it stood on the day, lapsed N days later."""
    changes = TierChange.objects.filter(created_at__lt=start_of_day(last + timedelta(days=1)))
    by_member: dict[int, list] = defaultdict(list)
    for change in changes.select_related("to_tier").order_by("created_at"):
        by_member[change.member_id].append(change)
    for member_id, history in by_member.items():
        for index, change in enumerate(history):
            lapses = change.to_tier.expiry_from(change.created_at)
            if lapses is None:
                continue
            before = days if days is not None else change.to_tier.remind_days_before
            day = timezone.localdate(lapses) - timedelta(days=before)
            replaced = history[index + 1].created_at if index + 1 < len(history) else None
            if first <= day <= last and (
                replaced is None or replaced >= start_of_day(day + timedelta(days=1))
            ):
                yield day, member_id, f"tier_expiring:{timezone.localdate(lapses)}"
