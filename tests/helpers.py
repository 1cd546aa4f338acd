"""Plain helpers shared by test modules. Fixtures live in conftest.py files and factories
in tests/factories.py; a test module imports helpers from here, never from a conftest.py
or from another test module."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import redis
import time_machine
from django.conf import settings
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_api_key.models import APIKey

from config.celery import app as celery_app
from members.models import Member, Tier, TierChange
from notifications.models import Notification
from notifications.services.delivery import notification_deliver
from orders.models import Order
from orders.services import order_record
from rules.services.daily import clock_triggers_run
from tests.factories import MemberFactory

# --- business time --------------------------------------------------------------------

SHANGHAI = ZoneInfo("Asia/Shanghai")  # TIME_ZONE: business dates are Shanghai's


def local(year, month, day, hour=12, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


# --- the seed programme ---------------------------------------------------------------

SEED_PROGRAMME = settings.BASE_DIR / "rules" / "programmes" / "seed.yaml"


# --- the broker -----------------------------------------------------------------------


def use_broker(url: str) -> None:
    # Celery reads CELERY_BROKER_URL from the environment before its own configuration,
    # so both must change; and it caches connection pools for the URL it first used.
    os.environ["CELERY_BROKER_URL"] = celery_app.conf.broker_url = url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextmanager
def _publishing_to(url: str) -> Iterator[None]:
    """Tasks published (not run in-process) to the broker at `url` meanwhile."""
    saved = celery_app.conf.broker_url, celery_app.conf.task_always_eager
    use_broker(url)
    celery_app.conf.task_always_eager = False
    try:
        yield
    finally:
        use_broker(saved[0])
        celery_app.conf.task_always_eager = saved[1]


@contextmanager
def broker_down() -> Iterator[None]:
    """Publishing goes to a port where nothing listens, as when Redis is down."""
    with _publishing_to("redis://127.0.0.1:9/0"):
        yield


@contextmanager
def broker_hung() -> Iterator[None]:
    """Publishing goes to a Redis that accepts connections and never answers (stopped with
    SIGSTOP), the worst state a broker can be in for a request waiting on it."""
    port = _free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port, socket_connect_timeout=1)
        for _attempt in range(100):  # until it listens
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        server.send_signal(signal.SIGSTOP)
        with _publishing_to(f"redis://127.0.0.1:{port}/0"):
            yield
    finally:
        server.send_signal(signal.SIGCONT)
        server.kill()
        server.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- what the ERP posts ---------------------------------------------------------------


def order_payload(**fields) -> dict:
    """The order API's body for order SO-1 of member M-1, with `fields` changed."""
    payload = {
        "external_id": "SO-1",
        "member": {"external_id": "M-1", "name": "王先生", "phone": "13800138000"},
        "amount": "100.00",
        "currency": "CNY",
        "placed_at": (timezone.now() - timedelta(hours=1)).isoformat(),
    }
    payload.update(fields)
    return payload


def erp_client() -> APIClient:
    """An API client with a key of its own, for tests outside a test transaction."""
    _, key = APIKey.objects.create_key(name="erp")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def erp_order(external_id: str, amount: str, member: str | dict = "M-E2E") -> dict:
    return {
        "external_id": external_id,
        "member": member,
        "amount": amount,
        "currency": "CNY",
        "placed_at": (timezone.now() - timedelta(minutes=5)).isoformat(),
    }


# --- workers and threads --------------------------------------------------------------


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


def start_worker(queues=settings.TIERFLOW_QUEUES) -> subprocess.Popen:
    """A worker process, as production runs them, on these queues."""
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": celery_app.conf.broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "TIERFLOW_WEBHOOK_SECRET": settings.TIERFLOW_WEBHOOK_SECRET,
        "TIERFLOW_QUIET_HOURS": "",
        "SECRET_KEY": settings.SECRET_KEY,
    }
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo"]
    command += ["--without-mingle", "--without-gossip", "--loglevel=WARNING"]
    command += ["--queues", ",".join(queues), "--hostname", f"{'-'.join(queues)}@%h"]
    return subprocess.Popen(command, env=env, cwd=settings.BASE_DIR)


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


# --- a provider's HTTP API, faked on 127.0.0.1 ----------------------------------------

PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


@dataclass
class Received:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # names in lower case
    body: bytes

    def form(self) -> dict[str, str]:
        """A form body, one value per field (parse_qs would give lists)."""
        parsed = parse_qs(self.body.decode(), keep_blank_values=True, strict_parsing=True)
        assert all(len(values) == 1 for values in parsed.values()), parsed
        return {name: values[0] for name, values in parsed.items()}

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: dict | list | str = ""
    hold: bool = False  # keep the request open until the test ends: a read timeout

    def encoded(self) -> bytes:
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body, ensure_ascii=False).encode()


