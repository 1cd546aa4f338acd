"""The checkout quote: the member's tier discount, then the best combination of the
coupons offered, with the reason for each coupon left out. It reads only."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from benefits.models import Coupon
from benefits.selectors import checkout_quote
from benefits.services.coupons import coupon_issue
from members.models import MemberNotFound
from tests.factories import CouponTemplateFactory, MemberFactory, TierFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member():
    """A Silver member: 5% off everything."""
    return MemberFactory(
        external_id="M-1",
        tier=TierFactory(code="silver", name="银卡会员", rank=1, discount_percent=Decimal(5)),
    )


def amount_coupon(member, off, *, min_spend=0, stacking="exclusive", **fields) -> Coupon:
    template = CouponTemplateFactory(
        name=f"减{off}", min_spend=Decimal(min_spend), amount_off=Decimal(off), stacking=stacking
    )
    coupon = coupon_issue(member=member, template=template)
    Coupon.objects.filter(pk=coupon.pk).update(**fields)
    return Coupon.objects.get(pk=coupon.pk)


def percent_coupon(member, percent, *, cap=None, min_spend=0, stacking="exclusive") -> Coupon:
    template = CouponTemplateFactory(
        name=f"{percent}% off",
        discount="percent",
        amount_off=None,
        percent_off=Decimal(percent),
        max_discount=None if cap is None else Decimal(cap),
        min_spend=Decimal(min_spend),
        stacking=stacking,
    )
    return Coupon.objects.get(pk=coupon_issue(member=member, template=template).pk)


def quote(member, amount, *coupons, codes=None) -> dict:
    return checkout_quote(
        member_external_id=member.external_id,
        amount=Decimal(amount),
        coupon_codes=codes if codes is not None else [coupon.code for coupon in coupons],
    )


def outcome(result) -> list[tuple]:
    return [
        (line["code"], line["applies"], line["discount"], line["reason_code"])
        for line in result["coupons"]
    ]


def test_the_tier_discount_comes_first_then_an_amount_coupon(member):
    # given
    coupon = amount_coupon(member, 50, min_spend=300)

    # when
    result = quote(member, "1000.00", coupon)

    # then
    assert result["tier"] == {
        "code": "silver",
        "name": "银卡会员",
        "discount_percent": Decimal("5.00"),
    }
    assert (result["amount"], result["tier_discount"], result["amount_after_tier_discount"]) == (
        Decimal("1000.00"),
        Decimal("50.00"),
        Decimal("950.00"),
    )
    assert outcome(result) == [(coupon.code, True, Decimal("50.00"), None)]
    assert (result["coupon_discount"], result["total_discount"], result["final_amount"]) == (
        Decimal("50.00"),
        Decimal("100.00"),
        Decimal("900.00"),
    )


def test_the_tier_discount_is_rounded_to_cents(member):
    result = quote(member, "33.33")
    assert (result["tier_discount"], result["final_amount"]) == (Decimal("1.67"), Decimal("31.66"))
    assert result["coupons"] == []


def test_a_member_without_a_tier_pays_the_full_amount():
    member = MemberFactory(tier=None)
    result = quote(member, "100.00")
    assert (result["tier"], result["tier_discount"], result["final_amount"]) == (
        None,
        Decimal("0.00"),
        Decimal("100.00"),
    )


@pytest.mark.parametrize(
    ("cap", "discount"),
    [(None, Decimal("95.00")), (Decimal(60), Decimal("60.00")), (Decimal(200), Decimal("95.00"))],
)
def test_a_percentage_coupon_takes_its_share_of_the_amount_after_the_tier_discount(
    member, cap, discount
):
    # given: 10% off, of 950 after Silver's 5%
    coupon = percent_coupon(member, 10, cap=cap)

    # when
    result = quote(member, "1000.00", coupon)

    # then
    assert outcome(result) == [(coupon.code, True, discount, None)]
    assert result["final_amount"] == Decimal("950.00") - discount


def test_the_minimum_spend_is_judged_on_the_basket_before_any_discount(member):
    # given: 305 is 289.75 after the tier discount, still over 300 before it
    over = amount_coupon(member, 20, min_spend=300, stacking="stackable")
    under = amount_coupon(member, 30, min_spend=310, stacking="stackable")

    # when
    result = quote(member, "305.00", over, under)

    # then
    assert outcome(result) == [
        (over.code, True, Decimal("20.00"), None),
        (under.code, False, Decimal("0.00"), "below_min_spend"),
    ]
    assert result["coupons"][1]["reason"] == "The basket is below its minimum spend of 310.00."


def test_each_coupon_that_cannot_be_used_says_why(member):
    # given
    now = timezone.now()
    someone_else = MemberFactory()
    theirs = amount_coupon(someone_else, 10)
    expired = amount_coupon(member, 10, expires_at=now - timedelta(minutes=1))
    early = amount_coupon(member, 10, valid_from=now + timedelta(days=1))
    used = amount_coupon(member, 10, status="redeemed", redeemed_order="SO-9")
    void = amount_coupon(member, 10, status="void")
    codes = [theirs.code, expired.code, early.code, used.code, void.code, "NOPE-NOPE-NOPE"]

    # when
    result = quote(member, "100.00", codes=codes)

    # then
    reasons = [(line["code"], line["applies"], line["reason_code"]) for line in result["coupons"]]
    assert reasons == [
        (theirs.code, False, "other_member"),
        (expired.code, False, "expired"),
        (early.code, False, "not_yet_valid"),
        (used.code, False, "used"),
        (void.code, False, "void"),
        ("NOPE-NOPE-NOPE", False, "unknown"),
    ]
    assert all(line["reason"] for line in result["coupons"])
    assert result["coupons"][-1]["name"] is None
    assert (result["coupon_discount"], result["final_amount"]) == (
        Decimal("0.00"),
        Decimal("95.00"),
    )


def test_stackable_coupons_add_up_when_together_they_beat_the_best_exclusive_one(member):
    # given: 30 + 40 stackable against an exclusive 60
    small = amount_coupon(member, 30, stacking="stackable")
    exclusive = amount_coupon(member, 60)
    large = amount_coupon(member, 40, stacking="stackable")

    # when
    result = quote(member, "500.00", small, exclusive, large)

    # then
    assert outcome(result) == [
        (small.code, True, Decimal("30.00"), None),
        (exclusive.code, False, Decimal("0.00"), "not_combinable"),
        (large.code, True, Decimal("40.00"), None),
    ]
    assert result["coupons"][1]["reason"] == f"Cannot be combined with {large.code}, {small.code}."
    assert result["final_amount"] == Decimal("405.00")


def test_the_best_exclusive_coupon_alone_wins_when_it_gives_more(member):
    # given: an exclusive 10% (95 off 950) beats an exclusive 60 and 30 + 40 stackable
    small = amount_coupon(member, 30, stacking="stackable")
    fixed = amount_coupon(member, 60)
    large = amount_coupon(member, 40, stacking="stackable")
    percent = percent_coupon(member, 10)

    # when
    result = quote(member, "1000.00", small, fixed, large, percent)

    # then
    assert outcome(result) == [
        (small.code, False, Decimal("0.00"), "not_combinable"),
        (fixed.code, False, Decimal("0.00"), "not_combinable"),
        (large.code, False, Decimal("0.00"), "not_combinable"),
        (percent.code, True, Decimal("95.00"), None),
    ]
    assert result["coupons"][0]["reason"] == f"Cannot be combined with {percent.code}."
    assert result["final_amount"] == Decimal("855.00")


def test_on_a_tie_the_quote_uses_fewer_coupons(member):
    # given: 50 exclusive against 20 + 30 stackable
    exclusive = amount_coupon(member, 50)
    stackable = [amount_coupon(member, off, stacking="stackable") for off in (20, 30)]

    # when
    result = quote(member, "500.00", *stackable, exclusive)

    # then
    assert [line["applies"] for line in result["coupons"]] == [False, False, True]


def test_coupons_never_take_off_more_than_is_left_to_pay(member):
    # given: 95 to pay after the tier discount; 80 + 50 + 10 stackable
    coupons = [amount_coupon(member, off, stacking="stackable") for off in (50, 80, 10)]

    # when
    result = quote(member, "100.00", *coupons)

    # then: the biggest go first; the one with nothing left to take off is left out
    assert outcome(result) == [
        (coupons[0].code, True, Decimal("15.00"), None),
        (coupons[1].code, True, Decimal("80.00"), None),
        (coupons[2].code, False, Decimal("0.00"), "nothing_left"),
    ]
    assert (result["total_discount"], result["final_amount"]) == (
        Decimal("100.00"),
        Decimal("0.00"),
    )


def test_an_exclusive_coupon_worth_more_than_the_basket_takes_what_is_left(member):
    coupon = amount_coupon(member, 200)
    result = quote(member, "100.00", coupon)
    assert outcome(result) == [(coupon.code, True, Decimal("95.00"), None)]
    assert result["final_amount"] == Decimal("0.00")


def test_a_code_given_twice_counts_once_in_any_case(member):
    # given
    coupon = amount_coupon(member, 30, stacking="stackable")

    # when
    result = quote(member, "500.00", codes=[coupon.code, coupon.code.lower(), f" {coupon.code} "])

    # then
    assert outcome(result) == [(coupon.code, True, Decimal("30.00"), None)]
    assert result["coupon_discount"] == Decimal("30.00")


def test_a_quote_writes_nothing(member):
    # given
    coupon = amount_coupon(member, 30)

    # when
    with CaptureQueriesContext(connection) as queries:
        quote(member, "500.00", coupon)

    # then
    statements = [query["sql"].split()[0].upper() for query in queries]
    assert set(statements) == {"SELECT"}
    coupon.refresh_from_db()
    assert (coupon.status, coupon.redeemed_order) == ("issued", "")


def test_an_unknown_member_is_not_found():
    with pytest.raises(MemberNotFound) as refused:
        checkout_quote(member_external_id="M-404", amount=Decimal(100), coupon_codes=[])
    assert str(refused.value) == "No member with external id 'M-404'."


# --- the API --------------------------------------------------------------------------


def test_the_quote_api_answers_with_the_whole_quote(api, member):
    # given
    coupon = percent_coupon(member, 10, cap=60)

    # when
    response = api.post(
        "/api/v1/checkout/quote/",
        {"member": "M-1", "amount": "1000", "coupons": [coupon.code, "NOPE"]},
    )

    # then
    assert response.status_code == 200
    assert response.json() == {
        "member": "M-1",
        "amount": "1000.00",
        "tier": {"code": "silver", "name": "银卡会员", "discount_percent": "5.00"},
        "tier_discount": "50.00",
        "amount_after_tier_discount": "950.00",
        "coupons": [
            {
                "code": coupon.code,
                "name": "10% off",
                "applies": True,
                "discount": "60.00",
                "reason_code": None,
                "reason": None,
            },
            {
                "code": "NOPE",
                "name": None,
                "applies": False,
                "discount": "0.00",
                "reason_code": "unknown",
                "reason": "Unknown coupon code.",
            },
        ],
        "coupon_discount": "60.00",
        "total_discount": "110.00",
        "final_amount": "890.00",
    }


def test_coupons_are_optional_in_a_quote(api, member):
    response = api.post("/api/v1/checkout/quote/", {"member": "M-1", "amount": "100"})
    assert response.status_code == 200
    assert (response.json()["coupons"], response.json()["final_amount"]) == ([], "95.00")


@pytest.mark.parametrize(
    ("payload", "attr"),
    [
        ({"member": "M-1", "amount": "-1"}, "amount"),
        ({"member": "M-1"}, "amount"),
        ({"member": "M-1", "amount": "100", "coupons": "K7M2"}, "coupons"),
        ({"member": "M-1", "amount": "100", "coupon": ["K7M2"]}, "coupon"),
    ],
)
def test_bad_quote_requests_get_field_errors(api, member, payload, attr):
    response = api.post("/api/v1/checkout/quote/", payload)
    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"
    assert {error["attr"] for error in response.json()["errors"]} == {attr}


def test_a_quote_needs_an_api_key(client, member):
    response = client.post(
        "/api/v1/checkout/quote/",
        {"member": "M-1", "amount": "100"},
        content_type="application/json",
    )
    assert response.status_code == 401
