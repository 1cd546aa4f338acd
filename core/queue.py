import logging
from functools import cache

import redis
from celery import Task, current_app
from django.conf import settings
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)

# A coalesced task's marker outlives a lost publish by at most this many seconds.
COALESCE_SECONDS = 5


def enqueue(
    task: Task, *args: int | str | list[int] | None, countdown: float | None = None
) -> bool:
    """Publish a task with ids only (`countdown`: run it no sooner than that many seconds
    from now). If the broker is unreachable (after the bounded publish retries in
    settings), log it and return False: the work is still recorded in the database, and a
    sweeper publishes it again later."""
    try:
        task.apply_async(args, countdown=countdown)
    except OperationalError as exc:
        logger.warning("could not publish %s%r, a sweeper will retry: %s", task.name, args, exc)
        return False
    return True


def enqueue_coalesced(task: Task) -> bool:
    """Publish `task` (which takes no arguments and finds its own work) unless one is
    already published and not yet started: many requests asking for the same work share
    one task. A marker in the broker's Redis says a task is on its way; the task clears it
    with `coalesced_started` when it starts, so work asked for after that gets a task of
    its own. Without Redis (tasks in-process), every call publishes."""
    client = _redis(current_app.conf.broker_url)
    if client is not None and not tasks_run_in_process():
        try:
            if not client.set(_marker(task), 1, nx=True, ex=COALESCE_SECONDS):
                return True
        except redis.RedisError:
            pass  # publish anyway: the publish itself will fail or succeed
    return enqueue(task)


def coalesced_started(task: Task) -> None:
    client = _redis(current_app.conf.broker_url)
    if client is not None:
        try:
            client.delete(_marker(task))
        except redis.RedisError:
            logger.warning("could not clear the marker of %s", task.name)


def _marker(task: Task) -> str:
    return f"tierflow:queued:{task.name}"


@cache
def _redis(url: str) -> redis.Redis | None:
    if not url.startswith(("redis://", "rediss://")):
        return None
    # The same bounds as publishing: a hung Redis must not hang a request.
    timeout = settings.BROKER_SOCKET_TIMEOUT
    return redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)


def tasks_run_in_process() -> bool:
    """Whether tasks run in this process as they are published (the embedded default)."""
    return bool(current_app.conf.task_always_eager)
