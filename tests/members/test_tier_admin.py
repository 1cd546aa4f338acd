"""The tiers' admin (members/admin.py)."""

import pytest
from django.urls import reverse

from members.models import Tier
from tests.factories import TierFactory

pytestmark = pytest.mark.django_db


def test_a_tier_rank_clash_in_the_admin_is_a_form_error(admin_client):
    # given
    TierFactory(code="regular", rank=0)
    silver = TierFactory(code="silver", name="银卡会员", rank=1)
    TierFactory(code="gold", rank=2)

    # when: Silver moved onto Gold's rank
    response = admin_client.post(
        reverse("admin:members_tier_change", args=[silver.pk]),
        {"name": "银卡会员", "rank": "2", "discount_percent": "5"},
    )

    # then
    assert response.status_code == 200
    assert "Tier with this Rank already exists." in response.content.decode()
    assert Tier.objects.get(pk=silver.pk).rank == 1
