from datetime import datetime, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import EngagementEvent, Member
from orders.models import Order


class EarningPolicy(models.Model):
    """How members earn points and growth points from what they spend; one per programme.
    A tier's points multiplier scales the base points rate."""

    class Expiry(models.TextChoices):
        NEVER = "never", _("never")
        DAYS = "days", _("a number of days after they are earned")
        END_OF_FOLLOWING_YEAR = "end_of_following_year", _("at the end of the following year")

    points_per_unit = models.DecimalField(
        _("points per currency unit"),
        max_digits=8,
        decimal_places=4,
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(0))],
    )
    growth_per_unit = models.DecimalField(
        _("growth points per currency unit"),
        max_digits=8,
        decimal_places=4,
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(0))],
    )
    points_expiry = models.CharField(
        _("points expire"), max_length=30, choices=Expiry.choices, default=Expiry.NEVER
    )
    points_valid_days = models.PositiveIntegerField(
        _("points valid for (days)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(3660)],
    )

    class Meta:
        verbose_name = _("earning policy")
        verbose_name_plural = _("earning policy")
        constraints = [models.CheckConstraint(condition=models.Q(pk=1), name="one_earning_policy")]

    def __str__(self) -> str:
        return str(_("earning policy"))

    def clean(self) -> None:
        if self.points_expiry == self.Expiry.DAYS and not self.points_valid_days:
            raise ValidationError({"points_valid_days": _("Give the number of days.")})
        if self.points_expiry != self.Expiry.DAYS:
            self.points_valid_days = None

    @classmethod
    def current(cls) -> "EarningPolicy":
        return cls.objects.get_or_create(pk=1)[0]

    def points_expiry_from(self, earned_at: datetime) -> datetime | None:
        if self.points_expiry == self.Expiry.DAYS:
            return earned_at + timedelta(days=self.points_valid_days)
        if self.points_expiry == self.Expiry.END_OF_FOLLOWING_YEAR:
            local = timezone.localtime(earned_at)
            return local.replace(
                year=local.year + 2, month=1, day=1, hour=0, minute=0, second=0, microsecond=0
            )
        return None


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
    """Append-only: a member's balance is the sum of their entries, nothing else. Positive
    entries are lots that may expire; negative ones use up the soonest-expiring lots."""

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
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    # What the entry came from or undoes: an order (earning, refunds), a rule firing.
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, null=True, blank=True, related_name="points_entries"
    )
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


class GrowthEntry(models.Model):
    """Growth points (成长值) measure engagement for tier qualification; like points, the
    balance is the sum of an append-only ledger. They are never spent."""

    class Kind(models.TextChoices):
        SPEND = "spend", _("from spend")
        ENGAGEMENT = "engagement", _("from engagement")
        BONUS = "bonus", _("bonus")
        REVERSE = "reverse", _("reversed")

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="growth_entries")
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    points = models.IntegerField(_("growth points"))
    reason = models.CharField(_("reason"), max_length=200)
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, null=True, blank=True, related_name="growth_entries"
    )
    event = models.ForeignKey(
        EngagementEvent,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="growth_entries",
    )
    firing = models.ForeignKey(
        "rules.RuleFiring",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="growth_entries",
    )
    created_at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("growth points entry")
        verbose_name_plural = _("growth points ledger")
        indexes = [models.Index(fields=["member", "-created_at"])]
        constraints = [
            models.CheckConstraint(condition=~models.Q(points=0), name="growth_entry_nonzero")
        ]

    def __str__(self) -> str:
        return f"{self.points:+d} {self.get_kind_display()}"
