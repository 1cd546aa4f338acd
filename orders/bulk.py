"""Orders and refunds from a business's history, recorded at once and silently: outside
the members' journals (event number 0, so evaluated by definition: no rule fires, no
points are earned, no message goes out), then the members' running totals recomputed
from all their orders in a few set-based statements."""

import hashlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from json.encoder import encode_basestring
from typing import NamedTuple

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, F, Max, OuterRef, QuerySet, Subquery, Sum
from django.utils import timezone

from core.copy import rows_insert
from core.money import money
from members.models import Member

from .models import COUNTED, Order, Refund

TOTALS_CHUNK = 5_000


class HistoricOrder(NamedTuple):
    external_id: str
    member_id: int
    member: str  # the member's external id
    amount: Decimal
    currency: str
    placed_at: datetime


def order_fingerprint(order: HistoricOrder) -> str:
    """The payload hash the API gives this order (core.idempotency.payload_fingerprint of
    its fields), so that a replay of it later finds it recorded rather than conflicting;
    the canonical JSON written out directly, as that costs most of an import's time."""
    encoded = (
        f'{{"amount": "{money(order.amount)}", "currency": {encode_basestring(order.currency)}, '
        f'"external_id": {encode_basestring(order.external_id)}, '
        f'"member": {encode_basestring(order.member)}, '
        f'"placed_at": "{order.placed_at.astimezone(UTC).isoformat()}"}}'
    )
    return hashlib.sha256(encoded.encode()).hexdigest()


@transaction.atomic
def orders_record_silently(orders: list[HistoricOrder], refunds: list[tuple[str, Refund]]) -> None:
    """Insert the orders, none of them recorded yet, and the refunds, each given with
    its order's external id (those already recorded are left alone); each refunded
    order's refunded amount is then the sum of its refunds. Orders and refunds carry
    event number 0. Totals are not touched: members_totals_recompute."""
    _insert_orders(orders)
    if not refunds:
        return
    ids = dict(
        Order.objects.filter(external_id__any_of={order for order, _refund in refunds}).values_list(
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


ORDER_FIELDS = [
    "seq", "external_id", "member_id", "amount", "currency", "refunded_amount", "placed_at",
    "payload_hash", "recorded_at",
]  # fmt: skip


def _insert_orders(orders: list[HistoricOrder]) -> None:
    now = timezone.now()
    rows = [
        (0, o.external_id, o.member_id, o.amount, o.currency, 0, o.placed_at,
         order_fingerprint(o), now)
        for o in orders
    ]  # fmt: skip
    try:
        with transaction.atomic():
            rows_insert(Order, ORDER_FIELDS, rows)
    except IntegrityError:
        # One was recorded through the API since the import looked: the others still go.
        recorded = [Order(**dict(zip(ORDER_FIELDS, row, strict=True))) for row in rows]
        Order.objects.bulk_create(recorded, ignore_conflicts=True)


def orders_indexes_set_aside() -> list[str]:
    """For a first load (PostgreSQL, no order recorded yet), drop the orders' indexes
    other than the primary key and the unique ones, and their foreign keys, and return
    the statements that build them again (orders_indexes_rebuild): at ten million rows,
    keeping them up row by row costs four times the load, and checking each row's
    member one by one a minute more than checking them all at once. Within the import's
    transaction, so a run rolled back or killed gets them back; the orders table is
    locked until it ends (and the members table against writes), which before going
    live nobody notices. Elsewhere, nothing is done: []."""
    if connection.vendor != "postgresql" or Order.objects.exists():
        return []
    if not connection.in_atomic_block:
        raise RuntimeError("Set the orders' indexes aside only within the import's transaction.")
    table = connection.ops.quote_name(Order._meta.db_table)
    with connection.cursor() as cursor:
        _checks_due_now(cursor)
        cursor.execute(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indrelid = %s::regclass AND NOT i.indisunique AND NOT i.indisprimary",
            [Order._meta.db_table],
        )
        indexes = cursor.fetchall()
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'f'",
            [Order._meta.db_table],
        )
        keys = cursor.fetchall()
        for name, _definition in indexes:
            cursor.execute(f"DROP INDEX {name}")
        for name, _definition in keys:
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {connection.ops.quote_name(name)}")
    return [definition for _name, definition in indexes] + [
        f"ALTER TABLE {table} ADD CONSTRAINT {connection.ops.quote_name(name)} {definition}"
        for name, definition in keys
    ]


def orders_indexes_rebuild(statements: list[str]) -> None:
    if not statements:
        return
    with connection.cursor() as cursor:
        _checks_due_now(cursor)
        # Memory for the sorts, this transaction only (the server's default is 64 MB).
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for statement in statements:
            cursor.execute(statement)


def _checks_due_now(cursor) -> None:
    """The transaction's deferred constraint checks (refunds', members') made now: a
    table with checks pending may not have an index built or a constraint changed."""
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def members_totals_recompute(
    member_ids: Iterable[int] | None, *, progress: Callable[[int, int], None] | None = None
) -> int:
    """Set each member's lifetime spend, order count and last order from their orders
    (invariant 4, as verify_balances checks it): per chunk of members, their orders
    summed in one grouped query and the members updated from it, in a transaction;
    progress(done, total) after each. member_ids None: every member with an order, in
    one pass over the orders (after a first load, far quicker than looking each
    member's orders up). Returns how many members."""
    if member_ids is None:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:  # the grouping in memory, not on disk
                    cursor.execute("SET LOCAL work_mem = '256MB'")
            return _totals_set(Order.objects.all())
    ids = sorted(set(member_ids))
    for start in range(0, len(ids), TOTALS_CHUNK):
        chunk = ids[start : start + TOTALS_CHUNK]
        with transaction.atomic():
            _totals_set(Order.objects.filter(member_id__any_of=chunk))
            Member.objects.filter(pk__any_of=chunk).exclude(
                Exists(Order.objects.filter(member=OuterRef("pk")))
            ).update(lifetime_spend=0, order_count=0, last_order_at=None, updated_at=timezone.now())
        if progress:
            progress(start + len(chunk), len(ids))
    return len(ids)


def _totals_set(orders: QuerySet[Order]) -> int:
    """The totals of the members with these orders, from these orders; how many."""
    totals = (
        orders.order_by()
        .values("member_id")
        .annotate(
            spend=Sum(F("amount") - F("refunded_amount")),
            counted=Count("pk", filter=COUNTED),
            last=Max("placed_at"),
        )
    )
    query, params = totals.query.sql_with_params()
    quote = connection.ops.quote_name
    table = quote(Member._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET lifetime_spend = t.spend, order_count = t.counted, "
            f"last_order_at = t.last, updated_at = %s FROM ({query}) AS t "
            f"WHERE {table}.{quote('id')} = t.{quote('member_id')}",
            (timezone.now(), *params),
        )
        return cursor.rowcount
