from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found, server_error


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
