"""A stand-in for a provider's HTTP API on 127.0.0.1, shared by the provider tests (this
module holds no tests): it records every request and answers scripted replies."""

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from notifications.models import Notification
from notifications.services.delivery import notification_deliver

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
    """The body of each test module's `fake_api` fixture: `yield from serve_fake_api(...)`.
    Nothing may go through a proxy, let alone the internet."""
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
