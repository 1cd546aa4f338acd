from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Member

from .rendering import template_errors


class Channel(models.TextChoices):
    SMS = "sms", _("SMS")
    PUSH = "push", _("app push")
    EMAIL = "email", _("e-mail")
    WEBHOOK = "webhook", _("webhook")


class Purpose(models.TextChoices):
    TRANSACTIONAL = "transactional", _("transactional (tier changes, coupons issued…)")
    MARKETING = "marketing", _("marketing (needs the member's consent)")


class Language(models.TextChoices):
    ZH_HANS = "zh-hans", _("Simplified Chinese")
    EN = "en", _("English")


class NotificationTemplate(models.Model):
    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100, blank=True)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    purpose = models.CharField(
        _("purpose"), max_length=15, choices=Purpose.choices, default=Purpose.TRANSACTIONAL
    )
    body = models.TextField(
        _("body (Simplified Chinese)"),
        help_text=_(
            "Django template syntax, e.g. {{ member.name }}, {{ tier.name }}, "
            "{{ tier.discount_label }}, {{ coupon.amount_off }}, {{ points }}."
        ),
    )
    body_en = models.TextField(
        _("body (English)"),
        blank=True,
        help_text=_("For members whose language is English; empty: they get the Chinese body."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("notification template")
        verbose_name_plural = _("notification templates")

    def __str__(self) -> str:
        return self.name or self.code

    def clean(self) -> None:
        errors = {
            field: problems
            for field in ("body", "body_en")
            if (problems := template_errors(getattr(self, field)) if getattr(self, field) else [])
        }
        if errors:
            raise ValidationError(errors)

    def body_for(self, language: str) -> str:
        return self.body_en if language == Language.EN and self.body_en else self.body


class Notification(models.Model):
    """The outbox: saved in the transaction that caused it, delivered after commit."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
        DELIVERED = "delivered", _("delivered")
        FAILED = "failed", _("failed")
        SUPPRESSED = "suppressed", _("suppressed")

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="notifications")
    # Empty for webhook events, whose body is the JSON event itself.
    template = models.ForeignKey(
        NotificationTemplate,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="notifications",
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    purpose = models.CharField(
        _("purpose"), max_length=15, choices=Purpose.choices, default=Purpose.TRANSACTIONAL
    )
    body = models.TextField(_("text"))
    url = models.URLField(_("webhook URL"), max_length=500, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    # Why it failed or was suppressed, for operators; never contains the recipient.
    status_reason = models.CharField(_("status reason"), max_length=300, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    # A transient failure puts the message back in the queue until this time.
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    provider = models.CharField(_("provider"), max_length=30, blank=True)
    provider_message_id = models.CharField(_("provider message id"), max_length=100, blank=True)
    firing = models.ForeignKey(
        "rules.RuleFiring",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="notifications",
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications (outbox)")
        indexes = [
            models.Index(fields=["member", "-created_at"]),
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["provider", "provider_message_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} #{self.pk}"


class Consent(models.Model):
    """A member's consent to marketing messages on a channel, granted or withdrawn, with
    when and where (the app, the till, an SMS reply "T", an operator). Append-only: the
    latest row per member and channel is the member's current choice."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="consents")
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    granted = models.BooleanField(_("granted"))
    source = models.CharField(_("source"), max_length=50)
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)

    class Meta:
        ordering = ["-recorded_at", "-id"]
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        indexes = [models.Index(fields=["member", "channel", "-recorded_at"])]

    def __str__(self) -> str:
        return f"{self.channel}: {'granted' if self.granted else 'withdrawn'}"


class Device(models.Model):
    """An app installation that receives push messages for a member."""

    class Platform(models.TextChoices):
        ANDROID = "android", "Android"
        IOS = "ios", "iOS"
        WEB = "web", _("web")

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="devices")
    platform = models.CharField(_("platform"), max_length=10, choices=Platform.choices)
    token = models.CharField(_("push token"), max_length=500, unique=True)
    is_active = models.BooleanField(_("active"), default=True)
    registered_at = models.DateTimeField(_("registered"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("last seen"), default=timezone.now)

    class Meta:
        ordering = ["-last_seen_at", "-id"]
        verbose_name = _("device")
        verbose_name_plural = _("devices")

    def __str__(self) -> str:
        return f"{self.get_platform_display()} #{self.pk}"
