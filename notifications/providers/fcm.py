"""App push through Firebase Cloud Messaging (HTTP v1), to Android, iOS and web alike.

The access token comes from a service-account key (TIERFLOW_FCM_CREDENTIALS: the key's
JSON, or the path of its file) through google-auth, from the key's own token_uri, and is
kept in memory until it expires. A token FCM calls unregistered (the app was removed)
deactivates the device. Direct APNs is not implemented: it needs an HTTP/2 client, which
the stack does not have, and FCM reaches iOS devices through APNs itself.
"""

import json
import logging
import threading
from pathlib import Path

import requests
from django.conf import settings
from google.auth import exceptions as google_exceptions
from google.auth.transport.requests import Request as GoogleRequest
from google.oauth2 import service_account

from ..services.devices import device_deactivate
from . import OutgoingMessage, ProviderError
from .common import TIMEOUT, call, failure, json_or_empty, subject_and_text, transient_status

logger = logging.getLogger(__name__)

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
# FCM's errorCode for a token whose app is gone.
GONE = "UNREGISTERED"
TRANSIENT_STATUSES = {"UNAVAILABLE", "INTERNAL", "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"}

_credentials: dict[str, service_account.Credentials] = {}
_lock = threading.Lock()


class _TokenRequest(GoogleRequest):
    """google-auth's transport, with our timeouts: its own default waits two minutes."""

    def __call__(self, url, method="GET", body=None, headers=None, **kwargs):
        kwargs["timeout"] = TIMEOUT
        return super().__call__(url, method=method, body=body, headers=headers, **kwargs)


def service_account_info() -> dict:
    source = settings.TIERFLOW_FCM_CREDENTIALS.strip()
    text = source if source.startswith("{") else Path(source).read_text(encoding="utf-8")
    return json.loads(text)


def project_id() -> str:
    return settings.TIERFLOW_FCM_PROJECT_ID or service_account_info().get("project_id", "")


def access_token() -> str:
    """A valid bearer token, fetched again only once the cached one expires (google-auth
    counts it expired a few minutes early)."""
    source = settings.TIERFLOW_FCM_CREDENTIALS
    with _lock:
        credentials = _credentials.get(source)
        if credentials is None:
            try:
                credentials = service_account.Credentials.from_service_account_info(
                    service_account_info(), scopes=[SCOPE]
                )
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ProviderError(
                    "fcm: TIERFLOW_FCM_CREDENTIALS is not a readable service-account key "
                    f"({type(exc).__name__}).",
                    permanent=True,
                ) from exc
            _credentials[source] = credentials
        if not credentials.valid:
            try:
                with requests.Session() as session:
                    credentials.refresh(_TokenRequest(session))
            except google_exceptions.TransportError as exc:
                raise ProviderError(
                    "fcm: could not reach the token endpoint.", permanent=False
                ) from exc
            except google_exceptions.RefreshError as exc:
                # invalid_grant (a revoked or wrong key) is permanent; a 5xx is not.
                raise failure(
                    "fcm", f"no access token: {exc}", permanent=not exc.retryable
                ) from exc
        return credentials.token


def forget_token() -> None:
    """Drop cached tokens: FCM refused one (revoked), or a test wants a clean start."""
    with _lock:
        _credentials.clear()


def error_code(error: dict) -> str:
    """FCM's own code (UNREGISTERED, SENDER_ID_MISMATCH…) when it gives one."""
    for detail in error.get("details", []):
        if str(detail.get("@type", "")).endswith("FcmError") and detail.get("errorCode"):
            return str(detail["errorCode"])
    return str(error.get("status", ""))


def bad_token(error: dict, code: str) -> bool:
    """INVALID_ARGUMENT may be about the payload; only one that names the token means the
    token itself is invalid."""
    if code == GONE:
        return True
    if code != "INVALID_ARGUMENT":
        return False
    violations = [
        violation
        for detail in error.get("details", [])
        for violation in detail.get("fieldViolations", [])
    ]
    return any(violation.get("field") == "message.token" for violation in violations) or (
        "registration token" in str(error.get("message", "")).lower()
    )


class FcmPushProvider:
    name = "fcm"

    def send(self, message: OutgoingMessage) -> str:
        if not settings.TIERFLOW_FCM_CREDENTIALS:
            raise ProviderError("fcm: TIERFLOW_FCM_CREDENTIALS is not set.", permanent=True)
        token = access_token()
        title, text = subject_and_text(message.body, settings.TIERFLOW_PUSH_TITLE)
        notification = {"title": title, "body": text} if title else {"body": text}
        payload = {
            "message": {
                "token": message.recipient,
                "notification": notification,
                "data": {"notification_id": str(message.notification_id)},
            }
        }
        base = settings.TIERFLOW_FCM_API_BASE.rstrip("/")
        response = call(
            self.name,
            "POST",
            f"{base}/v1/projects/{project_id()}/messages:send",
            json=payload,
            headers={"Authorization": f"Bearer {token}"},
        )
        answer = json_or_empty(response)
        if response.status_code == 200 and answer.get("name"):
            logger.info(
                "fcm push #%s to %s accepted as %s",
                message.notification_id,
                message.masked_recipient(),
                answer["name"],
            )
            return str(answer["name"])
        error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
        code = error_code(error)
        detail = f"{code or 'HTTP ' + str(response.status_code)}: {error.get('message', '')}"
        if bad_token(error, code):
            device_deactivate(token=message.recipient)
            raise failure(self.name, f"{detail} (device deactivated)", permanent=True)
        if response.status_code == 401 and code in {"UNAUTHENTICATED", ""}:
            # Our access token was refused (revoked early): fetch a new one next time. (A
            # 401 THIRD_PARTY_AUTH_ERROR is about the APNs certificate: permanent.)
            forget_token()
            raise failure(self.name, detail, permanent=False)
        permanent = not (code in TRANSIENT_STATUSES or transient_status(response.status_code))
        raise failure(self.name, detail, permanent=permanent)
