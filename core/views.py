from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found, server_error

from config.celery import app as celery_app
from members.journal import members_waiting


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


def _api_error(status: int, code: str, detail: str) -> JsonResponse:
    body = {"type": "client_error" if status < 500 else "server_error"}
    body["errors"] = [{"code": code, "detail": detail, "attr": None}]
    return JsonResponse(body, status=status)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Unknown URLs under /api/ answer in the API's error shape, not an HTML page."""
    if request.path.startswith("/api/"):
        return _api_error(404, "not_found", "Not found.")
    return page_not_found(request, exception)


def error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return _api_error(500, "error", "Server Error (500)")
    return server_error(request)
