from datetime import timedelta

import pytest
from django.utils import timezone

from benefits.models import Coupon

pytestmark = pytest.mark.django_db


def test_member_detail_shows_tier_totals_points_and_coupons(api, seed):
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


def test_an_expired_coupon_shows_as_expired(api, seed):
    api.order(amount="2500.00")
    Coupon.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api.get("/api/v1/members/M-1/").json()["coupons"][0]["status"] == "expired"


def test_an_unknown_member_is_a_404(api, seed):
    response = api.get("/api/v1/members/nobody/")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"


def test_the_timeline_explains_each_effect_newest_first(api, seed):
    # given
    api.order(external_id="SO-1", amount="1500.00")
    api.order(external_id="SO-2", amount="600.00")

    # when
    entries = api.get("/api/v1/members/M-1/timeline/").json()["results"]

    # then: the order's own effects are dated by it (placed an hour ago), above it; the
    # firing, its coupon and its message when the rules ran
    types = [entry["type"] for entry in entries]
    assert types == [
        "notification",
        "coupon_issued",
        "rule_fired",
        "tier_change",
        "points",
        "growth_points",  # 60 for SO-2's 600, at the seed's 1 per 10 yuan
        "order",
        "growth_points",
        "order",
    ]
    assert [entry["at"] for entry in entries] == sorted((e["at"] for e in entries), reverse=True)
    by_type = {entry["type"]: entry for entry in entries}
    for effect in ("notification", "points", "coupon_issued", "tier_change"):
        assert by_type[effect]["rule"]["code"] == "silver-at-2000"
    assert by_type["tier_change"]["from_tier"] == "regular"
    assert by_type["tier_change"]["to_tier"] == "silver"
    assert by_type["rule_fired"]["facts"] == {
        "lifetime_spend": "2100.00",
        "growth_points": 210,
        "tier_rank": 0,
    }
    assert by_type["rule_fired"]["order"] == "SO-2"
    assert by_type["notification"]["status"] == "sent"
    assert (
        "王先生" in by_type["notification"]["text"]
        and "银卡会员" in by_type["notification"]["text"]
    )


def test_the_timeline_pages_with_a_cursor(api, seed):
    # given: 9 entries (see the test above)
    api.order(external_id="SO-1", amount="1500.00")
    api.order(external_id="SO-2", amount="600.00")

    # when
    pages, before = [], None
    while True:
        params = {"limit": 3, **({"before": before} if before else {})}
        body = api.get("/api/v1/members/M-1/timeline/", params).json()
        pages.append([entry["type"] for entry in body["results"]])
        before = body["next_before"]
        if before is None:
            break

    # then: SO-2's order and its three effects share one moment: shown whole on one page
    assert [len(page) for page in pages] == [3, 4, 2]
    assert pages[1] == ["tier_change", "points", "growth_points", "order"]
    assert pages[-1] == ["growth_points", "order"]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 500}, {"before": "soon"}, {"page": 2}])
def test_bad_timeline_parameters_are_a_400(api, seed, params):
    api.order()
    assert api.get("/api/v1/members/M-1/timeline/", params).status_code == 400
