from decimal import Decimal

import pytest

from members.models import Member
from orders.models import Order, Refund

pytestmark = pytest.mark.django_db


def refund(api, order="SO-1", **fields):
    return api.post(
        f"/api/v1/orders/{order}/refunds/", {"external_id": "R-1", "amount": "100.00", **fields}
    )


def test_a_partial_refund_lowers_the_members_spend(api):
    # given
    api.order(external_id="SO-1", amount="500.00")

    # when
    response = refund(api, amount="200.00")

    # then
    assert response.status_code == 201
    assert response.json()["order"] == "SO-1"
    assert response.json()["amount"] == "200.00"
    member = Member.objects.get(external_id="M-1")
    assert (member.lifetime_spend, member.order_count) == (Decimal("300.00"), 1)
    assert Order.objects.get().refunded_amount == Decimal("200.00")
    assert Refund.objects.get().is_evaluated


def test_refunding_an_order_in_full_stops_it_counting(api):
    api.order(external_id="SO-1", amount="500.00")
    refund(api, external_id="R-1", amount="200.00")
    refund(api, external_id="R-2", amount="300.00")
    member = Member.objects.get(external_id="M-1")
    assert (member.lifetime_spend, member.order_count) == (Decimal("0.00"), 0)


def test_a_replay_returns_the_refund_and_changes_nothing(api):
    # given
    api.order(external_id="SO-1", amount="500.00")
    first = refund(api, amount="200.00")

    # when
    replay = refund(api, amount="200.00")

    # then
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json() == first.json()
    assert Member.objects.get().lifetime_spend == Decimal("300.00")


def test_a_different_payload_for_a_recorded_refund_is_a_conflict(api):
    api.order(external_id="SO-1", amount="500.00")
    refund(api, amount="200.00")
    response = refund(api, amount="250.00")
    assert response.status_code == 409
    assert Member.objects.get().lifetime_spend == Decimal("300.00")


@pytest.mark.parametrize(
    ("fields", "attr"),
    [
        ({"amount": "500.01"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "-5"}, "amount"),
        ({"amount": "1.001"}, "amount"),
        ({"external_id": ""}, "external_id"),
        ({"refunded_at": "soon"}, "refunded_at"),
        ({"reason": "damaged"}, "reason"),
    ],
)
def test_bad_refunds_are_a_400_and_change_nothing(api, fields, attr):
    # given
    api.order(external_id="SO-1", amount="500.00")

    # when
    response = refund(api, **fields)

    # then
    assert response.status_code == 400
    assert attr in {error["attr"] for error in response.json()["errors"]}
    assert not Refund.objects.exists()
    assert Member.objects.get().lifetime_spend == Decimal("500.00")


def test_more_than_what_remains_is_refused(api):
    api.order(external_id="SO-1", amount="500.00")
    refund(api, external_id="R-1", amount="400.00")
    response = refund(api, external_id="R-2", amount="100.01")
    assert response.status_code == 400
    assert response.json()["errors"][0]["detail"] == "Only 100.00 of order SO-1 is left to refund."


def test_a_refund_of_an_unknown_order_is_a_404(api):
    assert refund(api, order="SO-404").status_code == 404
