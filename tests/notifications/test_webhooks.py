"""Webhook delivery against a real HTTP server on 127.0.0.1: the exact signed request,
and what transient and permanent failures do to the outbox row."""

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from notifications.models import Notification
from notifications.services import delivery
from notifications.services.delivery import backoff_seconds, notification_deliver
from notifications.services.outbox import webhook_queue
from orders.services import order_record
from rules.services.evaluation import member_evaluate
from tests.factories import MemberFactory, RuleFactory, TierFactory, action

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 3, 10, 12, 0, tzinfo=SHANGHAI)
SECRET = "whsec-test-only"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Endpoint:
    """What the local server answers, and what it was sent."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)  # answered in turn; then 200
    hold: bool = False  # keep the request open until released (a timeout)
    location: str = ""  # sent with 3xx answers
    released: threading.Event = field(default_factory=threading.Event)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_status(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if self.statuses else 200


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    state = Endpoint()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with state.lock:
                state.received.append(
                    Received(self.command, self.path, dict(self.headers.items()), body)
                )
            if state.hold:
                state.released.wait(timeout=10)
            status = state.next_status()
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", state.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

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


@pytest.fixture(autouse=True)
def webhook_settings(settings, monkeypatch):
    settings.TIERFLOW_WEBHOOK_SECRET = SECRET
    settings.TIERFLOW_WEBHOOK_URL = ""
    settings.TIERFLOW_NOTIFICATION_PROVIDERS = {
        **settings.TIERFLOW_NOTIFICATION_PROVIDERS,
        "webhook": "http",
    }
    settings.TIERFLOW_DELIVERY_MAX_ATTEMPTS = 6
    settings.TIERFLOW_DELIVERY_BACKOFF_SECONDS = 30.0
    settings.TIERFLOW_DELIVERY_BACKOFF_MAX_SECONDS = 1800.0
    # Nothing may go through a proxy, let alone the internet.
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)


def expected_signature(timestamp: str, body: bytes, secret: str = SECRET) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def queued(url: str, event: dict | None = None) -> Notification:
    return webhook_queue(
        member=MemberFactory(), url=url, event=event or {"type": "test", "名字": "王先生"}
    )


def deliver(notification: Notification) -> Notification:
    notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    return notification


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- the request ----------------------------------------------------------------------


def test_a_rules_webhook_is_posted_signed_after_commit(
    endpoint, django_capture_on_commit_callbacks
):
    # given: a Gold upgrade that calls the ERP
    rule = RuleFactory(code="gold-hook", name="金卡通知")
    action(rule, "set_tier", tier=TierFactory(code="gold", rank=2))
    action(rule, "webhook", webhook_url=f"{endpoint.url}/hooks/tierflow?token=abc")
    member = MemberFactory(external_id="M-7")

    # when
    with time_machine.travel(NOW, tick=False):
        order, _ = order_record(
            external_id="SO-9",
            member="M-7",
            amount=Decimal("10000"),
            currency="CNY",
            placed_at=NOW - timedelta(minutes=1),
        )
        with django_capture_on_commit_callbacks(execute=True):
            member_evaluate(member_id=member.pk, trigger="order_paid", subject_id=order.pk)

    # then: exactly one request, as signed
    notification = Notification.objects.get(member=member)
    [request] = endpoint.received
    timestamp = str(int(NOW.timestamp()))
    assert (request.method, request.path) == ("POST", "/hooks/tierflow?token=abc")
    assert request.body == notification.body.encode("utf-8")
    assert json.loads(request.body) == {
        "type": "rule.fired",
        "rule": {"code": "gold-hook", "name": "金卡通知", "version": rule.version},
        "member": "M-7",
        "tier": "gold",
        "trigger": "order_paid",
        "order": "SO-9",
        "coupon": None,
        "points": 0,
        "fired_at": "2025-03-10T12:00:00+08:00",
    }
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Tierflow-Delivery"] == str(notification.pk)
    assert request.headers["X-Tierflow-Timestamp"] == timestamp
    assert request.headers["X-Tierflow-Signature"] == expected_signature(timestamp, request.body)
    assert (notification.status, notification.attempts) == ("sent", 1)
    assert (notification.provider, notification.provider_message_id) == ("http", "http-200")
    assert notification.sent_at == NOW


def test_the_signature_covers_the_exact_bytes_sent(endpoint):
    # given
    notification = queued(endpoint.url, {"b": 1, "a": "积分"})

    # when
    deliver(notification)

    # then: a receiver with another secret, or a changed body, would reject it
    [request] = endpoint.received
    timestamp = request.headers["X-Tierflow-Timestamp"]
    signature = request.headers["X-Tierflow-Signature"]
    assert request.body == '{"a": "积分", "b": 1}'.encode()
    assert signature == expected_signature(timestamp, request.body)
    assert signature != expected_signature(timestamp, request.body, secret="other")
    assert signature != expected_signature(timestamp, request.body.replace(b"1", b"2"))


def test_a_sent_webhook_is_not_posted_again(endpoint):
    notification = queued(endpoint.url)
    deliver(notification)
    again = notification_deliver(notification_id=notification.pk)
    assert again.status == "sent"
    assert len(endpoint.received) == 1


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_any_2xx_is_a_delivery(endpoint, status):
    endpoint.statuses = [status]
    notification = deliver(queued(endpoint.url))
    assert (notification.status, notification.provider_message_id) == ("sent", f"http-{status}")


def test_the_default_url_is_used_when_the_event_names_none(endpoint, settings):
    settings.TIERFLOW_WEBHOOK_URL = f"{endpoint.url}/default"
    notification = deliver(queued(""))
    assert notification.status == "sent"
    assert [r.path for r in endpoint.received] == ["/default"]


def test_without_any_url_the_webhook_is_suppressed(endpoint):
    notification = deliver(queued(""))
    assert notification.status == "suppressed"
    assert "webhook URL" in notification.status_reason
    assert endpoint.received == []


def test_without_a_secret_nothing_is_sent_and_the_failure_is_permanent(endpoint, settings):
    settings.TIERFLOW_WEBHOOK_SECRET = ""
    notification = deliver(queued(endpoint.url))
    assert (notification.status, notification.attempts) == ("failed", 1)
    assert "TIERFLOW_WEBHOOK_SECRET" in notification.status_reason
    assert endpoint.received == []


# --- transient failures are retried with backoff -------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 425, 429])
def test_a_transient_status_is_retried_later_with_the_same_delivery_id(endpoint, status):
    # given: the endpoint fails once, then accepts
    endpoint.statuses = [status]
    notification = queued(endpoint.url)

    with time_machine.travel(NOW, tick=False) as traveller:
        # when
        deliver(notification)
        after_failure = (notification.status, notification.attempts, notification.next_attempt_at)
        too_early = notification_deliver(notification_id=notification.pk).status

        traveller.move_to(notification.next_attempt_at)
        deliver(notification)

    # then: the retry waits about 30 s (15 to 30 with jitter), then goes through
    status_now, attempts, next_attempt_at = after_failure
    assert (status_now, attempts) == ("queued", 1)
    assert NOW + timedelta(seconds=15) <= next_attempt_at <= NOW + timedelta(seconds=30)
    assert too_early == "queued"
    assert (notification.status, notification.attempts) == ("sent", 2)
    assert len(endpoint.received) == 2
    first, second = endpoint.received
    assert first.headers["X-Tierflow-Delivery"] == second.headers["X-Tierflow-Delivery"]
    assert first.body == second.body
    assert second.headers["X-Tierflow-Signature"] == expected_signature(
        second.headers["X-Tierflow-Timestamp"], second.body
    )


def test_a_transient_failure_records_why(endpoint):
    endpoint.statuses = [503]
    notification = deliver(queued(endpoint.url))
    assert notification.status_reason == "attempt 1 failed: The endpoint answered HTTP 503."
    assert notification.provider == "http"


def test_retries_back_off_exponentially_and_stop_at_the_maximum(endpoint, settings):
    # given: the endpoint is down for good
    settings.TIERFLOW_DELIVERY_MAX_ATTEMPTS = 4
    endpoint.statuses = [503] * 10
    notification = queued(endpoint.url)
    waits = []

    # when
    with time_machine.travel(NOW, tick=False) as traveller:
        for _ in range(4):
            before = timezone.now()
            deliver(notification)
            if notification.next_attempt_at:
                waits.append((notification.next_attempt_at - before).total_seconds())
                traveller.move_to(notification.next_attempt_at)

    # then: 15-30 s, 30-60 s, 60-120 s, then failed after the 4th attempt
    assert len(waits) == 3
    for attempt, wait in enumerate(waits, start=1):
        ceiling = 30 * 2 ** (attempt - 1)
        assert ceiling / 2 <= wait <= ceiling
    assert (notification.status, notification.attempts) == ("failed", 4)
    assert len(endpoint.received) == 4
    assert len({r.headers["X-Tierflow-Delivery"] for r in endpoint.received}) == 1


def test_a_connection_error_is_transient():
    # given: nothing listens on the port
    notification = queued(f"http://127.0.0.1:{free_port()}/hook")

    # when
    deliver(notification)

    # then
    assert (notification.status, notification.attempts) == ("queued", 1)
    assert "Could not reach the endpoint" in notification.status_reason
    assert notification.next_attempt_at is not None


def test_a_timeout_is_transient(endpoint, monkeypatch):
    # given: the endpoint reads the request but does not answer in time
    monkeypatch.setattr("notifications.providers.common.TIMEOUT", (2, 0.3))
    endpoint.hold = True
    notification = queued(endpoint.url)

    # when
    deliver(notification)

    # then
    assert (notification.status, notification.attempts) == ("queued", 1)
    assert "did not answer in time" in notification.status_reason
    assert len(endpoint.received) == 1


# --- permanent failures fail at once ---------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 410, 413, 422])
def test_a_permanent_status_fails_at_once(endpoint, status):
    # given
    endpoint.statuses = [status]
    notification = queued(endpoint.url)

    # when
    deliver(notification)
    again = notification_deliver(notification_id=notification.pk).status

    # then
    assert (notification.status, notification.attempts) == ("failed", 1)
    assert notification.status_reason == f"The endpoint answered HTTP {status}."
    assert notification.next_attempt_at is None
    assert again == "failed"
    assert len(endpoint.received) == 1


@pytest.mark.parametrize("status", [301, 302, 303])
def test_a_redirect_is_not_taken_for_a_delivery(endpoint, status):
    # given: the endpoint moved; following the redirect would re-send the event as a GET
    # without its body, which the receiver cannot take for the event
    endpoint.statuses = [status]
    endpoint.location = "/moved"
    notification = queued(endpoint.url)

    # when
    deliver(notification)

    # then
    assert [(r.method, r.body) for r in endpoint.received] == [("POST", notification.body.encode())]
    assert notification.status != "sent"


# --- the backoff ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [(1, 15, 30), (2, 30, 60), (3, 60, 120), (6, 480, 960), (7, 900, 1800), (20, 900, 1800)],
)
def test_backoff_doubles_per_attempt_is_capped_and_jittered(monkeypatch, attempt, low, high):
    # the jitter spreads each wait between half and all of its ceiling
    samples = {backoff_seconds(attempt) for _ in range(50)}
    monkeypatch.setattr(delivery.random, "uniform", lambda a, b: a)
    shortest = backoff_seconds(attempt)
    monkeypatch.setattr(delivery.random, "uniform", lambda a, b: b)
    longest = backoff_seconds(attempt)

    assert (shortest, longest) == (low, high)
    assert all(low <= sample <= high for sample in samples)
    assert len(samples) > 1


def test_the_timeline_shows_a_rules_webhook(api, endpoint, django_capture_on_commit_callbacks):
    # given: a rule with a webhook action fired for the member
    rule = RuleFactory(code="hook")
    action(rule, "webhook", webhook_url=f"{endpoint.url}/hooks")
    MemberFactory(external_id="M-7")
    api.order(external_id="SO-9", member="M-7")

    # when
    response = api.get("/api/v1/members/M-7/timeline/")

    # then
    assert response.status_code == 200
    [entry] = [e for e in response.json()["results"] if e["type"] == "notification"]
    assert (entry["channel"], entry["template"], entry["url"]) == (
        "webhook",
        None,
        f"{endpoint.url}/hooks",
    )
    assert entry["rule"]["code"] == "hook"
