"""Webhook events: the JSON body POSTed to a URL, signed so the receiver can trust it.

Headers: X-Tierflow-Delivery (the outbox id, the same on every retry, so a receiver can
drop duplicates), X-Tierflow-Timestamp (Unix seconds) and X-Tierflow-Signature:
"sha256=" + hex HMAC-SHA256 of "<timestamp>.<body>" with TIERFLOW_WEBHOOK_SECRET.
"""

import hashlib
import hmac
import time

import requests
from django.conf import settings

from . import OutgoingMessage, ProviderError

# Statuses that may succeed later; other 4xx mean the request itself is wrong.
RETRYABLE_STATUSES = {408, 425, 429}
TIMEOUT = (3.05, 10)  # connect, read (seconds)


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
        try:
            # Not following redirects: a 30x would be re-sent as a GET without the event.
            response = requests.post(
                message.recipient,
                data=body,
                headers=headers,
                timeout=TIMEOUT,
                allow_redirects=False,
            )
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ) as exc:
            raise ProviderError(
                f"The webhook URL is not valid: {type(exc).__name__}.", permanent=True
            ) from exc
        except requests.Timeout as exc:
            raise ProviderError("The endpoint did not answer in time.", permanent=False) from exc
        except requests.RequestException as exc:
            raise ProviderError(
                f"Could not reach the endpoint: {type(exc).__name__}.", permanent=False
            ) from exc
        if 200 <= response.status_code < 300:
            return f"http-{response.status_code}"
        if 300 <= response.status_code < 400:
            where = response.headers.get("Location", "elsewhere")
            raise ProviderError(
                f"The endpoint redirected (HTTP {response.status_code}) to {where}; "
                "configure the final URL.",
                permanent=True,
            )
        permanent = response.status_code < 500 and response.status_code not in RETRYABLE_STATUSES
        raise ProviderError(
            f"The endpoint answered HTTP {response.status_code}.", permanent=permanent
        )
