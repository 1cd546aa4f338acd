"""What a refund takes back: the points and growth points its order earned, and those
rules awarded because of the order, in proportion to the share refunded; and, once the
order is refunded in full, the unused coupons rules issued for it.

`order_reversals_apply` brings every such balance to exactly its target, so it is safe to
call again, and in any order: the refund's evaluation calls it, and so does the order's,
in case the refund was evaluated first."""

import math

from django.db.models import Q, Sum

from members.models import Member
from orders.models import Order

from ..models import GrowthEntry, PointsEntry
from .coupons import coupons_void_for_order

ORDER_PAID = "order_paid"


def order_reversals_apply(*, member: Member, order: Order) -> int:
    """Reverse what is still owed for the order's refunds; returns the entries written."""
    if not order.refunded_amount:
        return 0
    written = 0
    for ledger in (PointsEntry, GrowthEntry):
        # The order's own earning, then each rule firing the order caused.
        groups = [Q(order=order, firing__isnull=True)]
        firing_ids = (
            ledger.objects.filter(
                member=member, firing__order=order, firing__trigger=ORDER_PAID, points__gt=0
            )
            .values_list("firing_id", flat=True)
            .distinct()
        )
        groups += [Q(firing_id=firing_id) for firing_id in firing_ids]
        for group in groups:
            written += _reverse_group(ledger, member, order, group)
    if order.is_fully_refunded:
        coupons_void_for_order(order_id=order.pk)
    return written


def _reverse_group(ledger, member: Member, order: Order, group: Q) -> int:
    entries = ledger.objects.filter(group, member=member)
    given = entries.filter(points__gt=0).aggregate(total=Sum("points"))["total"] or 0
    taken = -(entries.filter(kind=ledger.Kind.REVERSE).aggregate(total=Sum("points"))["total"] or 0)
    if order.is_fully_refunded:
        owed = given
    else:
        owed = math.floor(given * order.refunded_amount / order.amount)
    if owed <= taken:
        return 0
    firing_id = entries.filter(points__gt=0).values_list("firing_id", flat=True).first()
    ledger.objects.create(
        member=member,
        kind=ledger.Kind.REVERSE,
        points=-(owed - taken),
        reason=f"refund of order {order.external_id}",
        order=order,
        firing_id=firing_id,
    )
    return 1
