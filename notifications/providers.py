"""One interface for every channel's provider; settings pick the provider per channel.

A provider's `send` returns the provider's message id, or raises ProviderError saying
whether trying again could help (transient) or not (permanent).
"""

import logging
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from core.pii import mask_email, mask_phone

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutgoingMessage:
    notification_id: int
    channel: str
    recipient: str
    body: str


class ProviderError(Exception):
    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class Provider(Protocol):
    name: str

    def send(self, message: OutgoingMessage) -> str: ...


class ConsoleProvider:
    """Logs that a message went out, and to whom (masked); the text stays in the outbox,
    since it carries the member's name."""

    name = "console"

    def send(self, message: OutgoingMessage) -> str:
        logger.info(
            "console %s #%s to %s (%d characters)",
            message.channel,
            message.notification_id,
            mask_email(message.recipient)
            if "@" in message.recipient
            else mask_phone(message.recipient),
            len(message.body),
        )
        return f"console-{message.notification_id}"


PROVIDERS = {"console": "notifications.providers.ConsoleProvider"}


def provider_for(channel: str) -> Provider:
    name = settings.TIERFLOW_NOTIFICATION_PROVIDERS.get(channel, "console")
    if name not in PROVIDERS:
        raise LookupError(f"Unknown provider '{name}' for channel '{channel}'.")
    return import_string(PROVIDERS[name])()
