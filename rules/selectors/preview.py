"""Who a rule would hit right now: its conditions as one SQL query over members.

Each fact has a translation into SQL that gives the same answer as its Python function
in engine/facts.py (a property test holds them to that). Conditions about the triggering event
(its amount, its kind) cannot be judged before the event; preview counts them as met and
says which they were.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import (
    Case,
    Count,
    DecimalField,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, ExtractMonth, Round
from django.db.models.lookups import Exact
from django.utils import timezone

from benefits.models import GrowthEntry, PointsEntry
from core.days import start_of_day
from members.models import EngagementEvent, Member
from orders.models import COUNTED, Order

from ..engine import conditions, logic_line
from ..engine.evaluate import condition_need
from ..engine.facts import FACTS
from ..models import Rule, RuleCondition

EVENT_FACTS = {"order_amount", "refund_amount", "engagement_kind", "previous_tier", "tier_move"}
MONEY = DecimalField(max_digits=14, decimal_places=2)
EVERYONE = Q(pk__isnull=False)


@dataclass(frozen=True)
class Preview:
    members: QuerySet[Member]
    unchecked: list[int]  # numbers of the conditions about the triggering event


def members_matching(rule: Rule, *, now: datetime | None = None) -> Preview:
    now = now or timezone.now()
    annotations: dict[str, Any] = {}
    by_number, unchecked = {}, []
    for condition in rule.conditions.all():
        if condition.fact in EVENT_FACTS:
            unchecked.append(condition.position)
            by_number[condition.position] = EVERYONE
        else:
            by_number[condition.position] = _condition_q(condition, now, annotations)
    expression = logic_line.parse(rule.logic) if rule.logic else ("and", sorted(by_number))
    members = Member.objects.annotate(**annotations).filter(_combine(expression, by_number))
    return Preview(members=members.select_related("tier"), unchecked=unchecked)


def _combine(node: logic_line.Node, by_number: dict[int, Q]) -> Q:
    if isinstance(node, int):
        return by_number.get(node, ~EVERYONE)
    op, operands = node
    parts = [_combine(operand, by_number) for operand in operands]
    combined = parts[0] if parts else EVERYONE
    for part in parts[1:]:
        combined = combined & part if op == "and" else combined | part
    return combined


def _condition_q(condition: RuleCondition, now: datetime, annotations: dict) -> Q:
    need = condition_need(condition)
    value = conditions.parse_value(FACTS[need.fact].kind, condition.op, condition.value)
    op = condition.op
    today = timezone.localdate(now)
    if need.fact == "tags":
        has = Exists(
            Member.tags.through.objects.filter(member_id=OuterRef("pk"), tag__code__in=value)
        )
        return Q(has) if op == "in" else ~Q(has)
    if need.fact == "days_since_joined":
        return _days_from(op, value, "joined_at", today, since=True)
    if need.fact == "days_until_tier_lapses":
        return _days_from(op, value, "tier_expires_at", today, since=False)
    alias = f"c{condition.position}"
    annotations[alias] = _expression(need, now)
    return _compare(alias, op, value) & Q(**{f"{alias}__isnull": False})


def _expression(need, now: datetime):
    """The SQL value of a fact for each member."""
    fact = need.fact
    if fact in ("lifetime_spend", "order_count"):
        return F(fact)
    if fact == "avg_order_value":
        return _average(F("lifetime_spend"), F("order_count"))
    if fact == "tier":
        return F("tier__code")
    if fact == "tier_rank":
        return Coalesce(F("tier__rank"), 0)
    if fact == "birthday_month":
        return ExtractMonth("birthday")
    if fact == "points_balance":
        return _member_sum(PointsEntry.objects.all(), "points", IntegerField())
    if fact == "growth_points":
        return _member_sum(GrowthEntry.objects.all(), "points", IntegerField())
    if fact in ("spend_in_days", "orders_in_days", "avg_order_value_in_days"):
        recent = Order.objects.filter(
            placed_at__gt=now - timedelta(days=need.days), placed_at__lte=now
        )
        spend = _member_sum(recent, F("amount") - F("refunded_amount"), MONEY)
        count = _member_count(recent.filter(COUNTED))
        return {"spend_in_days": spend, "orders_in_days": count}.get(fact) or _average(spend, count)
    if fact == "engagements_in_days":
        events = EngagementEvent.objects.filter(
            occurred_at__gt=now - timedelta(days=need.days), occurred_at__lte=now
        )
        if need.event_kind:
            events = events.filter(kind__code=need.event_kind)
        return _member_count(events)
    if fact in ("period_spend", "period_growth_points", "keep_tier_shortfall"):
        return _period_expression(fact, now)
    raise ValueError(f"No SQL for fact '{fact}'")


def _period_expression(fact: str, now: datetime):
    """The member's current tier period, as tier_period.period_figures measures it."""
    start = Coalesce(OuterRef("tier_period_start"), OuterRef("tier_since"), OuterRef("joined_at"))
    end = Coalesce(OuterRef("tier_expires_at"), Value(now))
    spend = _member_sum(
        Order.objects.filter(placed_at__gt=start, placed_at__lte=end),
        F("amount") - F("refunded_amount"),
        MONEY,
    )
    growth = _member_sum(
        GrowthEntry.objects.filter(created_at__gt=start, created_at__lte=end),
        "points",
        IntegerField(),
    )
    if fact == "period_spend":
        return spend
    if fact == "period_growth_points":
        return growth
    figure = Case(When(tier__keep_metric="growth", then=Cast(growth, MONEY)), default=spend)
    return Case(
        When(tier__keep_threshold__isnull=True, then=Value(Decimal(0))),
        When(Q(tier__keep_threshold__gt=figure), then=F("tier__keep_threshold") - figure),
        default=Value(Decimal(0)),
        output_field=MONEY,
    )


