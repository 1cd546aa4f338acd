from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from benefits.models import CouponTemplate
from core.models import Job
from members.models import MAX_DAYS, EngagementEvent, EngagementKind, Member, Tag, Tier
from notifications.models import Channel, NotificationTemplate
from orders.models import Order

from .engine import conditions, logic_line
from .engine.facts import FACTS

MAX_PRIORITY = 1_000_000
MAX_POINTS = 10_000_000


class Trigger(models.TextChoices):
    ORDER_PAID = "order_paid", _("order paid")
    ORDER_REFUNDED = "order_refunded", _("order refunded")
    MEMBER_JOINED = "member_joined", _("member joined")
    ENGAGEMENT = "engagement", _("engagement (check-in, review, share…)")
    TIER_CHANGED = "tier_changed", _("tier changed (upgrade, downgrade or renewal)")
    # Clock triggers, checked once a day by the daily job:
    BIRTHDAY = "birthday", _("birthday")
    JOIN_ANNIVERSARY = "join_anniversary", _("anniversary of joining")
    TIER_EXPIRING = "tier_expiring", _("N days before the tier lapses")
    INACTIVE = "inactive", _("no order for N days")
    POINTS_EXPIRING = "points_expiring", _("N days before points lapse")


CLOCK_TRIGGERS = {
    Trigger.BIRTHDAY,
    Trigger.JOIN_ANNIVERSARY,
    Trigger.TIER_EXPIRING,
    Trigger.INACTIVE,
    Trigger.POINTS_EXPIRING,
}
TRIGGERS_WITH_DAYS = {Trigger.TIER_EXPIRING, Trigger.INACTIVE, Trigger.POINTS_EXPIRING}


class FiringLimit(models.TextChoices):
    ONCE = "once", _("once per member, ever")
    PER_DAY = "per_day", _("once per member per day")
    PER_WEEK = "per_week", _("once per member per week")
    PER_MONTH = "per_month", _("once per member per calendar month")
    PER_YEAR = "per_year", _("once per member per calendar year")
    EVERY_TIME = "every_time", _("every time the trigger happens")