@dataclass
class FakeApi:
    """A stand-in for a provider's HTTP API: it records every request and answers
    scripted replies."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    replies: dict[str, list[Reply]] = field(default_factory=dict)
    released: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reply(self, path: str, *replies: Reply) -> None:
        """Answer requests to `path` with `replies` in turn; the last one repeats."""
        with self.lock:
            self.replies[path] = list(replies)

    def next_reply(self, path: str) -> Reply:
        with self.lock:
            queue = self.replies.get(urlsplit(path).path)
            if not queue:
                return Reply(404, {"error": f"nothing scripted for {path}"})
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def to(self, path: str) -> list[Received]:
        return [request for request in self.received if urlsplit(request.path).path == path]


def serve_fake_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApi]:
    """The body of each provider test module's `fake_api` fixture:
    `yield from serve_fake_api(...)`. Nothing may go through a proxy, let alone the
    internet."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    state = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            with state.lock:
                state.received.append(Received(self.command, self.path, headers, body))
            reply = state.next_reply(self.path)
            if reply.hold:
                state.released.wait(timeout=10)
            payload = reply.encoded()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_POST = do_GET = _handle

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}"
    yield state
    state.released.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def deliver(notification: Notification) -> Notification:
    notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    return notification


# --- the tier lifecycle ---------------------------------------------------------------

# A year of Gold from 10:00 on 1 July 2024 lapses at the first midnight 365 days later.
GOLD_SINCE = local(2024, 7, 1, 10)
LAPSES_AT = local(2025, 7, 2, 0, 0)
LAPSE_DAY = date(2025, 7, 2)


def tier(code: str) -> Tier:
    return Tier.objects.get(code=code)


def member_on(tier_obj: Tier, since: datetime = GOLD_SINCE, **fields) -> Member:
    """A member who moved to `tier_obj` at `since`, for a period that lapses as it says."""
    return MemberFactory(
        tier=tier_obj,
        tier_since=since,
        tier_period_start=since,
        tier_expires_at=tier_obj.expiry_from(since),
        **fields,
    )


def spend(member: Member, amount: str, placed_at: datetime) -> Order:
    order, _ = order_record(
        external_id=f"SO-{Order.objects.count() + 1}",
        member=member.external_id,
        amount=Decimal(amount),
        currency="CNY",
        placed_at=placed_at,
    )
    return order


def run_day(day: date, capture) -> dict:
    """The daily job for `day`, run early that morning; the evaluations and deliveries it
    publishes after commit run too, as they would outside a test transaction."""
    with (
        time_machine.travel(local(day.year, day.month, day.day, 1), tick=False),
        capture(execute=True),
    ):
        return clock_triggers_run(day)


def changes(member: Member) -> list[tuple[str, str, datetime]]:
    """The member's tier history, oldest first: (from, to, at)."""
    return list(
        TierChange.objects.filter(member=member)
        .order_by("created_at", "pk")
        .values_list("from_tier__code", "to_tier__code", "created_at")
    )


def messages(member: Member, template: str) -> list[Notification]:
    return list(Notification.objects.filter(member=member, template__code=template))


# A programme whose orders leave something in every report: members move up to Silver at
# 1000 (a coupon and 500 points each) and are thanked by SMS for every order.
REPORTS_PROGRAMME = """
earning: {points_per_unit: 1, growth_per_unit: 0, points_expiry: end_of_following_year}
tiers:
  - {code: regular, name: Regular, rank: 0}
  - {code: silver, name: Silver, rank: 1}
coupon_templates:
  - {code: gift, name: Gift, min_spend: 300, amount_off: 50, valid_days: 15}
notification_templates:
  - {code: thanks, channel: sms, body: "Thank you"}
rules:
  - code: silver-at-1000
    name: Silver at 1000
    trigger: order_paid
    conditions:
      all:
        - {fact: lifetime_spend, op: gte, value: 1000}
        - {fact: tier_rank, op: lt, value: 1}
    actions:
      - {type: set_tier, tier: silver}
      - {type: issue_coupon, template: gift}
      - {type: award_points, points: 500}
  - code: thanks
    name: Thanks
    trigger: order_paid
    fires: every_time
    actions:
      - {type: notify, template: thanks}
"""


# Three tiers, Silver by a rule at 1000 of lifetime spend for 30 days (keep: 1000 more):
# the tier reports' and the roll-up's tests.
TIER_REPORTS_PROGRAMME = """
tiers:
  - {code: regular, name: Regular, rank: 0}
  - {code: silver, name: Silver, rank: 1, validity: days, validity_days: 30, keep_threshold: 1000}
  - {code: gold, name: Gold, rank: 2}
rules:
  - code: silver-at-1000
    name: Silver at 1000
    trigger: order_paid
    conditions:
      all:
        - {fact: lifetime_spend, op: gte, value: 1000}
        - {fact: tier_rank, op: lt, value: 1}
    actions:
      - {type: set_tier, tier: silver}
"""
