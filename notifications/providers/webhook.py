"""Webhook events: the JSON body POSTed to a URL, signed so the receiver can trust it.

Headers: X-Tierflow-Delivery (the outbox id, the same on every retry, so a receiver can
drop duplicates), X-Tierflow-Timestamp (Unix seconds) and X-Tierflow-Signature:
"sha256=" + hex HMAC-SHA256 of "<timestamp>.<body>" with TIERFLOW_WEBHOOK_SECRET.
Timeouts and what counts as transient are the shared ones (common.py).
"""

import hashlib
import hmac
import time

from django.conf import settings

from . import OutgoingMessage, ProviderError
from .common import NoAnswer, call, transient_status

# The URL is the operator's (a rule's, or TIERFLOW_WEBHOOK_URL), not a provider's API.
ENDPOINT_NO_ANSWER = NoAnswer(
    invalid_url="The webhook URL is not valid: {error}.",
    timeout="The endpoint did not answer in time.",
    unreachable="Could not reach the endpoint: {error}.",
)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


class WebhookProvider:
    name = "http"

    def send(self, message: OutgoingMessage) -> str:
        secret = settings.TIERFLOW_WEBHOOK_SECRET
        if not secret:
            raise ProviderError("TIERFLOW_WEBHOOK_SECRET is not set.", permanent=True)
        body = message.body.encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "tierflow-webhooks",
            "X-Tierflow-Delivery": str(message.notification_id),
            "X-Tierflow-Timestamp": timestamp,
            "X-Tierflow-Signature": signature(secret, timestamp, body),
        }
        response = call(
            self.name,
            "POST",
            message.recipient,
            data=body,
            headers=headers,
            no_answer=ENDPOINT_NO_ANSWER,
        )
        status = response.status_code
        if 200 <= status < 300:
            return f"http-{status}"
        if 300 <= status < 400:
            # call() does not follow it: a 30x would be re-sent as a GET without the event.
            where = response.headers.get("Location", "elsewhere")
            raise ProviderError(
                f"The endpoint redirected (HTTP {status}) to {where}; configure the final URL.",
                permanent=True,
            )
        raise ProviderError(
            f"The endpoint answered HTTP {status}.", permanent=not transient_status(status)
        )
