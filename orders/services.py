"""Every write to orders."""

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from members import services as member_services
from members.models import Member

from .models import Order


class OrderConflict(Exception):
    """The external id is already recorded with a different payload."""

    def __init__(self, order: Order) -> None:
        super().__init__(f"Order {order.external_id} was already recorded with other details.")
        self.order = order


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
    `name`, `phone`, `email` that creates or updates the member. Returns (order, created);
    a replay of the same payload returns the original order with created=False, and a
    different payload for a recorded external id raises OrderConflict.

    In one transaction: upsert the member, lock its row, insert the order (unevaluated) and
    update the running totals. Evaluation is enqueued by the post-save signal on commit.
    """
    payload_hash = _payload_hash(external_id, member, amount, currency, placed_at)
    existing = Order.objects.filter(external_id=external_id).first()
    if existing is not None:
        return _replayed(existing, payload_hash), False
    try:
        with transaction.atomic():
            member_obj = _member_for_order(member)
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
    except IntegrityError:
        # A concurrent request recorded this external id between our read and our insert.
        existing = Order.objects.filter(external_id=external_id).first()
        if existing is None:
            raise
        return _replayed(existing, payload_hash), False
    return order, True


def orders_mark_enqueued(*, order_ids: list[int]) -> None:
    Order.objects.filter(pk__in=order_ids).update(enqueued_at=timezone.now())


def order_mark_evaluated(*, order_id: int) -> bool:
    """Conditional update: True for the caller that marked it, False if already marked."""
    updated = Order.objects.filter(pk=order_id, evaluated_at__isnull=True).update(
        evaluated_at=timezone.now()
    )
    return updated == 1


def _member_for_order(member: str | dict) -> Member:
    if isinstance(member, str):
        found = Member.objects.filter(external_id=member).first()
        if found is None:
            raise ValidationError({"member": f"No member with external id '{member}'."})
        return found
    details = dict(member)
    member_obj, _ = member_services.member_upsert(external_id=details.pop("external_id"), **details)
    return member_obj


def _replayed(order: Order, payload_hash: str) -> Order:
    if order.payload_hash != payload_hash:
        raise OrderConflict(order)
    return order


def _payload_hash(
    external_id: str, member: str | dict, amount: Decimal, currency: str, placed_at: datetime
) -> str:
    """Hash of the request as validated, so "100.0" and "100.00", or one instant written in
    two time zones, count as the same payload."""
    canonical = {
        "external_id": external_id,
        "member": member if isinstance(member, str) else dict(sorted(member.items())),
        "amount": str(Decimal(amount).quantize(Decimal("0.01"))),
        "currency": currency,
        "placed_at": placed_at.astimezone(UTC).isoformat(),
    }
    encoded = json.dumps(canonical, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(encoded).hexdigest()
