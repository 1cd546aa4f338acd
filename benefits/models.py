from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Member


class CouponTemplate(models.Model):
    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    min_spend = models.DecimalField(
        _("minimum spend"),
        max_digits=12,
        decimal_places=2,
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(0))],
    )
    amount_off = models.DecimalField(
        _("amount off"),
        max_digits=12,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0.01"))],
    )
    valid_days = models.PositiveSmallIntegerField(
        _("valid for (days)"), validators=[MinValueValidator(1), MaxValueValidator(3650)]
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("coupon template")
        verbose_name_plural = _("coupon templates")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount_off__gt=0, min_spend__gte=0, valid_days__gte=1),
                name="coupon_template_terms_valid",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Coupon(models.Model):
    class Status(models.TextChoices):
        ISSUED = "issued", _("issued")
        REDEEMED = "redeemed", _("redeemed")
        VOID = "void", _("void")

    code = models.CharField(_("code"), max_length=20, unique=True)
    template = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, related_name="coupons")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="coupons")
    # The terms as they were at issue: editing the template later changes no coupon in hand.
    name = models.CharField(_("name"), max_length=100)
    min_spend = models.DecimalField(_("minimum spend"), max_digits=12, decimal_places=2)
    amount_off = models.DecimalField(_("amount off"), max_digits=12, decimal_places=2)
    issued_at = models.DateTimeField(_("issued"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.ISSUED
    )
    firing = models.ForeignKey(
        "rules.RuleFiring",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="coupons",
    )

    class Meta:
        ordering = ["-issued_at", "-id"]
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        indexes = [models.Index(fields=["member", "-issued_at"])]

    def __str__(self) -> str:
        return self.code

    def display_status(self, now=None) -> str:
        """ "expired" is derived: an issued coupon past its expiry can no longer be used."""
        now = now or timezone.now()
        if self.status == self.Status.ISSUED and self.expires_at <= now:
            return "expired"
        return self.status


class PointsEntry(models.Model):
    """Append-only: a member's balance is the sum of their entries, nothing else."""

    class Kind(models.TextChoices):
        EARN = "earn", _("earned")
        BONUS = "bonus", _("bonus")
        REDEEM = "redeem", _("redeemed")
        EXPIRE = "expire", _("expired")
        REVERSE = "reverse", _("reversed")

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="points_entries")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    points = models.IntegerField(_("points"))
    reason = models.CharField(_("reason"), max_length=200)
    firing = models.ForeignKey(
        "rules.RuleFiring",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="points_entries",
    )
    created_at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("points entry")
        verbose_name_plural = _("points ledger")
        indexes = [models.Index(fields=["member", "-created_at"])]
        constraints = [
            models.CheckConstraint(condition=~models.Q(points=0), name="points_entry_nonzero")
        ]

    def __str__(self) -> str:
        return f"{self.points:+d} {self.get_kind_display()}"
