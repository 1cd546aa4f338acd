"""What a refund takes back: the points and growth points its order earned, and those
rules awarded because of the order, in proportion to the share refunded; and, once the
order is refunded in full, the unused coupons rules issued for it.

`order_reversals_apply` brings every such balance to exactly its target, so it is safe to
call again. The engine calls it for each refund, with the order as it stood right after
that refund (a member's events are evaluated in order, so its order came first)."""

import math
from collections.abc import Iterator
from datetime import datetime

from django.db.models import Q, Sum
from django.utils import timezone

from members.models import Member
from orders.models import Order

from ..models import GrowthEntry, PointsEntry
from .coupons import coupons_void_for_order

ORDER_PAID = "order_paid"


def order_reversals_apply(*, member: Member, order: Order, at: datetime | None = None) -> int:
    """Reverse what is still owed for the order's refunds, as entries dated `at` (the
    refund's moment; default now); returns the entries written."""
    if not order.refunded_amount:
        return 0
    written = 0
    for ledger, group, owed, taken in order_reversal_balances(order=order):
        if owed > taken:
            written += _reverse(ledger, member, order, group, owed - taken, at or timezone.now())
    if order.is_fully_refunded:
        coupons_void_for_order(order_id=order.pk, at=at)
    return written


def order_reversal_balances(*, order: Order) -> Iterator[tuple[type, Q, int, int]]:
    """(ledger, group, owed, taken) for each group of entries the order's refunds take
    from: the order's own earning, then each rule firing the order caused. `owed` is what
    the refunds should have taken back by now, `taken` what was."""
    for ledger in (PointsEntry, GrowthEntry):
        groups = [Q(order=order, firing__isnull=True)]
        firing_ids = (
            ledger.objects.filter(
                member_id=order.member_id,
                firing__order=order,
                firing__trigger=ORDER_PAID,
                points__gt=0,
            )
            .values_list("firing_id", flat=True)
            .distinct()
        )
        groups += [Q(firing_id=firing_id) for firing_id in firing_ids]
        for group in groups:
            entries = ledger.objects.filter(group, member_id=order.member_id)
            given = entries.filter(points__gt=0).aggregate(total=Sum("points"))["total"] or 0
            reversed_ = entries.filter(kind=ledger.Kind.REVERSE).aggregate(total=Sum("points"))
            taken = -(reversed_["total"] or 0)
            if order.is_fully_refunded:
                owed = given
            else:
                owed = math.floor(given * order.refunded_amount / order.amount)
            yield ledger, group, owed, taken


def _reverse(ledger, member: Member, order: Order, group: Q, points: int, at: datetime) -> int:
    entries = ledger.objects.filter(group, member=member)
    firing_id = entries.filter(points__gt=0).values_list("firing_id", flat=True).first()
    ledger.objects.create(
        member=member,
        kind=ledger.Kind.REVERSE,
        points=-points,
        reason=f"refund of order {order.external_id}",
        order=order,
        firing_id=firing_id,
        created_at=at,
    )
    return 1
