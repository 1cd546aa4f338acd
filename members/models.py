from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import ExtractDay, ExtractMonth
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.days import next_midnight
from core.errors import NotFound
from core.models import Evaluable, recorded_at_field

from .phones import PhoneField, phone_validator

# External ids appear in URLs (/api/v1/members/<external_id>/), so no slashes or spaces.
external_id_validator = RegexValidator(
    r"^[^/\s]+$", _("Use letters, digits and punctuation other than '/', without spaces.")
)


MAX_RANK = 1000
MAX_DAYS = 3660


def discount_label(percent: Decimal) -> str:
    """How a Chinese shopper reads a discount: 5% off is "9.5折", 10% off is "9折"."""
    if percent <= 0:
        return "无折扣"
    if percent >= 100:
        return "免费"
    tenths = ((Decimal(100) - percent) / 10).normalize()
    return f"{tenths:f}折"


class Validity(models.TextChoices):
    FOREVER = "forever", _("never lapses")
    DAYS = "days", _("a number of days from the upgrade")
    CALENDAR_YEAR = "calendar_year", _("until the end of the calendar year")


class KeepMetric(models.TextChoices):
    SPEND = "spend", _("spend in the period (net of refunds)")
    GROWTH = "growth", _("growth points earned in the period")


class LapseTo(models.TextChoices):
    HIGHEST_QUALIFYING = "highest_qualifying", _("the highest tier the period's figures meet")
    ONE_STEP = "one_step", _("one tier down")


class RefundPolicy(models.TextChoices):
    AT_ONCE = "at_once", _("at once: the upgrade is undone if its rule no longer holds")
    END_OF_PERIOD = "end_of_period", _("at the end of the period, by the keep-tier threshold")


