from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from members.models import Member
from orders.models import Order
from tests.factories import MemberFactory, TierFactory
from tests.helpers import order_payload

pytestmark = pytest.mark.django_db


def error_attrs(response) -> set[str]:
    assert response.json()["type"] == "validation_error"
    return {error["attr"] for error in response.json()["errors"]}


def test_recording_an_order_creates_the_member_and_updates_totals(api):
    # given: the base tier a new member starts on
    TierFactory(code="regular", rank=0)

    # when
    response = api.order(external_id="SO-1", amount="1500.50")

    # then
    assert response.status_code == 201
    body = response.json()
    assert body["external_id"] == "SO-1"
    assert body["member"] == "M-1"
    assert body["amount"] == "1500.50"
    assert body["currency"] == "CNY"
    member = Member.objects.get(external_id="M-1")
    assert member.lifetime_spend == Decimal("1500.50")
    assert member.order_count == 1
    assert member.tier.code == "regular"
    assert member.phone == "+8613800138000"
    assert Order.objects.get(external_id="SO-1").is_evaluated


def test_an_order_for_a_known_member_by_external_id(api):
    # given
    MemberFactory(external_id="M-7")

    # when
    response = api.order(external_id="SO-9", member="M-7", amount="20.00")

    # then
    assert response.status_code == 201
    assert Member.objects.get(external_id="M-7").order_count == 1


def test_member_details_on_a_later_order_update_the_member(api):
    # given
    api.order(external_id="SO-1")

    # when
    api.order(
        external_id="SO-2",
        member={"external_id": "M-1", "name": "王小明", "email": "wang@example.com"},
    )

    # then
    member = Member.objects.get(external_id="M-1")
    assert (member.name, member.email, member.phone) == (
        "王小明",
        "wang@example.com",
        "+8613800138000",
    )


def test_a_replay_with_the_same_payload_returns_the_original_response(api):
    # given
    payload = order_payload(external_id="SO-1", amount="100.00")
    first = api.post("/api/v1/orders/", payload)

    # when: the same order, with the amount and time written differently
    replay = api.post(
        "/api/v1/orders/",
        {
            **payload,
            "amount": "100.0",
            "placed_at": datetime.fromisoformat(payload["placed_at"]).astimezone(UTC).isoformat(),
        },
    )

    # then
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json() == first.json()
    member = Member.objects.get(external_id="M-1")
    assert (member.order_count, member.lifetime_spend) == (1, Decimal("100.00"))


def test_a_different_payload_for_a_recorded_order_is_a_conflict(api):
    # given
    api.order(external_id="SO-1", amount="100.00")

    # when
    response = api.order(external_id="SO-1", amount="999.00")

    # then
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "conflict"
    assert Order.objects.get(external_id="SO-1").amount == Decimal("100.00")
    assert Member.objects.get(external_id="M-1").lifetime_spend == Decimal("100.00")


@pytest.mark.parametrize(
    ("fields", "attr"),
    [
        ({"currency": "USD"}, "currency"),
        ({"amount": "-1.00"}, "amount"),
        ({"amount": "1000000.01"}, "amount"),
        ({"amount": "12.345"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"amount": "lots"}, "amount"),
        ({"placed_at": "yesterday"}, "placed_at"),
        ({"placed_at": "2026-13-45T10:00:00"}, "placed_at"),
        ({"placed_at": (timezone.now() + timedelta(days=2)).isoformat()}, "placed_at"),
        ({"placed_at": "1999-12-31T23:00:00Z"}, "placed_at"),
        ({"external_id": ""}, "external_id"),
        ({"external_id": "SO/1"}, "external_id"),
        ({"member": ""}, "member"),
        ({"member": 42}, "member"),
        ({"member": {"name": "no id"}}, "member.external_id"),
        ({"member": {"external_id": "M-1", "phone": "call me"}}, "member.phone"),
        ({"member": {"external_id": "M-1", "email": "not-an-email"}}, "member.email"),
        ({"member": {"external_id": "M-1", "vip": True}}, "member.vip"),
        ({"discount": "5"}, "discount"),
    ],
)
def test_bad_input_is_a_400_with_field_errors_and_changes_nothing(api, fields, attr):
    # when
    response = api.order(**fields)

    # then
    assert response.status_code == 400
    assert attr in error_attrs(response)
    assert not Order.objects.exists()
    assert not Member.objects.exists()


def test_missing_fields_are_each_reported(api):
    # when
    response = api.post("/api/v1/orders/", {})

    # then
    assert response.status_code == 400
    assert error_attrs(response) == {"external_id", "member", "amount", "currency", "placed_at"}


def test_a_body_that_is_not_json_is_a_400(api):
    # when
    response = api.client.post("/api/v1/orders/", "{not json", content_type="application/json")

    # then
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "parse_error"


def test_a_phone_number_is_stored_without_separators(api):
    # when
    api.order(member={"external_id": "M-1", "phone": "+86 138-0013-8000"})

    # then
    assert Member.objects.get(external_id="M-1").phone == "+8613800138000"


def _statements(queries) -> list[str]:
    """The statements a request sent, transaction control (savepoints in a test) aside."""
    control = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")
    return [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(control)]


def test_an_order_of_a_known_member_costs_three_statements_and_a_replay_two(api):
    # given: a member known, and the API key checked once already
    MemberFactory(external_id="M-7")
    api.order(external_id="SO-0", member="M-7")
    payload = order_payload(external_id="SO-1", member="M-7")

    # when
    with CaptureQueriesContext(connection) as recording:
        first = api.client.post("/api/v1/orders/", payload, format="json")
    with CaptureQueriesContext(connection) as replaying:
        replay = api.client.post("/api/v1/orders/", payload, format="json")

    # then: a locked read, the insert, a relative update of the totals (five statements
    # with BEGIN and COMMIT); a replay finds the order in the insert's answer
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json() == first.json()
    statements = _statements(recording)
    assert [sql.split()[0] for sql in statements] == ["SELECT", "INSERT", "UPDATE"]
    assert "FOR UPDATE" in statements[0] or not connection.features.has_select_for_update
    assert [sql.split()[0] for sql in _statements(replaying)] == ["SELECT", "INSERT"]
    member = Member.objects.get(external_id="M-7")
    assert (member.order_count, member.event_seq) == (2, 3)


def test_a_long_email_is_reported_at_its_path(api):
    response = api.order(member={"external_id": "M-1", "email": "a" * 250 + "@example.com"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "member.email"
