"""One interface for every channel's provider; settings pick the provider per channel.

A provider's `send` returns the provider's message id, or raises ProviderError saying
whether trying again could help (transient) or not (permanent).
"""

from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.module_loading import import_string

from core.pii import mask_email, mask_phone


@dataclass(frozen=True)
class OutgoingMessage:
    notification_id: int
    channel: str
    recipient: str  # phone, e-mail address, device token (push) or URL (webhook)
    body: str

    def masked_recipient(self) -> str:
        """For logs: personal data masked, and a URL cut to its host (it may hold a token)."""
        if self.recipient.startswith(("http://", "https://")):
            return urlsplit(self.recipient).netloc
        if "@" in self.recipient:
            return mask_email(self.recipient)
        return mask_phone(self.recipient)


class ProviderError(Exception):
    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class Provider(Protocol):
    name: str

    def send(self, message: OutgoingMessage) -> str: ...


PROVIDERS = {
    "console": "notifications.providers.console.ConsoleProvider",
    "http": "notifications.providers.webhook.WebhookProvider",
    "aliyun": "notifications.providers.aliyun.AliyunSmsProvider",
    "twilio": "notifications.providers.twilio.TwilioSmsProvider",
    "fcm": "notifications.providers.fcm.FcmPushProvider",
    "smtp": "notifications.providers.smtp.SmtpEmailProvider",
}
# The channel each provider can deliver on ("console" takes any).
PROVIDER_CHANNELS = {
    "http": {"webhook"},
    "aliyun": {"sms"},
    "twilio": {"sms"},
    "fcm": {"push"},
    "smtp": {"email"},
}


def provider_for(channel: str) -> Provider:
    name = settings.TIERFLOW_NOTIFICATION_PROVIDERS.get(channel, "console")
    if name not in PROVIDERS:
        raise LookupError(f"Unknown provider '{name}' for channel '{channel}'.")
    return import_string(PROVIDERS[name])()