class Tier(models.Model):
    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    rank = models.PositiveSmallIntegerField(
        _("rank"),
        unique=True,
        validators=[MaxValueValidator(MAX_RANK)],
        help_text=_("0 is the tier every new member starts on."),
    )
    discount_percent = models.DecimalField(
        _("discount (percent off)"),
        max_digits=5,
        decimal_places=2,
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
    )
    points_multiplier = models.DecimalField(
        _("points multiplier"),
        max_digits=5,
        decimal_places=2,
        default=Decimal(1),
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
        help_text=_("Members on this tier earn the base points rate times this."),
    )
    validity = models.CharField(
        _("validity"), max_length=20, choices=Validity.choices, default=Validity.FOREVER
    )
    validity_days = models.PositiveIntegerField(
        _("valid for (days)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_DAYS)],
        help_text=_("When the validity is a number of days from the upgrade."),
    )
    keep_metric = models.CharField(
        _("keep-tier measure"), max_length=10, choices=KeepMetric.choices, default=KeepMetric.SPEND
    )
    keep_threshold = models.DecimalField(
        _("keep-tier threshold"),
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text=_(
            "What a member must reach within the period to keep this tier, and what a lapsing "
            "member of a higher tier must reach to land on it. Empty: no requirement."
        ),
    )
    remind_days_before = models.PositiveSmallIntegerField(
        _("remind days before lapsing"),
        default=15,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text=_("When 'N days before the tier lapses' rules with no N of their own run."),
    )
    lapse_to = models.CharField(
        _("at expiry, below the threshold, move to"),
        max_length=20,
        choices=LapseTo.choices,
        default=LapseTo.HIGHEST_QUALIFYING,
    )
    refund_policy = models.CharField(
        _("after a refund, re-check the tier"),
        max_length=20,
        choices=RefundPolicy.choices,
        default=RefundPolicy.AT_ONCE,
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["rank"]
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(discount_percent__gte=0, discount_percent__lte=100),
                name="tier_discount_percent_range",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def discount_label(self) -> str:
        return discount_label(self.discount_percent)

    def clean(self) -> None:
        if self.validity == Validity.DAYS and not self.validity_days:
            raise ValidationError({"validity_days": _("Give the number of days.")})
        if self.validity != Validity.DAYS:
            self.validity_days = None
        if self.rank == 0 and self.validity != Validity.FOREVER:
            raise ValidationError(
                {"validity": _("The base tier (rank 0) has no lower tier to lapse to.")}
            )

    def expiry_from(self, start: datetime) -> datetime | None:
        """When a membership of this tier that starts at `start` lapses (None: never):
        at the first midnight at least `validity_days` later, or on 1 January."""
        if self.validity == Validity.DAYS:
            return next_midnight(start + timedelta(days=self.validity_days))
        if self.validity == Validity.CALENDAR_YEAR:
            local = timezone.localtime(start)
            return local.replace(
                year=local.year + 1, month=1, day=1, hour=0, minute=0, second=0, microsecond=0
            )
        return None


class Member(models.Model):
    """A member, with their running totals and the state of their journal of events
    (core.models.Evaluable): joining is event 1, each order, refund, engagement and tier
    change made outside an evaluation the next."""

    external_id = models.CharField(
        _("external id"), max_length=64, unique=True, validators=[external_id_validator]
    )
    name = models.CharField(_("name"), max_length=100, blank=True)
    phone = PhoneField(_("phone"), blank=True, validators=[phone_validator])
    email = models.EmailField(_("e-mail"), blank=True)
    tier = models.ForeignKey(
        Tier, on_delete=models.PROTECT, null=True, blank=True, related_name="members"
    )
    tier_since = models.DateTimeField(_("on this tier since"), null=True, blank=True)
    tier_expires_at = models.DateTimeField(_("tier lapses at"), null=True, blank=True)
    # The current period: from the upgrade or the last renewal to `tier_expires_at`.
    tier_period_start = models.DateTimeField(_("tier period from"), null=True, blank=True)
    # Set by an operator: automatic moves never go below this tier until the date.
    tier_floor = models.ForeignKey(
        Tier,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("never below"),
    )
    tier_floor_until = models.DateField(_("floor until"), null=True, blank=True)
    joined_at = models.DateTimeField(_("joined"), default=timezone.now)
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    # Which body of a message template the member gets: "zh-hans" or "en".
    language = models.CharField(
        _("language"),
        max_length=10,
        choices=[("zh-hans", _("Simplified Chinese")), ("en", _("English"))],
        default="zh-hans",
    )
    tags = models.ManyToManyField("Tag", blank=True, related_name="members", verbose_name=_("tags"))
    # Running totals, updated under the member row lock with every order; verifiable
    # against the orders themselves (invariant 4).
    lifetime_spend = models.DecimalField(
        _("lifetime spend"), max_digits=14, decimal_places=2, default=Decimal(0)
    )
    order_count = models.PositiveIntegerField(_("orders"), default=0)
    last_order_at = models.DateTimeField(_("last order"), null=True, blank=True)
    # The journal: the number of the last event recorded, of the last one evaluated, and
    # since when the member has events waiting (null: none). Recording an event bumps
    # `event_seq` and sets `pending_since`; an evaluation brings `evaluated_seq` up to it.
    event_seq = models.PositiveIntegerField(default=1, editable=False)
    evaluated_seq = models.PositiveIntegerField(default=0, editable=False)
    pending_since = models.DateTimeField(null=True, blank=True, default=timezone.now)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["-joined_at"]
        indexes = [
            models.Index(
                fields=["pending_since"],
                condition=models.Q(pending_since__isnull=False),
                name="member_pending_since",
            ),
            models.Index(fields=["tier_expires_at"]),
            models.Index(fields=["last_order_at"]),
            models.Index(fields=["joined_at"]),
            models.Index(fields=["created_at"]),
            # The opt-out by phone, and an import's check for phones held by others.
            models.Index(fields=["phone"]),
            models.Index(ExtractMonth("birthday"), ExtractDay("birthday"), name="member_birthday"),
        ]
        verbose_name = _("member")
        verbose_name_plural = _("members")
        permissions = [("view_member_pii", _("Can see members' unmasked personal data"))]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(lifetime_spend__gte=0), name="member_lifetime_spend_gte_0"
            )
        ]

    def __str__(self) -> str:
        return self.external_id

    @property
    def is_evaluated(self) -> bool:
        """Whether the member_joined rules have run (joining is event 1)."""
        return self.evaluated_seq >= 1

    @property
    def happened_at(self) -> datetime:
        """When the member joined the programme (when the record was created)."""
        return self.created_at or timezone.now()