def _member_sum(rows: QuerySet, value, output) -> Coalesce:
    total = rows.filter(member_id=OuterRef("pk")).values("member_id").annotate(total=Sum(value))
    return Coalesce(
        Subquery(total.values("total"), output_field=output), Value(0), output_field=output
    )


def _member_count(rows: QuerySet) -> Coalesce:
    total = rows.filter(member_id=OuterRef("pk")).values("member_id").annotate(total=Count("pk"))
    return Coalesce(Subquery(total.values("total"), output_field=IntegerField()), Value(0))


def _average(total, count) -> Case:
    # Times a decimal one, so that SQLite divides as reals rather than as integers.
    return Case(
        When(Exact(count, 0), then=Value(Decimal(0))),
        default=Round(total * Value(Decimal(1), output_field=MONEY) / count, 2),
        output_field=MONEY,
    )


def _compare(field: str, op: str, value: Any) -> Q:
    if op == "between":
        return Q(**{f"{field}__range": value})
    if op in ("in", "not_in"):
        q = Q(**{f"{field}__in": value})
        return q if op == "in" else ~q
    if op == "ne":
        return ~Q(**{field: value})
    lookup = {"gte": "gte", "gt": "gt", "lte": "lte", "lt": "lt", "eq": "exact"}[op]
    return Q(**{f"{field}__{lookup}": value})


# How "days between today and a date" compares, as a comparison of the date itself.
MIRRORED = {"gte": "lte", "gt": "lt", "lte": "gte", "lt": "gt", "eq": "eq", "ne": "ne"}


def _days_from(op: str, value: Any, field: str, today: date, *, since: bool) -> Q:
    """`days since <field>` (or `days until <field>`) op value, on the field's local date."""

    def day(days: int) -> date:
        return today - timedelta(days=days) if since else today + timedelta(days=days)

    if op == "between":
        low, high = sorted((day(value[0]), day(value[1])))
        q = _date_compare(field, "gte", low) & _date_compare(field, "lte", high)
    elif op in ("in", "not_in"):
        q = Q()
        for days in value:
            q |= _date_compare(field, "eq", day(days))
        q = q if op == "in" else ~q
    else:
        q = _date_compare(field, MIRRORED[op] if since else op, day(value))
    return q & Q(**{f"{field}__isnull": False})


def _date_compare(field: str, op: str, day: date) -> Q:
    """Compare the local date of a datetime field, with index-friendly instant bounds."""
    start = start_of_day(day)
    end = start_of_day(day + timedelta(days=1))
    return {
        "gte": Q(**{f"{field}__gte": start}),
        "gt": Q(**{f"{field}__gte": end}),
        "lte": Q(**{f"{field}__lt": end}),
        "lt": Q(**{f"{field}__lt": start}),
        "eq": Q(**{f"{field}__gte": start, f"{field}__lt": end}),
        "ne": ~Q(**{f"{field}__gte": start, f"{field}__lt": end}),
    }[op]
