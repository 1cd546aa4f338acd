"""The health check: it reads the engine's journal and the broker, which only the project
layer (above every app) may know together."""

from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from members.journal import members_waiting

from .celery import app as celery_app


def health(request: HttpRequest) -> JsonResponse:
    """For load balancers and monitoring: 200 when the database answers, else 503. The
    broker is reported but does not fail the check: orders are still recorded without it.
    `pending_evaluations` counts the members whose events (orders, refunds, engagements,
    joining) have waited longer than the sweeper's grace period: a number that keeps
    growing means evaluation is failing or no worker is running."""
    checks = {"database": "ok", "broker": "in-process"}
    try:
        grace = timedelta(seconds=settings.TIERFLOW_PENDING_GRACE_SECONDS)
        checks["pending_evaluations"] = members_waiting(older_than=grace)
    except Exception as exc:  # any failure means "not healthy", whatever its type
        checks["database"] = f"error: {type(exc).__name__}"
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        try:
            with celery_app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
            checks["broker"] = "ok"
        except Exception as exc:  # as above
            checks["broker"] = f"error: {type(exc).__name__}"
    return JsonResponse(checks, status=200 if checks["database"] == "ok" else 503)
