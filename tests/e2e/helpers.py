import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.db import connection
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


def in_parallel(count: int, work) -> list:
    """Run work(i) in `count` threads released at the same moment, each on its own
    database connection."""
    start = threading.Barrier(count)

    def run(i):
        try:
            start.wait()
            return work(i)
        finally:
            connection.close()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))
