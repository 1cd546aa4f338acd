from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.days import next_midnight
from core.models import Job, recorded_at_field
from members.models import EngagementEvent, Member, Tag, Tier
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
        """The programme's policy; until one is saved, the defaults (nothing is earned).
        Reads only: a migration creates the row, and the admin and loads save it."""
        return cls.objects.filter(pk=1).first() or cls(pk=1)

    def points_expiry_from(self, earned_at: datetime) -> datetime | None:
        """Points lapse at a midnight (TIME_ZONE), for the daily job just after it."""
        if self.points_expiry == self.Expiry.DAYS:
            return next_midnight(earned_at + timedelta(days=self.points_valid_days))
        if self.points_expiry == self.Expiry.END_OF_FOLLOWING_YEAR:
            local = timezone.localtime(earned_at)
            return local.replace(
                year=local.year + 2, month=1, day=1, hour=0, minute=0, second=0, microsecond=0
            )
        return None


class Discount(models.TextChoices):
    AMOUNT = "amount", _("an amount off")
    PERCENT = "percent", _("a percentage off, with a cap")


class Stacking(models.TextChoices):
    EXCLUSIVE = "exclusive", _("alone: no other coupon on the same order")
    STACKABLE = "stackable", _("with other stackable coupons")


class CouponTemplate(models.Model):
    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    discount = models.CharField(
        _("discount"), max_length=10, choices=Discount.choices, default=Discount.AMOUNT
    )
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
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
    )
    percent_off = models.DecimalField(
        _("percent off"),
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal(100))],
    )
    max_discount = models.DecimalField(
        _("at most (amount)"),
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text=_("The cap on a percentage discount; empty: no cap."),
    )
    valid_days = models.PositiveSmallIntegerField(
        _("valid for (days)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text=_("Days from issue; or leave empty and give fixed dates."),
    )
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    per_member_limit = models.PositiveIntegerField(
        _("per member, at most"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("Coupons of this template one member may hold in all; empty: no limit."),
    )
    budget = models.PositiveIntegerField(
        _("budget (coupons in total)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("Coupons of this template issued in all; empty: no limit."),
    )
    stacking = models.CharField(
        _("combines"), max_length=10, choices=Stacking.choices, default=Stacking.EXCLUSIVE
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("coupon template")
        verbose_name_plural = _("coupon templates")
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(discount="amount", amount_off__gt=0)
                    | models.Q(discount="percent", percent_off__gt=0, percent_off__lte=100)
                )
                & models.Q(min_spend__gte=0)
                & (models.Q(valid_days__gte=1) | models.Q(valid_until__isnull=False)),
                name="coupon_template_terms_valid",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        if self.discount == Discount.AMOUNT:
            if not self.amount_off:
                errors["amount_off"] = _("Give the amount off.")
            self.percent_off = self.max_discount = None
        else:
            if not self.percent_off:
                errors["percent_off"] = _("Give the percentage off.")
            self.amount_off = None
        if self.valid_days and (self.valid_from or self.valid_until):
            errors["valid_days"] = _("Give either a number of days or fixed dates, not both.")
        elif not self.valid_days and not self.valid_until:
            errors["valid_days"] = _("Give a number of days, or a 'valid until' date.")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            errors["valid_until"] = _("Must be after 'valid from'.")
        if errors:
            raise ValidationError(errors)

    def validity_from(self, issued_at: datetime) -> tuple[datetime | None, datetime]:
        """(usable from, expires) for a coupon issued at `issued_at`."""
        if self.valid_days:
            return None, issued_at + timedelta(days=self.valid_days)
        return self.valid_from, self.valid_until


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
    discount = models.CharField(
        _("discount"), max_length=10, choices=Discount.choices, default=Discount.AMOUNT
    )
    min_spend = models.DecimalField(_("minimum spend"), max_digits=12, decimal_places=2)
    amount_off = models.DecimalField(
        _("amount off"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    percent_off = models.DecimalField(
        _("percent off"), max_digits=5, decimal_places=2, null=True, blank=True
    )
    max_discount = models.DecimalField(
        _("at most (amount)"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    stacking = models.CharField(
        _("combines"), max_length=10, choices=Stacking.choices, default=Stacking.EXCLUSIVE
    )
    issued_at = models.DateTimeField(_("issued"), default=timezone.now)
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.ISSUED
    )
    # The order (the ERP's external id) a redeemed coupon was used on.
    redeemed_order = models.CharField(_("used on order"), max_length=64, blank=True)
    redeemed_at = models.DateTimeField(_("used at"), null=True, blank=True)
    # What the coupon took off the order it was used on, as the till's redemption worked
    # it out; empty while unused, or when a percentage coupon was used without an amount.
    discount_given = models.DecimalField(
        _("discount given"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    voided_at = models.DateTimeField(_("voided"), null=True, blank=True)
    firing = models.ForeignKey(
        "rules.RuleFiring",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="coupons",
    )
    job = models.ForeignKey(
        "CouponIssueJob",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="coupons",
    )

    class Meta:
        ordering = ["-issued_at", "-id"]
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        indexes = [
            models.Index(fields=["member", "-issued_at"]),
            models.Index(fields=["template", "member"]),
        ]
        constraints = [
            # A bulk issue gives each member at most one coupon, however often it resumes.
            models.UniqueConstraint(
                fields=["job", "member"],
                condition=models.Q(job__isnull=False),
                name="coupon_one_per_member_per_job",
            )
        ]

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
        # Brought from the system before tierflow (imports): with an expiry of its own.
        OPENING = "opening", _("opening balance")
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
    # A redemption's idempotency key (from the ERP or till), and its payload's fingerprint.
    external_id = models.CharField(_("idempotency key"), max_length=64, blank=True)
    payload_hash = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(_("at"), default=timezone.now)
    recorded_at = recorded_at_field()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("points entry")
        verbose_name_plural = _("points ledger")
        indexes = [
            models.Index(fields=["member", "-created_at"]),
            models.Index(fields=["recorded_at"]),
            models.Index(
                fields=["expires_at"], condition=models.Q(points__gt=0), name="points_lot"
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=~models.Q(points=0), name="points_entry_nonzero"),
            models.UniqueConstraint(
                fields=["external_id"],
                condition=~models.Q(external_id=""),
                name="points_entry_unique_external_id",
            ),
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
        OPENING = "opening", _("opening balance")
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


class CouponIssueJob(Job):
    """An operator's bulk issue of a template to the members a filter selects, run in the
    background in chunks; progress is kept on the row for the admin to show."""

    template = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, related_name="jobs")
    # The filter: every member matching all the given criteria.
    tier = models.ForeignKey(
        Tier, on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("tier")
    )
    tag = models.ForeignKey(
        Tag, on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("tag")
    )
    joined_from = models.DateField(_("joined on or after"), null=True, blank=True)
    joined_until = models.DateField(_("joined on or before"), null=True, blank=True)
    min_lifetime_spend = models.DecimalField(
        _("lifetime spend at least"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    total = models.PositiveIntegerField(_("members selected"), default=0)
    processed = models.PositiveIntegerField(_("members done"), default=0)
    issued = models.PositiveIntegerField(_("coupons issued"), default=0)
    skipped = models.PositiveIntegerField(_("skipped (limit or budget reached)"), default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta(Job.Meta):
        verbose_name = _("bulk coupon issue")
        verbose_name_plural = _("bulk coupon issues")

    def __str__(self) -> str:
        return f"{self.template} #{self.pk}"
