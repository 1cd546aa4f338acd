import logging

from celery import Task, current_app
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)


def enqueue(task: Task, *args: int | str | None, countdown: float | None = None) -> bool:
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


def tasks_run_in_process() -> bool:
    """Whether tasks run in this process as they are published (the embedded default)."""
    return bool(current_app.conf.task_always_eager)
