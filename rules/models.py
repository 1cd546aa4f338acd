from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from benefits.models import CouponTemplate
from members.models import Member, Tier
from notifications.models import NotificationTemplate
from orders.models import Order

from . import conditions, logic
from .facts import FACTS

MAX_PRIORITY = 1_000_000
MAX_DAYS = 3660  # ten years of look-back
MAX_POINTS = 10_000_000


class Trigger(models.TextChoices):
    ORDER_PAID = "order_paid", _("order paid")


class FiringLimit(models.TextChoices):
    ONCE = "once", _("once per member, ever")
    EVERY_TIME = "every_time", _("every time the trigger happens")


class Rule(models.Model):
    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    trigger = models.CharField(_("trigger"), max_length=30, choices=Trigger.choices)
    priority = models.IntegerField(
        _("priority"),
        default=100,
        validators=[MinValueValidator(-MAX_PRIORITY), MaxValueValidator(MAX_PRIORITY)],
        help_text=_("Lower runs first; ties are broken by code."),
    )
    is_active = models.BooleanField(_("active"), default=False)
    active_from = models.DateTimeField(_("active from"), null=True, blank=True)
    active_until = models.DateTimeField(_("active until"), null=True, blank=True)
    firing_limit = models.CharField(
        _("fires"), max_length=20, choices=FiringLimit.choices, default=FiringLimit.ONCE
    )
    stop_processing = models.BooleanField(
        _("stop evaluating lower-priority rules when this one fires"), default=False
    )
    logic = models.CharField(
        _("condition logic"),
        max_length=200,
        blank=True,
        help_text=_(
            "How the numbered conditions combine, e.g. '(1 and 2) or 3'. "
            "Empty: all conditions must hold."
        ),
    )
    # Bumped on every change; each firing records the version it ran.
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["priority", "code"]
        verbose_name = _("rule")
        verbose_name_plural = _("rules")
        indexes = [models.Index(fields=["trigger", "is_active", "priority", "code"])]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.active_from and self.active_until and self.active_until <= self.active_from:
            raise ValidationError({"active_until": _("Must be after 'active from'.")})
        if self.logic:
            try:
                logic.parse(self.logic)
            except logic.LogicError as exc:
                raise ValidationError({"logic": str(exc)}) from exc

    def is_live(self, at=None) -> bool:
        at = at or timezone.now()
        return (
            self.is_active
            and (self.active_from is None or self.active_from <= at)
            and (self.active_until is None or at < self.active_until)
        )


class RuleCondition(models.Model):
    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="conditions")
    position = models.PositiveSmallIntegerField(_("number"))
    fact = models.CharField(
        _("fact"), max_length=40, choices=[(f.key, f.label) for f in FACTS.values()]
    )
    op = models.CharField(_("operator"), max_length=10, choices=conditions.OPERATOR_CHOICES)
    value = models.CharField(
        _("value"),
        max_length=200,
        help_text=_("One value; a comma-separated list for 'in'; 'low, high' for 'between'."),
    )
    days = models.PositiveIntegerField(
        _("over the last N days"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_DAYS)],
        help_text=_("For windowed facts."),
    )

    class Meta:
        ordering = ["position"]
        verbose_name = _("condition")
        verbose_name_plural = _("conditions")
        constraints = [
            models.UniqueConstraint(fields=["rule", "position"], name="rule_condition_position")
        ]

    def __str__(self) -> str:
        return f"{self.position}. {conditions.describe(self.fact, self.op, self.value, self.days)}"

    def clean(self) -> None:
        self.value = conditions.normalize_value(self.op, self.value)
        errors = conditions.validate(self.fact, self.op, self.value, self.days)
        if errors:
            raise ValidationError(errors)


class ActionKind(models.TextChoices):
    SET_TIER = "set_tier", _("set tier")
    ISSUE_COUPON = "issue_coupon", _("issue coupon")
    AWARD_POINTS = "award_points", _("award points")
    NOTIFY = "notify", _("send message")


class RuleAction(models.Model):
    # Which of the target fields each kind needs.
    REQUIRED_FIELDS = {
        ActionKind.SET_TIER: "tier",
        ActionKind.ISSUE_COUPON: "coupon_template",
        ActionKind.AWARD_POINTS: "points",
        ActionKind.NOTIFY: "notification_template",
    }

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="actions")
    position = models.PositiveSmallIntegerField(_("order"))
    kind = models.CharField(_("action"), max_length=20, choices=ActionKind.choices)
    tier = models.ForeignKey(
        Tier,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("tier"),
    )
    allow_downgrade = models.BooleanField(
        _("may move the member down"), default=False, help_text=_("For 'set tier' only.")
    )
    coupon_template = models.ForeignKey(
        CouponTemplate,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("coupon template"),
    )
    points = models.PositiveIntegerField(
        _("points"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_POINTS)],
    )
    notification_template = models.ForeignKey(
        NotificationTemplate,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("message template"),
    )

    class Meta:
        ordering = ["position"]
        verbose_name = _("action")
        verbose_name_plural = _("actions")
        constraints = [
            models.UniqueConstraint(fields=["rule", "position"], name="rule_action_position")
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.get_kind_display()}"

    def clean(self) -> None:
        required = self.REQUIRED_FIELDS.get(self.kind)
        # Targets that belong to other kinds are cleared, so a row says only what it does.
        for kind, field in self.REQUIRED_FIELDS.items():
            if kind != self.kind:
                setattr(self, field, None)
        if self.kind != ActionKind.SET_TIER:
            self.allow_downgrade = False
        if required and not self.serializable_value(required):
            field = self._meta.get_field(required)
            raise ValidationError(
                {
                    required: _("'%(kind)s' needs %(field)s.")
                    % {"kind": self.get_kind_display(), "field": field.verbose_name}
                }
            )


class RuleFiring(models.Model):
    """A rule applied to a member, once per occurrence: the unique key is what makes a
    task that runs twice, or two orders evaluated at once, apply effects only once."""

    rule = models.ForeignKey(Rule, on_delete=models.PROTECT, related_name="firings")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="firings")
    # "once" for once-ever rules; otherwise names the triggering event, e.g. "order:42".
    occurrence_key = models.CharField(max_length=100)
    trigger = models.CharField(max_length=30, choices=Trigger.choices)
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, null=True, blank=True, related_name="firings"
    )
    rule_version = models.PositiveIntegerField()
    # The facts the rule saw, so "why did this member get this?" has an answer.
    facts = models.JSONField(default=dict)
    fired_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-fired_at", "-id"]
        verbose_name = _("rule firing")
        verbose_name_plural = _("rule firings")
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "member", "occurrence_key"], name="rule_firing_once_per_occurrence"
            )
        ]
        indexes = [models.Index(fields=["member", "-fired_at"])]

    def __str__(self) -> str:
        return f"{self.rule.code} → {self.member.external_id}"

    @property
    def reference(self) -> dict:
        """How an effect's timeline entry names the rule behind it."""
        return {
            "code": self.rule.code,
            "name": self.rule.name,
            "version": self.rule_version,
            "firing_id": self.pk,
        }
