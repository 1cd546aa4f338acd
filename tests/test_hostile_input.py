"""Input an attacker or a broken client sends: never a 500, never a guess. Each answer is
a 4xx in the API's one error shape, and nothing is recorded."""

import json

import pytest

from members.models import Member
from orders.models import Order, Refund
from tests.helpers import order_payload

pytestmark = pytest.mark.django_db


def _post(api, path: str, body: str):
    with api.capture(execute=True):
        return api.client.post(path, data=body, content_type="application/json")


def _errors(response) -> list[tuple[str, str | None]]:
    return [(error["code"], error["attr"]) for error in response.json()["errors"]]


def test_a_body_too_large_is_a_413(api, seed, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100_000
    body = json.dumps({**order_payload(external_id="BIG"), "note": "a" * 200_000})
    response = _post(api, "/api/v1/orders/", body)
    assert response.status_code == 413
    assert _errors(response) == [("too_large", None)]
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("[" * 10_000 + "]" * 10_000, "nested more than 32 levels"),
        ('{"a": ' * 40 + "1" + "}" * 40, "nested more than 32 levels"),
        ('{"amount": "1.00", "amount": "999999.00"}', "“amount” is given twice"),
        ('{"amount": NaN}', "NaN is not a number"),
        ("{not json", "JSON parse error"),
        (b"\xff\xfe".decode("latin-1"), "JSON parse error"),
    ],
)
def test_json_no_client_means_is_a_400(api, seed, body, says):
    response = _post(api, "/api/v1/orders/", body)
    assert response.status_code == 400
    assert says in response.json()["errors"][0]["detail"]
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    ("change", "attr", "says"),
    [
        ({"amount": "-0.00"}, "amount", "negative zero"),
        ({"external_id": "O-1\u202e"}, "external_id", "control or direction"),
        ({"external_id": "O-1\x00"}, "external_id", "control or direction"),
        ({"external_id": 5}, "external_id", "Not a string"),
        ({"currency": ["CNY"]}, "currency", "Not a string"),
        ({"placed_at": "0885-01-01T00:00:00Z"}, "placed_at", "from 1900"),
    ],
)
def test_values_accepted_before_but_wrong_are_field_errors(api, seed, change, attr, says):
    response = api.post("/api/v1/orders/", {**order_payload(external_id="O-1"), **change})
    assert response.status_code == 400
    found = {error["attr"]: error["detail"] for error in response.json()["errors"]}
    assert says in found[attr]
    assert not Order.objects.exists()


def test_a_member_named_with_direction_characters_or_joined_in_885_is_refused(api, seed):
    response = api.post(
        "/api/v1/members/",
        {"external_id": "M-9", "name": "a\u202eb", "joined_at": "0885-01-01T00:00:00Z"},
    )
    assert response.status_code == 400
    assert set(_errors(response)) == {("invalid", "name"), ("invalid", "joined_at")}
    assert not Member.objects.filter(external_id="M-9").exists()
    # A name with a line break in it is still a name.
    ok = api.post("/api/v1/members/", {"external_id": "M-9", "name": "张三\n"})
    assert ok.status_code == 201, ok.content


@pytest.mark.parametrize("refunded_at", ["2099-01-01T00:00:00Z", "2024-12-31T00:00:00Z"])
def test_a_refund_in_the_future_or_before_its_order_is_refused(api, seed, refunded_at):
    assert api.order(external_id="O-R", placed_at="2025-01-01T10:00:00Z").status_code == 201
    response = api.post(
        "/api/v1/orders/O-R/refunds/",
        {"external_id": "R-1", "amount": "1.00", "refunded_at": refunded_at},
    )
    assert response.status_code == 400
    assert _errors(response) == [("invalid", "refunded_at")]
    assert not Refund.objects.exists()


def test_a_database_that_is_unavailable_is_a_503_with_retry_after(api, seed, monkeypatch):
    from django.db import OperationalError

    from orders import services

    def restarting(**_fields):
        raise OperationalError("the database system is shutting down")

    monkeypatch.setattr(services, "order_record", restarting)
    api.client.raise_request_exception = False  # a 5xx is reported, as it should be
    response = api.order(external_id="O-503")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert _errors(response) == [("database_unavailable", None)]
    assert not Order.objects.exists()
