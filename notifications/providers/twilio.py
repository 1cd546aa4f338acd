"""SMS through Twilio's Messages API, with delivery reports to our status callback.

TIERFLOW_TWILIO_FROM is a sending number, or a Messaging Service (its sid starts with
"MG"). Twilio needs E.164 numbers: one stored without "+" gets
TIERFLOW_SMS_DEFAULT_COUNTRY_CODE in front. Twilio takes no idempotency key for a
message: an attempt that timed out after Twilio accepted it is sent again on retry.
"""

import base64
import hashlib
import hmac
import logging
from collections.abc import Mapping

from django.conf import settings
from django.urls import reverse

from . import OutgoingMessage, ProviderError
from .common import call, failure, json_or_empty, transient_status

logger = logging.getLogger(__name__)

MESSAGING_SERVICE_PREFIX = "MG"


def e164(phone: str) -> str:
    return (
        phone if phone.startswith("+") else f"+{settings.TIERFLOW_SMS_DEFAULT_COUNTRY_CODE}{phone}"
    )


def status_callback_url() -> str:
    """Where Twilio reports deliveries; the same URL the callback's signature is checked
    against. Empty without TIERFLOW_PUBLIC_URL: no reports then, messages stay "sent"."""
    public = settings.TIERFLOW_PUBLIC_URL.rstrip("/")
    return f"{public}{reverse('notifications-callback-twilio')}" if public else ""


def request_signature(url: str, params: Mapping[str, list[str]], auth_token: str) -> str:
    """X-Twilio-Signature: base64 HMAC-SHA1, keyed with the auth token, of the full URL
    followed by each parameter's name and value, sorted by name (then value)."""
    data = url + "".join(
        f"{name}{value}" for name in sorted(params) for value in sorted(set(params[name]))
    )
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class TwilioSmsProvider:
    name = "twilio"

    def send(self, message: OutgoingMessage) -> str:
        sid = settings.TIERFLOW_TWILIO_ACCOUNT_SID
        token = settings.TIERFLOW_TWILIO_AUTH_TOKEN
        sender = settings.TIERFLOW_TWILIO_FROM
        if not (sid and token and sender):
            raise ProviderError("twilio: the account is not configured.", permanent=True)
        form = {"To": e164(message.recipient), "Body": message.body}
        if sender.startswith(MESSAGING_SERVICE_PREFIX):
            form["MessagingServiceSid"] = sender
        else:
            form["From"] = sender
        if callback := status_callback_url():
            form["StatusCallback"] = callback
        base = settings.TIERFLOW_TWILIO_API_BASE.rstrip("/")
        response = call(
            self.name,
            "POST",
            f"{base}/2010-04-01/Accounts/{sid}/Messages.json",
            data=form,
            auth=(sid, token),
        )
        answer = json_or_empty(response)
        if 200 <= response.status_code < 300 and answer.get("sid"):
            logger.info(
                "twilio sms #%s to %s accepted as %s",
                message.notification_id,
                message.masked_recipient(),
                answer["sid"],
            )
            return str(answer["sid"])
        # Twilio's errors: {"code": 21211, "message": "...", "status": 400}.
        detail = (
            f"error {answer['code']}: {answer.get('message', '')}"
            if answer.get("code")
            else f"HTTP {response.status_code}"
        )
        raise failure(self.name, detail, permanent=not transient_status(response.status_code))
