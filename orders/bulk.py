"""Orders and refunds from a business's history, recorded at once and silently: outside
the members' journals (event number 0, so evaluated by definition: no rule fires, no
points are earned, no message goes out), then the members' running totals recomputed
from all their orders in a few set-based statements."""

from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import Count, DecimalField, F, IntegerField, Max, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.idempotency import payload_fingerprint
from members.models import Member

from .models import COUNTED, Order, Refund

TOTALS_CHUNK = 5_000


def order_fingerprint(order: Order, member_external_id: str) -> str:
    """The payload hash the API would give this order sent with the member's external id,
    so that such a replay later finds it recorded rather than conflicting."""
    return payload_fingerprint(
        external_id=order.external_id,
        member=member_external_id,
        amount=order.amount,
        currency=order.currency,
        placed_at=order.placed_at,
    )


@transaction.atomic
def orders_record_silently(orders: list[Order], refunds: list[tuple[str, Refund]]) -> None:
    """Insert the orders (those already recorded are left alone) and the refunds, each
    given with its order's external id (those already recorded are left alone too); each
    refunded order's refunded amount is then the sum of its refunds. Orders and refunds
    carry event number 0. Totals are not touched: members_totals_recompute."""
    _insert_orders(orders)
    if not refunds:
        return
    ids = dict(
        Order.objects.filter(external_id__in={order for order, _refund in refunds}).values_list(
            "external_id", "pk"
        )
    )
    for order, refund in refunds:
        refund.order_id = ids[order]
    Refund.objects.bulk_create([refund for _order, refund in refunds], ignore_conflicts=True)
    total = (
        Refund.objects.filter(order=OuterRef("pk"))
        .order_by()
        .values("order")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    Order.objects.filter(pk__in=set(ids.values())).update(refunded_amount=Subquery(total))


ORDER_COLUMNS = [
    "seq", "external_id", "member_id", "amount", "currency", "refunded_amount", "placed_at",
    "payload_hash", "recorded_at",
]  # fmt: skip


def _insert_orders(orders: list[Order]) -> None:
    """bulk_create(ignore_conflicts=True), on PostgreSQL by COPY into a temporary table
    and one INSERT … ON CONFLICT DO NOTHING from it: a third of the cost, at millions of
    rows."""
    if connection.vendor != "postgresql":
        Order.objects.bulk_create(orders, ignore_conflicts=True)
        return
    now, quote = timezone.now(), connection.ops.quote_name
    table = quote(Order._meta.db_table)
    names = ", ".join(quote(Order._meta.get_field(n).column) for n in ORDER_COLUMNS)
    with connection.cursor() as cursor:
        # One temporary table per session, emptied after each use: a table created and
        # dropped per batch would hold a lock per batch until a long import commits.
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS import_orders ON COMMIT DELETE ROWS AS "
            f"SELECT {names} FROM {table} WITH NO DATA"
        )
        with cursor.cursor.copy(f"COPY import_orders ({names}) FROM STDIN") as copy:
            for order in orders:
                copy.write_row(
                    [0, order.external_id, order.member_id, order.amount, order.currency,
                     0, order.placed_at, order.payload_hash, now]
                )  # fmt: skip
        cursor.execute(
            f"INSERT INTO {table} ({names}) SELECT {names} FROM import_orders "
            f"ON CONFLICT ({quote('external_id')}) DO NOTHING"
        )
        cursor.execute("DELETE FROM import_orders")


def members_totals_recompute(member_ids: Iterable[int]) -> int:
    """Set each member's lifetime spend, order count and last order from their orders
    (invariant 4, as verify_balances checks it), a chunk of members per statement and
    transaction. Returns how many members."""
    ids = sorted(set(member_ids))
    orders = Order.objects.filter(member=OuterRef("pk")).order_by().values("member")
    spend = orders.annotate(total=Sum(F("amount") - F("refunded_amount"))).values("total")
    counted = orders.filter(COUNTED).annotate(total=Count("pk")).values("total")
    last = orders.annotate(last=Max("placed_at")).values("last")
    money = DecimalField(max_digits=14, decimal_places=2)
    for start in range(0, len(ids), TOTALS_CHUNK):
        with transaction.atomic():
            Member.objects.filter(pk__in=ids[start : start + TOTALS_CHUNK]).update(
                lifetime_spend=Coalesce(Subquery(spend, output_field=money), 0, output_field=money),
                order_count=Coalesce(Subquery(counted, output_field=IntegerField()), 0),
                last_order_at=Subquery(last),
                updated_at=timezone.now(),
            )
    return len(ids)
