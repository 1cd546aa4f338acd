"""Exactly-once recording of what the ERP posts (orders, refunds, events): each carries
the hash of its payload, so a replay can be told from a conflicting reuse of an id."""

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from django.db import IntegrityError, transaction

from core.money import money

T = TypeVar("T")


class SubjectConflict(Exception):
    """The external id is already recorded with a different payload."""

    def __init__(self, subject: Any) -> None:
        name = subject._meta.verbose_name
        super().__init__(
            f"The {name} {subject.external_id} was already recorded with other details."
        )
        self.subject = subject


def payload_fingerprint(**fields: Any) -> str:
    """SHA-256 of the payload as validated, so "100.0" and "100.00", or one instant
    written in two time zones, count as the same payload."""
    encoded = json.dumps(_canonical(fields), sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(encoded).hexdigest()


def replayed(subject: T, payload_hash: str) -> T:
    if subject.payload_hash != payload_hash:
        raise SubjectConflict(subject)
    return subject


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in sorted(value.items())}
    if isinstance(value, Decimal):
        return str(money(value))
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def record_once(
    model: type[T], *, external_id: str, payload_hash: str, create: Callable[[], T]
) -> tuple[T, bool]:
    """Record something the ERP posted exactly once per external id: (row, created). A
    replay of the same payload returns the recorded row; another payload for the same id
    raises SubjectConflict. `create` runs in a transaction and may raise a validation
    error, which changes nothing."""
    existing = model.objects.filter(external_id=external_id).first()
    if existing is not None:
        return replayed(existing, payload_hash), False
    try:
        with transaction.atomic():
            return create(), True
    except IntegrityError:
        # A concurrent request recorded this id between our read and our insert.
        existing = model.objects.filter(external_id=external_id).first()
        if existing is None:
            raise
        return replayed(existing, payload_hash), False
