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

from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import (
    Count,
    DecimalField,
    Exists,
    F,
    IntegerField,
    Max,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

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


class NotAFirstLoad(Exception):
    pass


def orders_indexes_set_aside() -> list[str]:
    """For a first load (no order recorded yet), lock the orders, drop their indexes
    other than the primary key and the unique ones, and their foreign key, and return the
    statements that build them again (orders_indexes_rebuild): at ten million rows,
    keeping them up row by row costs four times the load, and checking each row's
    member one by one a minute more than checking them all at once. Within the import's
    transaction, so a run rolled back or killed gets them back. Until it ends nobody
    can read or write orders, nor members (dropping the key locks them too): before
    going live. NotAFirstLoad if there are orders, or another transaction holds either
    table for long. On a database other than PostgreSQL, nothing is done: []."""
    if not connection.in_atomic_block:
        raise RuntimeError("Set the orders' indexes aside only within the import's transaction.")
    if connection.vendor != "postgresql":
        if Order.objects.exists():
            raise NotAFirstLoad(_("There are orders already: this is not a first load."))
        return []
    table = connection.ops.quote_name(Order._meta.db_table)
    with connection.cursor() as cursor:
        # Locked before looking, so no order can arrive between the look and the drop;
        # and never waiting long on another transaction, with everyone queued behind.
        cursor.execute("SET LOCAL lock_timeout = '10s'")
        try:
            cursor.execute(f"LOCK TABLE {table}")
            if Order.objects.exists():
                raise NotAFirstLoad(_("There are orders already: this is not a first load."))
            statements = _set_aside(cursor, table)
        except OperationalError as exc:
            raise NotAFirstLoad(_("The orders or members are in use: try again later.")) from exc
        cursor.execute("SET LOCAL lock_timeout = 0")
    return statements


def _set_aside(cursor, table: str) -> list[str]:
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
    keys = [(connection.ops.quote_name(name), definition) for name, definition in cursor]
    for name, _definition in indexes:
        cursor.execute(f"DROP INDEX {name}")
    for name, _definition in keys:
        cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    return [definition for _name, definition in indexes] + [
        f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}" for name, definition in keys
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
    postgresql = connection.vendor == "postgresql"
    if member_ids is None and postgresql:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = '256MB'")  # the grouping in memory
            return _totals_set(Order.objects.all())
    if member_ids is None:
        member_ids = Order.objects.values_list("member_id", flat=True).distinct()
    ids = sorted(set(member_ids))
    for start in range(0, len(ids), TOTALS_CHUNK):
        chunk = ids[start : start + TOTALS_CHUNK]
        with transaction.atomic():
            if postgresql:
                _totals_set(Order.objects.filter(member_id__any_of=chunk))
                members = Member.objects.filter(pk__any_of=chunk).exclude(
                    Exists(Order.objects.filter(member=OuterRef("pk")))
                )
                members.update(
                    lifetime_spend=0, order_count=0, last_order_at=None, updated_at=timezone.now()
                )
            else:  # UPDATE … FROM wants SQLite 3.33
                _totals_subquery(chunk)
        if progress:
            progress(start + len(chunk), len(ids))
    return len(ids)


def _totals_subquery(member_ids: list[int]) -> None:
    orders = Order.objects.filter(member=OuterRef("pk")).order_by().values("member")
    spend = orders.annotate(total=Sum(F("amount") - F("refunded_amount"))).values("total")
    counted = orders.filter(COUNTED).annotate(total=Count("pk")).values("total")
    last = orders.annotate(last=Max("placed_at")).values("last")
    money_field = DecimalField(max_digits=14, decimal_places=2)
    Member.objects.filter(pk__in=member_ids).update(
        lifetime_spend=Coalesce(
            Subquery(spend, output_field=money_field), 0, output_field=money_field
        ),
        order_count=Coalesce(Subquery(counted, output_field=IntegerField()), 0),
        last_order_at=Subquery(last),
        updated_at=timezone.now(),
    )


def _totals_set(orders: QuerySet[Order]) -> int:
    """The totals of the members with these orders, from these orders, in one UPDATE …
    FROM on PostgreSQL; how many members."""
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
