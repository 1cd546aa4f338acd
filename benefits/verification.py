"""Invariant 4, checked: every member's running totals equal what their orders and
refunds add up to, every order's refunded amount equals its refunds, no balance is below
zero, and every evaluated refund took back exactly its share of what its order gave.
Read only: it reports drift, it does not repair it."""

from collections.abc import Iterator
from decimal import Decimal

from django.db.models import Count, F, Max, Sum
from django.db.models.functions import Coalesce

from core.money import money
from members.models import Member
from orders.models import COUNTED, Order

from .models import GrowthEntry, PointsEntry
from .services.reversals import order_reversal_balances


def balances_drift() -> Iterator[str]:
    """One line per discrepancy found."""
    yield from _totals_drift()
    yield from _refunds_drift()
    yield from _negative_balances()
    yield from _reversals_drift()


def _totals_drift() -> Iterator[str]:
    by_member = {
        row["member_id"]: row
        for row in Order.objects.values("member_id").annotate(
            spend=Sum(F("amount") - F("refunded_amount")),
            counted=Count("pk", filter=COUNTED),
            last=Max("placed_at"),
        )
    }
    members = Member.objects.values_list(
        "pk", "external_id", "lifetime_spend", "order_count", "last_order_at"
    )
    for pk, external_id, spend, count, last in members.iterator(chunk_size=5000):
        row = by_member.get(pk, {"spend": Decimal(0), "counted": 0, "last": None})
        expected = (money(row["spend"] or 0), row["counted"], row["last"])
        if (spend, count, last) != expected:
            yield (
                f"member {external_id}: totals say spend {spend}, {count} orders, last "
                f"{last}; orders say {expected[0]}, {expected[1]} orders, last {expected[2]}"
            )


def _refunds_drift() -> Iterator[str]:
    orders = Order.objects.annotate(refund_total=Coalesce(Sum("refunds__amount"), Decimal(0)))
    for order in orders.exclude(refunded_amount=F("refund_total")).iterator():
        yield (
            f"order {order.external_id}: refunded amount {money(order.refunded_amount)}, "
            f"refunds add up to {money(order.refund_total)}"
        )


def _negative_balances() -> Iterator[str]:
    for ledger, name in ((PointsEntry, "points"), (GrowthEntry, "growth points")):
        totals = ledger.objects.values("member__external_id").annotate(total=Sum("points"))
        for row in totals.filter(total__lt=0):
            yield f"member {row['member__external_id']}: {name} balance {row['total']}"


def _reversals_drift() -> Iterator[str]:
    # Orders whose refunds have all been evaluated (pending ones are not due yet).
    # Every event up to the member's evaluated_seq is evaluated, refunds being later
    # events than their order: so is the member's every refund up to it.
    refunded = (
        Order.objects.filter(refunded_amount__gt=0)
        .exclude(refunds__seq__gt=F("member__evaluated_seq"))
        .filter(seq__lte=F("member__evaluated_seq"))
        .distinct()
    )
    for order in refunded.iterator():
        for ledger, _group, owed, taken in order_reversal_balances(order=order):
            if owed != taken:
                name = "points" if ledger is PointsEntry else "growth points"
                yield (
                    f"order {order.external_id}: its refunds should have taken back {owed} "
                    f"{name}, took {taken}"
                )
