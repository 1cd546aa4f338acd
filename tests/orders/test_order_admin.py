"""Orders recorded by hand in the admin (orders/admin.py)."""

import pytest
from django.urls import reverse

from orders.models import Order
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def test_the_admin_refuses_an_order_placed_in_the_future(admin_client):
    # given
    member = MemberFactory()

    # when
    response = admin_client.post(
        reverse("admin:orders_order_add"),
        {
            "external_id": "SO-F",
            "member": member.pk,
            "amount": "5",
            "placed_at_0": "2999-01-01",
            "placed_at_1": "10:00",
        },
    )

    # then
    assert response.status_code == 200
    assert "cannot be placed in the future" in response.content.decode()
    assert not Order.objects.exists()
