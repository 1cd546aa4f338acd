from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Member, external_id_validator


def validate_order_amount_ceiling(value: Decimal) -> None:
    """A mistyped amount would move a member straight to the top tier: refuse it."""
    limit = settings.TIERFLOW_MAX_ORDER_AMOUNT
    if value > limit:
        raise ValidationError(
            _("Ensure this value is less than or equal to %(limit)s."),
            code="max_value",
            params={"limit": limit},
        )


# ERP clocks drift; an order "placed" further ahead than this is a data error.
FUTURE_TOLERANCE = timedelta(hours=1)
EARLIEST_PLACED_AT = datetime(2000, 1, 1, tzinfo=UTC)


def validate_placed_at(value: datetime) -> None:
    if value > timezone.now() + FUTURE_TOLERANCE:
        raise ValidationError(_("An order cannot be placed in the future."), code="future")
    if value < EARLIEST_PLACED_AT:
        raise ValidationError(_("An order cannot be placed before 2000."), code="too_old")


class Order(models.Model):
    external_id = models.CharField(
        _("external id"), max_length=64, unique=True, validators=[external_id_validator]
    )
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="orders")
    amount = models.DecimalField(
        _("amount"),
        max_digits=12,
        decimal_places=2,
        validators=[MinValueValidator(Decimal(0)), validate_order_amount_ceiling],
    )
    currency = models.CharField(_("currency"), max_length=3)
    placed_at = models.DateTimeField(_("placed at"), validators=[validate_placed_at])
    # SHA-256 of the canonical request: tells a harmless replay from a conflicting one.
    payload_hash = models.CharField(max_length=64, editable=False)
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now, editable=False)
    # Null until the rules have run for this order. The database, not the broker, is the
    # record of work still to do: the sweeper re-enqueues orders left pending.
    evaluated_at = models.DateTimeField(_("evaluated at"), null=True, blank=True, editable=False)
    # When its evaluation was last published; the sweeper re-publishes the longest-waiting
    # first, so orders that keep failing cannot hold up the others.
    enqueued_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-placed_at", "-id"]
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="order_amount_gte_0")
        ]
        indexes = [
            models.Index(fields=["member", "-placed_at"]),
            models.Index(
                fields=["enqueued_at"],
                condition=models.Q(evaluated_at__isnull=True),
                name="order_pending_evaluation",
            ),
        ]

    def __str__(self) -> str:
        return self.external_id

    @property
    def is_evaluated(self) -> bool:
        return self.evaluated_at is not None
