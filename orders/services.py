"""Every write to orders and refunds."""

from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from core.idempotency import payload_fingerprint, record_once, replayed
from members import journal
from members import services as member_services

from .models import FUTURE_TOLERANCE, Order, Refund


def order_record(
    *,
    external_id: str,
    member: str | dict,
    amount: Decimal,
    currency: str,
    placed_at: datetime,
) -> tuple[Order, bool]:
    """Record an order from the ERP, exactly once per external id.

    `member` is a known member's external id, or a dict with `external_id` and optional
    details (name, phone, e-mail, birthday) that creates or updates the member. Returns
    (order, created); a replay of the same payload returns the recorded order with
    created=False, and a different payload for a recorded id raises SubjectConflict.

    For a known member, one transaction of three statements: lock the member row, insert
    the order as the member's next event (or find the recorded one), and update the
    running totals relatively. The evaluation is published after commit (members.journal).
    """
    payload_hash = payload_fingerprint(
        external_id=external_id,
        member=member,
        amount=amount,
        currency=currency,
        placed_at=placed_at,
    )
    with transaction.atomic():
        member_obj = member_services.member_lock_for_event(member)
        order = Order(
            external_id=external_id,
            member=member_obj,
            amount=amount,
            currency=currency,
            placed_at=placed_at,
            payload_hash=payload_hash,
            seq=member_obj.event_seq + 1,
        )
        # The member exists and the database enforces the constraints: skip those queries.
        order.full_clean(exclude=["member"], validate_unique=False, validate_constraints=False)
        recorded = _insert_unless_recorded(order)
        if recorded is None:
            member_services.member_order_recorded(
                member=member_obj, seq=order.seq, amount=amount, placed_at=placed_at
            )
            return order, True
        # A replay, or a conflict: nothing of this request is kept (nor a member's details).
        transaction.set_rollback(True)
    if recorded.member_id == member_obj.pk:
        recorded.member = member_obj
    return replayed(recorded, payload_hash), False


def _insert_unless_recorded(order: Order) -> Order | None:
    """Insert the order (None: inserted, pk set), or return the order already recorded
    under its external id: one statement either way, the no-op update on a conflict
    making the database return the recorded row."""
    fields = [field for field in Order._meta.concrete_fields if not field.primary_key]
    quote = connection.ops.quote_name
    key = quote(Order._meta.get_field("external_id").column)
    columns = ", ".join(quote(field.column) for field in fields)
    returned = ", ".join(quote(field.column) for field in Order._meta.concrete_fields)
    sql = (
        f"INSERT INTO {quote(Order._meta.db_table)} ({columns}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {key} = EXCLUDED.{key} RETURNING {returned}"
    )
    params = [field.get_db_prep_save(getattr(order, field.attname), connection) for field in fields]
    (row,) = Order.objects.raw(sql, params)
    # Event numbers are per member and only grow, so another row never has both ours.
    if (row.member_id, row.seq) != (order.member_id, order.seq):
        return row
    order.pk = row.pk
    order._state.adding, order._state.db = False, connection.alias
    return None


def refund_record(
    *,
    order_external_id: str,
    external_id: str,
    amount: Decimal,
    refunded_at: datetime | None = None,
) -> tuple[Refund, bool]:
    """Record a refund of part or all of an order, exactly once per refund external id,
    never for more than what remains of the order. Lowers the member's running totals at
    once; the evaluation after commit reverses what the order earned, in proportion."""
    # The payload as sent: a replay that leaves out refunded_at is still the same refund.
    payload_hash = payload_fingerprint(
        order=order_external_id, external_id=external_id, amount=amount, refunded_at=refunded_at
    )
    order = Order.objects.filter(external_id=order_external_id).first()
    if order is None:
        raise Order.DoesNotExist(f"No order with external id '{order_external_id}'.")
    if refunded_at is None:
        # Now, or the order's time if the ERP's clock placed it a little ahead of ours.
        refunded_at = max(timezone.now(), order.placed_at)
    elif not order.placed_at <= refunded_at <= timezone.now() + FUTURE_TOLERANCE:
        raise ValidationError(
            {"refunded_at": "A refund is dated after its order was placed and not in the future."}
        )

    def create() -> Refund:
        # Member first, then the order: the lock order every writer follows.
        member = member_services.member_lock(member_id=order.member_id)
        locked = Order.objects.select_for_update().get(pk=order.pk)
        remaining = locked.amount - locked.refunded_amount
        if amount > remaining:
            raise ValidationError(
                {"amount": f"Only {remaining} of order {locked.external_id} is left to refund."}
            )
        refund = Refund(
            external_id=external_id,
            order=locked,
            member=member,
            amount=amount,
            refunded_at=refunded_at,
            payload_hash=payload_hash,
            seq=member.event_seq + 1,
        )
        refund.full_clean(
            exclude=["order", "member"], validate_unique=False, validate_constraints=False
        )
        refund.save()
        was_counted = not locked.is_fully_refunded
        locked.refunded_amount += amount
        locked.save(update_fields=["refunded_amount"])
        member_services.member_refund_recorded(
            member=member,
            seq=refund.seq,
            amount=amount,
            order_now_fully_refunded=was_counted and locked.is_fully_refunded,
        )
        return refund

    return record_once(Refund, external_id=external_id, payload_hash=payload_hash, create=create)


def orders_evaluate_now(*, order_ids: list[int]) -> int:
    """Ask for the evaluation of those of these orders still waiting for it (an operator's
    nudge after an outage); returns how many there were."""
    pending = Order.objects.filter(pk__in=order_ids, seq__gt=F("member__evaluated_seq"))
    journal.members_evaluation_requested(
        member_ids=sorted(set(pending.values_list("member_id", flat=True)))
    )
    return pending.count()
