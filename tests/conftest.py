"""Shared test set-up.

- Tests marked `postgres` or `redis` need those services. Locally, on the embedded
  default, they skip; on CI (CI=true) they fail instead, so CI can never pass without
  having run them.
- Tasks run in-process (eager) except under the `celery_worker` fixture, which starts a
  real worker on Redis. Each xdist process uses its own Redis database, so workers never
  take each other's tasks.
"""

import os
import shutil
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.utils import translation
from rest_framework.test import APIClient
from rest_framework_api_key.models import APIKey

from config.celery import app as celery_app
from rules.programme.load import programme_load
from rules.selectors import live
from tests.helpers import SEED_PROGRAMME, order_payload, use_broker

ON_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _isolated_broker_url(url: str) -> str:
    if not url.startswith("redis"):
        return url
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # "gw3"
    parts = urlsplit(url)
    # The configured database is left to whatever else uses it (a developer's worker);
    # each test process takes one of the databases after it.
    base = int(parts.path.lstrip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{base + 1 + int(worker[2:])}"))


use_broker(_isolated_broker_url(settings.CELERY_BROKER_URL))


def _unavailable(reason: str) -> None:
    if ON_CI:
        pytest.fail(f"{reason}; on CI a test never skips for a missing service", pytrace=False)
    pytest.skip(reason)


def _redis_reachable(url: str) -> bool:
    try:
        return redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError:
        return False


def pytest_runtest_setup(item: pytest.Item) -> None:
    postgres = "postgresql" in settings.DATABASES["default"]["ENGINE"]
    if item.get_closest_marker("postgres") and not postgres:
        _unavailable("needs PostgreSQL: set DATABASE_URL=postgres://...")
    if item.get_closest_marker("browser") and not (
        shutil.which("chromium") and shutil.which("chromedriver")
    ):
        _unavailable("needs chromium and chromedriver (Debian packages chromium, chromium-driver)")
    if item.get_closest_marker("redis"):
        url = celery_app.conf.broker_url
        if not url.startswith("redis"):
            _unavailable("needs Redis: set CELERY_BROKER_URL=redis://...")
        elif not _redis_reachable(url):
            _unavailable(f"cannot reach Redis at {url}")


@pytest.fixture(autouse=True)
def fresh_rule_cache() -> None:
    """Each test's rules are its own: SQLite reuses the ids a rolled-back test used."""
    live.clear()


@pytest.fixture(autouse=True)
def default_language() -> Iterator[None]:
    """A request in another language leaves it active in the thread: not for the next
    test."""
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def no_quiet_hours(settings) -> None:
    """Messages go out whatever the hour the suite runs at; the quiet-hours tests set
    TIERFLOW_QUIET_HOURS themselves."""
    settings.TIERFLOW_QUIET_HOURS = None


@pytest.fixture(autouse=True)
def tasks_in_process() -> Iterator[None]:
    """Unit tests run tasks eagerly, even where a broker is configured."""
    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = saved


@pytest.fixture
def celery_worker(transactional_db) -> Iterator[None]:
    """A real Celery worker in a thread, consuming every queue from Redis; tasks are
    published for real. Tests using it need committed data, hence the transactional
    database. (tests/e2e/test_queues.py runs a worker process per queue.)"""
    redis.Redis.from_url(celery_app.conf.broker_url).flushdb()  # no tasks from old runs
    celery_app.conf.task_always_eager = False
    with start_worker(
        celery_app,
        pool="solo",
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=30,
        queues=list(settings.TIERFLOW_QUEUES),
    ):
        yield


@pytest.fixture
def admin_client(db) -> Client:
    """Logged in as a superuser."""
    client = Client()
    client.force_login(User.objects.create_superuser("boss", "boss@example.com", "pw"))
    return client


@pytest.fixture
def seed(db) -> None:
    """The seed programme that ships with the project (rules/programmes/seed.yaml)."""
    programme_load(SEED_PROGRAMME.read_text(encoding="utf-8"))


class Api:
    """An API client with a valid key whose requests run their on-commit callbacks (the
    evaluation and delivery tasks), as they would outside a test transaction."""

    def __init__(self, client: APIClient, capture) -> None:
        self.client, self.capture = client, capture

    def post(self, path: str, data: dict):
        with self.capture(execute=True):
            return self.client.post(path, data, format="json")

    def get(self, path: str, params: dict | None = None):
        return self.client.get(path, params or {})

    def order(self, **fields):
        return self.post("/api/v1/orders/", order_payload(**fields))


@pytest.fixture
def api_key(db) -> str:
    _, key = APIKey.objects.create_key(name="tests")
    return key


@pytest.fixture
def api(api_key, django_capture_on_commit_callbacks) -> Api:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    return Api(client, django_capture_on_commit_callbacks)