class Rule(models.Model):
    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    trigger = models.CharField(_("trigger"), max_length=30, choices=Trigger.choices)
    trigger_days = models.PositiveIntegerField(
        _("N (days)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_DAYS)],
        help_text=_(
            "For 'N days before the tier lapses' (empty: each tier's own reminder days), "
            "'no order for N days' and 'N days before points lapse'."
        ),
    )
    engagement_kind = models.ForeignKey(
        EngagementKind,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("engagement kind"),
        help_text=_("For the engagement trigger; empty: any kind."),
    )
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
    budget = models.PositiveIntegerField(
        _("budget (firings in total)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("E.g. 1000 for the first 1000 members; empty: no limit."),
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
        errors = {}
        if self.active_from and self.active_until and self.active_until <= self.active_from:
            errors["active_until"] = _("Must be after 'active from'.")
        if (
            self.trigger in TRIGGERS_WITH_DAYS
            and self.trigger != Trigger.TIER_EXPIRING
            and not self.trigger_days
        ):
            errors["trigger_days"] = _("'%(trigger)s' needs N, the number of days.") % {
                "trigger": self.get_trigger_display()
            }
        if self.trigger not in TRIGGERS_WITH_DAYS:
            self.trigger_days = None
        if self.trigger != Trigger.ENGAGEMENT:
            self.engagement_kind = None
        if errors:
            raise ValidationError(errors)
        if self.logic:
            try:
                logic_line.parse(self.logic)
            except logic_line.LogicError as exc:
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
        help_text=_(
            "One value; a comma-separated list for 'is one of'; 'low, high' for 'between'. "
            "Tiers, tags and engagement kinds by code or name."
        ),
    )
    event_kind = models.ForeignKey(
        EngagementKind,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("engagement kind"),
        help_text=_("For engagements counted over days; empty: any kind."),
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
        self.value = conditions.codes_from_names(self.fact, self.op, self.value)
        self.value = conditions.normalize_value(self.op, self.value)
        errors = conditions.validate(
            self.fact, self.op, self.value, self.days, has_event_kind=self.event_kind_id is not None
        )
        if errors:
            raise ValidationError(errors)


class ActionKind(models.TextChoices):
    SET_TIER = "set_tier", _("set tier")
    ISSUE_COUPON = "issue_coupon", _("issue coupon")
    AWARD_POINTS = "award_points", _("award points")
    AWARD_GROWTH_POINTS = "award_growth_points", _("award growth points")
    NOTIFY = "notify", _("send message")
    ADD_TAG = "add_tag", _("add tag")
    REMOVE_TAG = "remove_tag", _("remove tag")
    WEBHOOK = "webhook", _("call webhook")


class RuleAction(models.Model):
    # Which of the target fields each kind needs.
    REQUIRED_FIELDS = {
        ActionKind.SET_TIER: "tier",
        ActionKind.ISSUE_COUPON: "coupon_template",
        ActionKind.AWARD_POINTS: "points",
        ActionKind.AWARD_GROWTH_POINTS: "points",
        ActionKind.NOTIFY: "notification_template",
        ActionKind.ADD_TAG: "tag",
        ActionKind.REMOVE_TAG: "tag",
        ActionKind.WEBHOOK: "webhook_url",
    }

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="actions")
    position = models.PositiveSmallIntegerField(_("step"))
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
    channel = models.CharField(
        _("channel"),
        max_length=10,
        choices=Channel.choices,
        blank=True,
        help_text=_("For 'send message'; empty: the template's channel."),
    )
    tag = models.ForeignKey(
        Tag,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("tag"),
    )
    webhook_url = models.URLField(_("webhook URL"), max_length=500, blank=True)

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
        errors = {}
        # A target another kind of action uses is a mistake: say so rather than drop it.
        for field in set(self.REQUIRED_FIELDS.values()) - {required}:
            if self.serializable_value(field):
                errors[field] = _("'%(kind)s' does not use this; clear it.") % {
                    "kind": self.get_kind_display()
                }
        if self.allow_downgrade and self.kind != ActionKind.SET_TIER:
            errors["allow_downgrade"] = _("Only 'set tier' can move a member down.")
        if self.channel and self.kind != ActionKind.NOTIFY:
            errors["channel"] = _("Only 'send message' has a channel.")
        if errors:
            raise ValidationError(errors)
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
    event = models.ForeignKey(
        EngagementEvent, on_delete=models.PROTECT, null=True, blank=True, related_name="firings"
    )
    # Set when an operator's "apply to existing members" job fired it.
    job = models.ForeignKey(
        "RuleJob", on_delete=models.SET_NULL, null=True, blank=True, related_name="firings"
    )
    rule_version = models.PositiveIntegerField()
    # The facts the rule saw, so "why did this member get this?" has an answer.
    facts = models.JSONField(default=dict)
    # When it was recorded, never back-dated: the reports' roll-up finds the firings
    # recorded since its last run by it.
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
        indexes = [models.Index(fields=["member", "-fired_at"]), models.Index(fields=["fired_at"])]

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


class RuleRevision(models.Model):
    """Every change to a rule: who, when, and the rule before and after (in the programme
    file's format)."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="revisions")
    version = models.PositiveIntegerField(_("version"))
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("changed by"),
    )
    source = models.CharField(_("changed through"), max_length=20)
    changed_at = models.DateTimeField(_("changed at"), default=timezone.now)
    before = models.JSONField(_("before"), null=True, blank=True)
    after = models.JSONField(_("after"))

    class Meta:
        ordering = ["-version"]
        verbose_name = _("rule revision")
        verbose_name_plural = _("rule history")
        constraints = [
            models.UniqueConstraint(fields=["rule", "version"], name="rule_revision_version")
        ]

    def __str__(self) -> str:
        return f"{self.rule.code} v{self.version}"

    def changes(self) -> list[tuple[str, object, object]]:
        """(field, before, after) for each top-level field that differs."""
        before = self.before or {}
        keys = list(dict.fromkeys([*before, *self.after]))
        return [
            (k, before.get(k), self.after.get(k))
            for k in keys
            if before.get(k) != self.after.get(k)
        ]


class RuleJob(Job):
    """A background job an operator started on a rule, with its progress and result."""

    class Kind(models.TextChoices):
        APPLY = "apply", _("apply to existing members")
        SIMULATE = "simulate", _("simulate on past orders")

    kind = models.CharField(_("job"), max_length=10, choices=Kind.choices)
    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="jobs")
    send_notifications = models.BooleanField(_("send messages"), default=True)
    days = models.PositiveIntegerField(
        _("days replayed"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_DAYS)],
    )
    result = models.JSONField(_("result"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta(Job.Meta):
        verbose_name = _("rule job")
        verbose_name_plural = _("rule jobs")

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.rule.code}"


class ClockOccurrence(models.Model):
    """A clock trigger evaluated for a member on a business day: like an order's
    evaluated_at, it makes running a day again a no-op, even for rules that an earlier
    rule's effects would now make true."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    trigger = models.CharField(max_length=30, choices=Trigger.choices)
    day = models.DateField()
    evaluated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "trigger", "day"], name="clock_once_per_day")
        ]

    def __str__(self) -> str:
        return f"{self.trigger} {self.day}"
