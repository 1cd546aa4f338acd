"""The member API's detail answer (profiles/api.py): tier, totals, points and coupons."""

from datetime import timedelta

import pytest
from django.utils import timezone

from benefits.models import Coupon
from rules.programme.load import programme_load

pytestmark = pytest.mark.django_db

# Silver (5% off) at 2000 spent, with 500 points and a coupon.
PROGRAMME = """
tiers:
  - {code: regular, name: 普通会员, rank: 0}
  - {code: silver, name: 银卡会员, rank: 1, discount_percent: 5}
coupon_templates:
  - {code: silver-gift, name: 银卡会员升级券, min_spend: 300, amount_off: 50, valid_days: 15}
rules:
  - code: silver-at-2000
    name: Silver at 2000
    trigger: order_paid
    conditions:
      all:
        - {fact: lifetime_spend, op: gte, value: 2000}
        - {fact: tier_rank, op: lt, value: 1}
    actions:
      - {type: set_tier, tier: silver}
      - {type: issue_coupon, template: silver-gift}
      - {type: award_points, points: 500}
"""


@pytest.fixture
def programme() -> None:
    programme_load(PROGRAMME)


def test_member_detail_shows_tier_totals_points_and_coupons(api, programme):
    # given
    api.order(external_id="SO-1", amount="1500.00")
    api.order(external_id="SO-2", amount="600.00")

    # when
    response = api.get("/api/v1/members/M-1/")

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["tier"] == {"code": "silver", "name": "银卡会员", "discount_percent": "5.00"}
    assert (body["lifetime_spend"], body["order_count"], body["points_balance"]) == (
        "2100.00",
        2,
        500,
    )
    [coupon] = body["coupons"]
    assert {k: coupon[k] for k in ("name", "min_spend", "amount_off", "status")} == {
        "name": "银卡会员升级券",
        "min_spend": "300.00",
        "amount_off": "50.00",
        "status": "issued",
    }
    assert coupon["code"] == Coupon.objects.get().code


def test_an_expired_coupon_shows_as_expired(api, programme):
    api.order(amount="2500.00")
    Coupon.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api.get("/api/v1/members/M-1/").json()["coupons"][0]["status"] == "expired"


def test_an_unknown_member_is_a_404(api):
    response = api.get("/api/v1/members/nobody/")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"
