import logging

from . import OutgoingMessage

logger = logging.getLogger(__name__)


class ConsoleProvider:
    """Logs that a message went out, and to whom (masked), and marks it sent. The text
    stays in the outbox: it carries the member's name."""

    name = "console"

    def send(self, message: OutgoingMessage) -> str:
        logger.info(
            "console %s #%s to %s (%d characters)",
            message.channel,
            message.notification_id,
            message.masked_recipient(),
            len(message.body),
        )
        return f"console-{message.notification_id}"
