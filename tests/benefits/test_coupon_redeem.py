"""Using a coupon on an order, exactly once, and giving it back: every refusal is a clear
4xx that changes nothing; a replay for the same order is a 200; under real concurrency
(PostgreSQL) one request wins and the budget of a template is never overshot."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from benefits.models import Coupon
from benefits.services.coupons import CouponUnavailable, coupon_issue
from members import services as member_services
from tests.factories import CouponTemplateFactory, MemberFactory
from tests.helpers import erp_client, in_parallel

pytestmark = pytest.mark.django_db


@pytest.fixture
def coupon() -> Coupon:
    """M-1's 满300减50, valid for 15 days."""
    member = MemberFactory(external_id="M-1")
    issued = coupon_issue(member=member, template=CouponTemplateFactory())
    return Coupon.objects.get(pk=issued.pk)


def redeem(api, code, **fields):
    return api.post(f"/api/v1/coupons/{code}/redeem/", {"member": "M-1", "order": "SO-1", **fields})


def release(api, code, order="SO-1"):
    return api.post(f"/api/v1/coupons/{code}/release/", {"order": order})


def state(coupon) -> tuple:
    coupon.refresh_from_db()
    return coupon.status, coupon.redeemed_order, coupon.redeemed_at


def error(response) -> tuple:
    [only] = response.json()["errors"]
    return response.status_code, only["attr"], only["detail"]


# --- redeem ---------------------------------------------------------------------------


def test_redeeming_uses_the_coupon_on_the_order(api, coupon):
    # when
    response = redeem(api, coupon.code, amount="300.00")

    # then
    assert response.status_code == 201
    body = response.json()
    assert {k: body[k] for k in ("code", "member", "status", "redeemed_order")} == {
        "code": coupon.code,
        "member": "M-1",
        "status": "redeemed",
        "redeemed_order": "SO-1",
    }
    assert (body["discount"], body["min_spend"], body["amount_off"], body["percent_off"]) == (
        "amount",
        "300.00",
        "50.00",
        None,
    )
    status, order, redeemed_at = state(coupon)
    assert (status, order) == ("redeemed", "SO-1")
    assert abs(redeemed_at - timezone.now()) < timedelta(minutes=1)
    assert body["redeemed_at"] is not None


def test_a_replay_for_the_same_order_is_a_200_with_the_same_coupon(api, coupon):
    # given
    first = redeem(api, coupon.code)
    before = state(coupon)

    # when
    replay = redeem(api, coupon.code.lower())

    # then
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json() == first.json()
    assert state(coupon) == before


def test_a_coupon_used_on_another_order_is_a_409(api, coupon):
    # given
    redeem(api, coupon.code)
    before = state(coupon)

    # when
    response = redeem(api, coupon.code, order="SO-2")

    # then
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "conflict"
    assert state(coupon) == before == ("redeemed", "SO-1", before[2])


def test_an_unknown_code_is_a_404(api, coupon):
    assert redeem(api, "NOPE-NOPE-NOPE").status_code == 404
    assert release(api, "NOPE-NOPE-NOPE").status_code == 404
    assert state(coupon) == ("issued", "", None)


def test_another_members_coupon_is_refused_on_member(api, coupon):
    MemberFactory(external_id="M-2")
    response = redeem(api, coupon.code, member="M-2")
    assert error(response) == (400, "member", "This coupon belongs to another member.")
    assert state(coupon) == ("issued", "", None)


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"status": "void"}, "This coupon is void."),
        ({"expires_at": timezone.now() - timedelta(days=1)}, "This coupon expired at "),
        ({"valid_from": timezone.now() + timedelta(days=1)}, "This coupon can be used from "),
    ],
)
def test_a_coupon_that_cannot_be_used_now_is_refused_on_code(api, coupon, change, detail):
    # given
    Coupon.objects.filter(pk=coupon.pk).update(**change)
    before = state(coupon)

    # when
    response = redeem(api, coupon.code)

    # then
    status, attr, text = error(response)
    assert (status, attr) == (400, "code")
    assert text.startswith(detail)
    assert state(coupon) == before


def test_a_basket_below_the_minimum_spend_is_refused_on_amount(api, coupon):
    response = redeem(api, coupon.code, amount="299.99")
    assert error(response) == (400, "amount", "The minimum spend for this coupon is 300.00.")
    assert state(coupon) == ("issued", "", None)


@pytest.mark.parametrize(
    ("payload", "attr"),
    [
        ({"member": "M-1"}, "order"),
        ({"order": "SO-1"}, "member"),
        ({"member": "M-1", "order": "SO 1"}, "order"),
        ({"member": "M-1", "order": "SO-1", "amount": "-5"}, "amount"),
        ({"member": "M-1", "order": "SO-1", "basket": "5"}, "basket"),
    ],
)
def test_bad_redeem_requests_get_field_errors(api, coupon, payload, attr):
    response = api.post(f"/api/v1/coupons/{coupon.code}/redeem/", payload)
    assert response.status_code == 400
    assert {e["attr"] for e in response.json()["errors"]} == {attr}
    assert state(coupon) == ("issued", "", None)


