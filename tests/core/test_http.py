from wsgiref.util import setup_testing_defaults

import pytest
from django.test import Client
from rest_framework_api_key.models import APIKey

from config import wsgi
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def test_health_reports_the_database():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


def test_unknown_api_urls_answer_in_the_api_error_shape():
    response = Client().get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response.json() == {
        "type": "client_error",
        "errors": [{"code": "not_found", "detail": "Not found.", "attr": None}],
    }


def test_the_openapi_schema_describes_the_endpoints():
    response = Client().get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"/api/v1/orders/", "/api/v1/members/{external_id}/"} <= set(paths)
    assert "409" in paths["/api/v1/orders/"]["post"]["responses"]


def test_the_openapi_schema_says_how_to_authenticate():
    schema = Client().get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    assert schema["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    assert schema["paths"]["/api/v1/orders/"]["post"]["security"] == [{"ApiKey": []}]
    callback = schema["paths"]["/api/v1/notifications/callbacks/twilio/"]["post"]
    assert {"ApiKey": []} not in callback.get("security", [])  # providers sign instead


def _serve(path: str, **headers) -> tuple[str, dict, bytes]:
    """A request through the WSGI application gunicorn serves (not the test client)."""
    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "HTTP_HOST": "localhost"}
    environ.update({f"HTTP_{k.upper()}": v for k, v in headers.items()})
    setup_testing_defaults(environ)
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer.update(status=status, headers=dict(response_headers))

    body = b"".join(wsgi.application(environ, start_response))
    return answer["status"], answer["headers"], body


@pytest.mark.django_db(transaction=True)
def test_the_api_is_served_without_the_browsers_middleware():
    # given
    MemberFactory(external_id="M-1")
    _, key = APIKey.objects.create_key(name="erp")

    # when
    status, headers, _ = _serve("/api/v1/members/M-1/", authorization=f"Bearer {key}")
    admin_status, admin_headers, _ = _serve("/admin/login/")

    # then: no session, CSRF or clickjacking headers on the API; the admin has them all
    assert status.startswith("200")
    assert "X-Frame-Options" not in headers and "Set-Cookie" not in headers
    assert "Cookie" not in headers.get("Vary", "")
    assert admin_status.startswith("200")
    assert admin_headers["X-Frame-Options"] == "DENY"
    assert "csrftoken" in admin_headers.get("Set-Cookie", "")
