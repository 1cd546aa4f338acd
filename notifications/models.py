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


class NotificationTemplate(models.Model):
    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100, blank=True)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    body = models.TextField(
        _("body"),
        help_text=_(
            "Django template syntax, e.g. {{ member.name }}, {{ tier.name }}, "
            "{{ tier.discount_label }}, {{ coupon.amount_off }}, {{ points }}."
        ),
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
        errors = template_errors(self.body)
        if errors:
            raise ValidationError({"body": errors})


class Notification(models.Model):
    """The outbox: saved in the transaction that caused it, delivered after commit."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
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

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications (outbox)")
        indexes = [
            models.Index(fields=["member", "-created_at"]),
            models.Index(fields=["status", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} #{self.pk}"
