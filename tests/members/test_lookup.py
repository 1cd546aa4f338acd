"""One lookup of a member by external id, one error: every path that names an unknown
member answers 404 with the same message and records nothing."""

import pytest

from benefits.models import PointsEntry
from members.models import EngagementEvent, EngagementKind, Member
from notifications.models import Consent, Device
from orders.models import Order
from tests.helpers import order_payload

pytestmark = pytest.mark.django_db

NOT_FOUND = "No member with external id 'M-404'."


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/v1/members/M-404/", None),
        ("get", "/api/v1/members/M-404/timeline/", None),
        (
            "post",
            "/api/v1/members/M-404/consents/",
            {"channel": "sms", "granted": True, "source": "app"},
        ),
        ("post", "/api/v1/members/M-404/points/redeem/", {"idempotency_key": "R-1", "points": 10}),
        ("post", "/api/v1/members/M-404/devices/", {"platform": "android", "token": "t" * 20}),
        ("post", "/api/v1/orders/", order_payload(member="M-404")),
        (
            "post",
            "/api/v1/events/",
            {
                "external_id": "E-1",
                "member": "M-404",
                "kind": "check-in",
                "occurred_at": "2026-01-01T00:00:00Z",
            },
        ),
        ("post", "/api/v1/checkout/quote/", {"member": "M-404", "amount": "100"}),
        ("post", "/api/v1/consents/opt-out/", {"member": "M-404"}),
    ],
)
def test_an_unknown_member_is_a_404_wherever_it_is_named(api, method, path, body):
    # given
    EngagementKind.objects.create(code="check-in", name="Check-in", growth_points=5)

    # when
    response = api.get(path) if method == "get" else api.post(path, body)

    # then
    assert response.status_code == 404, response.content
    assert response.json()["errors"] == [{"code": "not_found", "detail": NOT_FOUND, "attr": None}]
    recorded = [Member, Order, EngagementEvent, PointsEntry, Consent, Device]
    assert [model.objects.count() for model in recorded] == [0] * len(recorded)
