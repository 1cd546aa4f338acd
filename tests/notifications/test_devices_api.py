"""Registering and deactivating the app installations that receive push messages."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from rest_framework.test import APIClient

from notifications.models import Device
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
TOKEN = "dXw8bKqGQx:APA91bFq-test-token"


@pytest.fixture
def api_client(api_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    return client


def register(api_client: APIClient, member: str = "M-1", **fields):
    payload = {"platform": "android", "token": TOKEN, **fields}
    return api_client.post(f"/api/v1/members/{member}/devices/", payload, format="json")


def test_a_new_device_is_registered(api_client):
    # given
    MemberFactory(external_id="M-1")

    # when
    with time_machine.travel(NOW, tick=False):
        response = register(api_client)

    # then
    assert response.status_code == 201
    assert response.json() == {
        "member": "M-1",
        "platform": "android",
        "token": TOKEN,
        "active": True,
        "registered_at": "2025-03-10T12:00:00+08:00",
        "last_seen_at": "2025-03-10T12:00:00+08:00",
    }
    device = Device.objects.get()
    assert (device.member.external_id, device.token, device.is_active) == ("M-1", TOKEN, True)


def test_registering_again_refreshes_and_reactivates_it(api_client):
    # given: registered, then deactivated (the member signed out)
    MemberFactory(external_id="M-1")
    with time_machine.travel(NOW, tick=False) as traveller:
        register(api_client)
        api_client.delete(f"/api/v1/devices/{TOKEN}/")

        # when
        traveller.move_to(NOW + timedelta(days=2))
        response = register(api_client, platform="ios")

    # then
    assert response.status_code == 200
    body = response.json()
    assert (body["platform"], body["active"]) == ("ios", True)
    assert body["registered_at"] == "2025-03-10T12:00:00+08:00"
    assert body["last_seen_at"] == "2025-03-12T12:00:00+08:00"
    assert Device.objects.count() == 1


def test_a_token_moves_to_the_member_who_registers_it_last(api_client):
    MemberFactory(external_id="M-1")
    MemberFactory(external_id="M-2")
    register(api_client, member="M-1")
    response = register(api_client, member="M-2")
    assert (response.status_code, response.json()["member"]) == (200, "M-2")
    assert Device.objects.get().member.external_id == "M-2"


@pytest.mark.parametrize(
    ("payload", "attr", "code"),
    [
        ({"platform": "symbian", "token": TOKEN}, "platform", "invalid_choice"),
        ({"platform": "android"}, "token", "required"),
        ({"platform": "android", "token": ""}, "token", "blank"),
        ({"platform": "android", "token": "x" * 501}, "token", "max_length"),
        ({"platform": "android", "token": TOKEN, "os": "14"}, "os", "unknown_field"),
    ],
)
def test_bad_input_is_a_field_error_and_registers_nothing(api_client, payload, attr, code):
    MemberFactory(external_id="M-1")
    response = api_client.post("/api/v1/members/M-1/devices/", payload, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "validation_error"
    assert {"attr": attr, "code": code} in [
        {"attr": error["attr"], "code": error["code"]} for error in body["errors"]
    ]
    assert not Device.objects.exists()


def test_an_unknown_member_is_a_404(api_client):
    response = register(api_client, member="M-404")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"
    assert not Device.objects.exists()


def test_deactivating_stops_push_to_the_device_and_is_idempotent(api_client):
    # given
    MemberFactory(external_id="M-1")
    register(api_client)

    # when
    first = api_client.delete(f"/api/v1/devices/{TOKEN}/")
    again = api_client.delete(f"/api/v1/devices/{TOKEN}/")
    unknown = api_client.delete("/api/v1/devices/never-registered/")

    # then
    assert (first.status_code, again.status_code, unknown.status_code) == (204, 204, 204)
    assert Device.objects.get().is_active is False


def test_both_endpoints_need_an_api_key(db):
    MemberFactory(external_id="M-1")
    anonymous = APIClient()
    registered = anonymous.post(
        "/api/v1/members/M-1/devices/", {"platform": "android", "token": TOKEN}, format="json"
    )
    deleted = anonymous.delete(f"/api/v1/devices/{TOKEN}/")
    assert (registered.status_code, deleted.status_code) == (401, 401)
    assert registered.json()["type"] == "client_error"
    assert not Device.objects.exists()


def test_the_device_endpoints_are_in_the_openapi_schema(api_client):
    paths = api_client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    assert set(paths["/api/v1/members/{external_id}/devices/"]["post"]["responses"]) >= {
        "200",
        "201",
        "404",
    }
    assert "204" in paths["/api/v1/devices/{token}/"]["delete"]["responses"]
