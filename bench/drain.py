"""Waiting for real workers to finish: evaluation is done when no member waits, delivery
when no message of the run is still queued. Run inside Django (common.django_setup)."""

import time
from collections.abc import Callable
from datetime import datetime

from .common import main_db_url, say, service_env
from .procs import Proc, redis_reset, stop_all, worker_start

POLL = 0.1  # seconds between looks at the database


def members_waiting() -> int:
    from members.journal import members_waiting

    return members_waiting()


def anyone_waiting() -> bool:
    from members.models import Member

    return Member.objects.filter(pending_since__isnull=False).exists()


def messages_queued(since: datetime) -> int:
    """Messages created since `since` not yet out of the queued state (sending, sent,
    failed or suppressed are all out of it)."""
    from notifications.models import Notification

    return Notification.objects.filter(
        status=Notification.Status.QUEUED, created_at__gte=since
    ).count()


def wait_for(done: Callable[[], bool], timeout: float, procs: list[Proc]) -> float | None:
    """The monotonic time at which `done()` first held, or None after `timeout` seconds or
    when a worker died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return time.monotonic()
        if any(not proc.alive() for proc in procs):
            return None
        time.sleep(POLL)
    return None


def kick() -> None:
    """Publish an evaluation, as recording an order does; the task's follow-ups bring the
    other worker processes in."""
    from rules.services.evaluation import evaluation_enqueue

    evaluation_enqueue()


def settle(reason: str, timeout: float = 1800) -> None:
    """Bring the database to the known state every measurement starts from: nobody
    waiting. Whatever waits (an earlier run's leftovers) is evaluated by real workers,
    untimed."""
    from django.utils import timezone

    waiting = members_waiting()
    if not waiting:
        return
    say(f"  Settling {waiting:,} waiting members ({reason}), untimed…")
    env = service_env(main_db_url())
    since = timezone.now()
    redis_reset()
    procs: list[Proc] = []
    try:
        procs.append(worker_start("messages", 1, env))
        procs.append(worker_start("evaluations", 2, env))
        kick()
        if wait_for(lambda: not anyone_waiting(), timeout, procs) is None:
            raise RuntimeError(f"{members_waiting():,} members still wait after settling")
        wait_for(lambda: not messages_queued(since), 120, procs)
    finally:
        stop_all(procs)
        redis_reset()
