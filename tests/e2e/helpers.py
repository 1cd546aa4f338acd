import time
from collections.abc import Callable
from datetime import timedelta

from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_api_key.models import APIKey


def erp_client() -> APIClient:
    _, key = APIKey.objects.create_key(name="erp")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def order(external_id: str, amount: str, member: str | dict = "M-E2E") -> dict:
    return {
        "external_id": external_id,
        "member": member,
        "amount": amount,
        "currency": "CNY",
        "placed_at": (timezone.now() - timedelta(minutes=5)).isoformat(),
    }


def wait_until(condition: Callable[[], bool], timeout: float = 60) -> None:
    """Poll until the worker has done its part; fail (never hang) after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for the worker")
        time.sleep(0.05)
