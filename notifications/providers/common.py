"""What the HTTP providers share: one way to call an API and to read its failures.

A timeout, a connection error, HTTP 5xx, 408 or 429 may succeed later (transient); any
other 4xx means the request itself is wrong (permanent). A provider's own error codes,
read from its answer, take precedence over the HTTP status.
"""

from dataclasses import dataclass
from typing import Any

import requests

from core.pii import redact

from . import ProviderError

RETRYABLE_STATUSES = {408, 425, 429}
TIMEOUT = (3.05, 10)  # connect, read (seconds)
SUBJECT_PREFIX = "Subject:"


@dataclass(frozen=True)
class NoAnswer:
    """How a request that got no answer is worded in the outbox ({provider}, {error})."""

    invalid_url: str
    timeout: str
    unreachable: str


API_NO_ANSWER = NoAnswer(
    invalid_url="{provider}: the API URL is not valid ({error}).",
    timeout="{provider}: the API did not answer in time.",
    unreachable="{provider}: could not reach the API ({error}).",
)


def call(
    provider: str, method: str, url: str, *, no_answer: NoAnswer = API_NO_ANSWER, **kwargs: Any
) -> requests.Response:
    """One request to a provider's API; failures to get an answer become ProviderErrors
    (an invalid URL is permanent, a timeout or connection error transient), worded as
    `no_answer` says. Redirects are not followed: an API that redirects is misconfigured."""
    try:
        return requests.request(method, url, timeout=TIMEOUT, allow_redirects=False, **kwargs)
    except (
        requests.exceptions.InvalidURL,
        requests.exceptions.MissingSchema,
        requests.exceptions.InvalidSchema,
    ) as exc:
        text = no_answer.invalid_url.format(provider=provider, error=type(exc).__name__)
        raise ProviderError(text, permanent=True) from exc
    except requests.Timeout as exc:
        # The provider may have accepted the message: the retry can send it twice.
        text = no_answer.timeout.format(provider=provider, error=type(exc).__name__)
        raise ProviderError(text, permanent=False) from exc
    except requests.RequestException as exc:
        text = no_answer.unreachable.format(provider=provider, error=type(exc).__name__)
        raise ProviderError(text, permanent=False) from exc


def transient_status(status: int) -> bool:
    return status >= 500 or status in RETRYABLE_STATUSES


def json_or_empty(response: requests.Response) -> dict:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def failure(provider: str, text: str, *, permanent: bool) -> ProviderError:
    """A provider's own words may quote the recipient (Twilio names the number it
    refused): masked before they reach the outbox or a log."""
    return ProviderError(f"{provider}: {redact(text)}"[:300], permanent=permanent)


def subject_and_text(body: str, default: str) -> tuple[str, str]:
    """A message whose first line is "Subject: ..." carries its own subject (or push
    title); the rest is the text. Otherwise the subject is `default`."""
    first, newline, rest = body.partition("\n")
    if not first.startswith(SUBJECT_PREFIX):
        return default, body
    return first[len(SUBJECT_PREFIX) :].strip(), rest.lstrip("\r\n") if newline else ""
