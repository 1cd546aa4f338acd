"""A worker killed in the middle of sending loses nothing: a real Celery worker process
(on Redis and PostgreSQL) is killed while the provider holds its request open; the
message, left "sending", is put back by the sweeper and delivered by the next worker.
The provider may so see it twice (at least once, never lost): the design's trade-off."""

import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis

from config.celery import app as celery_app
from notifications.models import Notification
from notifications.services.delivery import deliver_enqueue, notifications_requeue_stuck
from notifications.services.outbox import notification_queue
from tests.factories import MemberFactory, NotificationTemplateFactory
from tests.helpers import start_worker, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


class Endpoint(ThreadingHTTPServer):
    """A webhook receiver on loopback that holds the first request until released."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[bytes] = []
        self.first_arrived, self.release = threading.Event(), threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append(body)
        if len(self.server.requests) == 1:
            self.server.first_arrived.set()
            self.server.release.wait(timeout=60)  # the worker dies meanwhile
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def endpoint():
    server = Endpoint()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_send_loses_nothing(endpoint, settings):
    # given: a message for a webhook that will hang, and a real worker
    redis.Redis.from_url(celery_app.conf.broker_url).flushdb()
    settings.TIERFLOW_WEBHOOK_SECRET = "s3cret"
    celery_app.conf.task_always_eager = False
    template = NotificationTemplateFactory(channel="webhook", body='{"event": "tier"}')
    member = MemberFactory()
    worker = start_worker()
    try:
        notification = notification_queue(
            member=member, template=template, context={}, channel="webhook"
        )
        Notification.objects.filter(pk=notification.pk).update(url=endpoint.url)
        deliver_enqueue(notification_id=notification.pk)

        # when: the worker is killed while the provider holds the request
        assert endpoint.first_arrived.wait(timeout=60), "the worker never sent the message"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        assert Notification.objects.get(pk=notification.pk).status == "sending"

        # ...and the sweeper, once "sending" has lasted longer than any task may run
        settings.CELERY_TASK_TIME_LIMIT = 0
        worker = start_worker()
        assert notifications_requeue_stuck() == 1
        wait_until(lambda: Notification.objects.get(pk=notification.pk).status == "sent")
    finally:
        worker.kill()
        worker.wait(timeout=30)
        celery_app.conf.task_always_eager = True

    # then: delivered; the provider saw it twice, the second time answered
    notification.refresh_from_db()
    assert notification.status == "sent"
    assert notification.attempts == 2
    assert len(endpoint.requests) == 2
    assert endpoint.requests[0] == endpoint.requests[1]
