"""Every write to orders and refunds."""

from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils import timezone

from core.idempotency import payload_fingerprint, record_once
from members import services as member_services

from .models import Order, Refund


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

    In one transaction: upsert the member, lock its row, insert the order (unevaluated) and
    update the running totals. Evaluation is enqueued by the post-save signal on commit.
    """
    payload_hash = payload_fingerprint(
        external_id=external_id,
        member=member,
        amount=amount,
        currency=currency,
        placed_at=placed_at,
    )

    def create() -> Order:
        member_obj = member_services.member_for_subject(member)
        member_obj = member_services.member_lock(member_id=member_obj.pk)
        order = Order(
            external_id=external_id,
            member=member_obj,
            amount=amount,
            currency=currency,
            placed_at=placed_at,
            payload_hash=payload_hash,
        )
        # The member exists and the database enforces the constraints: skip those queries.
        order.full_clean(exclude=["member"], validate_unique=False, validate_constraints=False)
        order.save()
        member_services.member_totals_add_order(
            member=member_obj, amount=amount, placed_at=placed_at
        )
        return order

    return record_once(Order, external_id=external_id, payload_hash=payload_hash, create=create)


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
    refunded_at = refunded_at or timezone.now()
    order = Order.objects.filter(external_id=order_external_id).first()
    if order is None:
        raise Order.DoesNotExist(f"No order with external id '{order_external_id}'.")

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
            amount=amount,
            refunded_at=refunded_at,
            payload_hash=payload_hash,
        )
        refund.full_clean(exclude=["order"], validate_unique=False, validate_constraints=False)
        refund.save()
        was_counted = not locked.is_fully_refunded
        locked.refunded_amount += amount
        locked.save(update_fields=["refunded_amount"])
        member_services.member_totals_refund(
            member=member,
            amount=amount,
            order_now_fully_refunded=was_counted and locked.is_fully_refunded,
        )
        return refund

    return record_once(Refund, external_id=external_id, payload_hash=payload_hash, create=create)
