from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.models import Evaluable
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


# The orders that count as a purchase: all but those refunded in full.
COUNTED = models.Q(amount=0) | models.Q(refunded_amount__lt=models.F("amount"))


class Order(Evaluable):
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
    # The sum of this order's refunds; what the member spent is amount - refunded_amount.
    refunded_amount = models.DecimalField(
        _("refunded"), max_digits=12, decimal_places=2, default=Decimal(0), editable=False
    )
    placed_at = models.DateTimeField(_("placed at"), validators=[validate_placed_at])
    # SHA-256 of the canonical request: tells a harmless replay from a conflicting one.
    payload_hash = models.CharField(max_length=64, editable=False)
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["-placed_at", "-id"]
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="order_amount_gte_0"),
            models.CheckConstraint(
                condition=models.Q(refunded_amount__gte=0, refunded_amount__lte=models.F("amount")),
                name="order_refunds_within_amount",
            ),
        ]
        indexes = [
            *Evaluable.Meta.indexes,
            models.Index(fields=["member", "-placed_at"]),
            models.Index(fields=["placed_at"]),
            models.Index(fields=["recorded_at"]),
        ]

    def __str__(self) -> str:
        return self.external_id

    @property
    def net_amount(self) -> Decimal:
        return self.amount - self.refunded_amount

    @property
    def is_fully_refunded(self) -> bool:
        return self.amount > 0 and self.refunded_amount >= self.amount

    @property
    def happened_at(self) -> datetime:
        """When it was placed, but never later than it was recorded (ERP clocks drift)."""
        return min(self.placed_at, self.recorded_at)


class Refund(Evaluable):
    external_id = models.CharField(
        _("external id"), max_length=64, unique=True, validators=[external_id_validator]
    )
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    # The order's member, kept on the refund so a member's events are found by member.
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(
        _("amount"),
        max_digits=12,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0.01"))],
    )
    refunded_at = models.DateTimeField(_("refunded at"), default=timezone.now)
    payload_hash = models.CharField(max_length=64, editable=False)
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["-recorded_at", "-id"]
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="refund_amount_gt_0")
        ]
        indexes = [
            *Evaluable.Meta.indexes,
            models.Index(fields=["refunded_at"]),
            models.Index(fields=["recorded_at"]),
        ]

    def __str__(self) -> str:
        return self.external_id

    @property
    def happened_at(self) -> datetime:
        return min(self.refunded_at, self.recorded_at)