class MemberNotFound(Member.DoesNotExist, NotFound):
    """No member has the external id a client gave (in a URL or a request body)."""

    def __init__(self, external_id: str) -> None:
        super().__init__(f"No member with external id '{external_id}'.")
        self.external_id = external_id


class TierChangeCause(models.TextChoices):
    RULE = "rule", _("a rule")
    MANUAL = "manual", _("by hand")
    LAPSE = "lapse", _("the tier period ended")
    REFUND = "refund", _("a refund")
    BASE = "base", _("the base tier given")
    IMPORT = "import", _("an import")


class TierChange(Evaluable):
    """A move between tiers, or a renewal (same tier, a new period); rules on the
    `tier_changed` trigger are evaluated for it."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="tier_changes")
    from_tier = models.ForeignKey(
        Tier, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    to_tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(_("reason"), max_length=200)
    cause = models.CharField(_("cause"), max_length=10, choices=TierChangeCause.choices)
    # The rule firing that caused the change; empty for changes made by hand.
    firing = models.ForeignKey(
        "rules.RuleFiring",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="tier_changes",
    )
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("changed at"), default=timezone.now)
    recorded_at = recorded_at_field()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("tier change")
        verbose_name_plural = _("tier history")
        indexes = [
            *Evaluable.Meta.indexes,
            models.Index(fields=["member", "-created_at"]),
            models.Index(fields=["created_at"]),
            models.Index(fields=["recorded_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.from_tier or '-'} → {self.to_tier}"

    @property
    def rank_change(self) -> int:
        """Ranks moved: above 0 up, below 0 down, 0 a renewal (from nothing: an upgrade)."""
        return self.to_tier.rank - (self.from_tier.rank if self.from_tier else -1)

    @property
    def move(self) -> str:
        if self.rank_change > 0:
            return "upgrade"
        return "renewal" if self.rank_change == 0 else "downgrade"

    @property
    def happened_at(self) -> datetime:
        return self.created_at


class Tag(models.Model):
    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)

    class Meta:
        ordering = ["code"]
        verbose_name = _("tag")
        verbose_name_plural = _("tags")

    def __str__(self) -> str:
        return self.name


class EngagementKind(models.Model):
    """Something a member does besides buying: a check-in, a review, a share…"""

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    growth_points = models.PositiveIntegerField(
        _("growth points per event"), default=0, validators=[MaxValueValidator(1_000_000)]
    )
    daily_cap = models.PositiveSmallIntegerField(
        _("events per day that earn growth points"),
        null=True,
        blank=True,
        help_text=_("Empty: no limit."),
    )
    is_active = models.BooleanField(_("accepted"), default=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("engagement kind")
        verbose_name_plural = _("engagement kinds")

    def __str__(self) -> str:
        return self.name


class EngagementEvent(Evaluable):
    external_id = models.CharField(
        _("external id"), max_length=64, unique=True, validators=[external_id_validator]
    )
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="engagements")
    kind = models.ForeignKey(EngagementKind, on_delete=models.PROTECT, related_name="events")
    occurred_at = models.DateTimeField(_("occurred at"))
    payload_hash = models.CharField(max_length=64, editable=False)
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("engagement event")
        verbose_name_plural = _("engagement events")
        indexes = [*Evaluable.Meta.indexes, models.Index(fields=["member", "kind", "-occurred_at"])]

    def __str__(self) -> str:
        return self.external_id

    @property
    def happened_at(self) -> datetime:
        """When it happened, by the app's clock, but never later than it was recorded."""
        return min(self.occurred_at, self.recorded_at)
