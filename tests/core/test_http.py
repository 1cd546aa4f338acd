import pytest
from django.test import Client

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
