import logging

from celery import Task
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)


def enqueue(task: Task, *args: int | str | None) -> bool:
    """Publish a task with ids only. If the broker is unreachable (after the bounded publish
    retries in settings), log it and return False: the work is still recorded in the
    database, and a sweeper publishes it again later."""
    try:
        task.delay(*args)
    except OperationalError as exc:
        logger.warning("could not publish %s%r, a sweeper will retry: %s", task.name, args, exc)
        return False
    return True
