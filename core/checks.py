"""Start-up checks of the deployment: what `manage.py check` (and migrate, runserver)
reports before the first request rather than after the first lost order."""

from django.conf import settings
from django.core.checks import Warning, register
from django.db import connection

from .queue import tasks_run_in_process


@register()
def production_services(app_configs, **kwargs) -> list[Warning]:
    """With DEBUG off this is taken for production, which the embedded default is not."""
    if settings.DEBUG:
        return []
    found = []
    if connection.vendor == "sqlite":
        found.append(
            Warning(
                "DEBUG is off but the database is SQLite, which serialises every write.",
                hint="Set DATABASE_URL to a PostgreSQL database (README, Production).",
                id="core.W001",
            )
        )
    if tasks_run_in_process():
        found.append(
            Warning(
                "DEBUG is off but tasks run in-process: every evaluation and message is "
                "done inside the request that caused it, and nothing is retried.",
                hint="Set CELERY_BROKER_URL to Redis and start a worker per queue "
                "(README, Production).",
                id="core.W002",
            )
        )
    return found