# --- release --------------------------------------------------------------------------


def test_releasing_gives_the_coupon_back_and_it_can_be_used_again(api, coupon):
    # given
    redeem(api, coupon.code)

    # when
    released = release(api, coupon.code)
    again = redeem(api, coupon.code, order="SO-2")

    # then
    assert released.status_code == 200
    assert (released.json()["status"], released.json()["redeemed_order"]) == ("issued", "")
    assert released.json()["redeemed_at"] is None
    assert again.status_code == 201
    assert state(coupon)[:2] == ("redeemed", "SO-2")


def test_releasing_twice_changes_nothing_the_second_time(api, coupon):
    # given
    redeem(api, coupon.code)
    first = release(api, coupon.code)

    # when
    second = release(api, coupon.code)

    # then
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json() == first.json()
    assert state(coupon) == ("issued", "", None)


def test_releasing_a_coupon_used_on_another_order_is_a_409(api, coupon):
    # given
    redeem(api, coupon.code)
    before = state(coupon)

    # when
    response = release(api, coupon.code, order="SO-2")

    # then
    assert response.status_code == 409
    assert state(coupon) == before


def test_a_released_coupon_past_its_expiry_is_issued_again_and_reads_expired(api, coupon):
    # given: used, then it expired before the order was cancelled
    redeem(api, coupon.code)
    Coupon.objects.filter(pk=coupon.pk).update(expires_at=timezone.now() - timedelta(hours=1))

    # when
    response = release(api, coupon.code)

    # then
    assert response.status_code == 200
    assert response.json()["status"] == "expired"
    assert state(coupon) == ("issued", "", None)
    assert error(redeem(api, coupon.code, order="SO-2"))[:2] == (400, "code")


def test_release_needs_the_order(api, coupon):
    response = api.post(f"/api/v1/coupons/{coupon.code}/release/", {})
    assert response.status_code == 400
    assert {e["attr"] for e in response.json()["errors"]} == {"order"}


# --- the member's view ----------------------------------------------------------------


def test_the_members_coupons_and_timeline_show_the_terms_and_the_order(api, coupon):
    # given
    redeem(api, coupon.code)

    # when
    member = api.get("/api/v1/members/M-1/").json()
    timeline = api.get("/api/v1/members/M-1/timeline/").json()["results"]

    # then
    [listed] = member["coupons"]
    assert (listed["code"], listed["status"], listed["amount_off"]) == (
        coupon.code,
        "redeemed",
        "50.00",
    )
    [entry] = [e for e in timeline if e["type"] == "coupon_issued"]
    assert {
        k: entry[k] for k in ("code", "name", "min_spend", "amount_off", "discount", "stacking")
    } == {
        "code": coupon.code,
        "name": "满300减50",
        "min_spend": "300.00",
        "amount_off": "50.00",
        "discount": "amount",
        "stacking": "exclusive",
    }
    assert (entry["status"], entry["redeemed_order"], entry["percent_off"]) == (
        "redeemed",
        "SO-1",
        None,
    )
    assert entry["rule"] is None


# --- under real concurrency -------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_redemptions_of_one_coupon_use_it_once():
    # given
    member = MemberFactory(external_id="M-1")
    coupon = coupon_issue(member=member, template=CouponTemplateFactory())
    client = erp_client()

    # when: 50 tills try it on 50 orders at once
    statuses = in_parallel(
        50,
        lambda i: (
            client.post(
                f"/api/v1/coupons/{coupon.code}/redeem/",
                {"member": "M-1", "order": f"SO-{i}"},
                format="json",
            ).status_code
        ),
    )

    # then
    assert sorted(statuses) == [201] + [409] * 49
    winner = statuses.index(201)
    assert state(coupon)[:2] == ("redeemed", f"SO-{winner}")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_issues_never_overshoot_the_budget():
    # given: a budget of 5, and 20 members getting one at the same moment
    template = CouponTemplateFactory(budget=5)
    member_ids = [MemberFactory().pk for _ in range(20)]

    def issue(i):
        try:
            with transaction.atomic():
                member = member_services.member_lock(member_id=member_ids[i])
                coupon_issue(member=member, template=template)
        except CouponUnavailable as exc:
            return exc.reason
        return "issued"

    # when
    outcomes = in_parallel(20, issue)

    # then
    assert sorted(outcomes) == ["budget"] * 15 + ["issued"] * 5
    assert Coupon.objects.filter(template=template).count() == 5
