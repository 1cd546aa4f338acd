"""Issuing coupons: the template's terms copied onto the coupon, its validity (days from
issue or fixed dates), the per-member limit and the budget; a rule whose coupon cannot be
issued still fires; messages read percentage coupons too; the template's admin form."""

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from benefits.models import Coupon, CouponTemplate
from benefits.selectors import member_coupons
from benefits.services.coupons import CouponUnavailable, coupon_issue
from notifications.models import Notification
from notifications.services.messages import message_context
from orders.models import Order
from orders.services import order_record
from rules.models import RuleFiring
from rules.services.evaluation import member_evaluate
from tests.factories import (
    CouponTemplateFactory,
    MemberFactory,
    NotificationTemplateFactory,
    RuleFactory,
    action,
)

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=SHANGHAI)


def percent_template(**fields) -> CouponTemplate:
    """9折, at most 100 off, over 300."""
    values = {
        "name": "满300享9折",
        "discount": "percent",
        "amount_off": None,
        "percent_off": Decimal(10),
        "max_discount": Decimal(100),
    }
    return CouponTemplateFactory(**{**values, **fields})


# --- terms and validity ---------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_a_coupon_copies_every_term_of_its_template():
    # given
    template = percent_template(stacking="stackable", valid_days=15)
    member = MemberFactory()

    # when
    coupon = coupon_issue(member=member, template=template)
    CouponTemplate.objects.filter(pk=template.pk).update(percent_off=20, max_discount=None)

    # then: editing the template later changes no coupon in hand
    coupon.refresh_from_db()
    assert (coupon.name, coupon.discount, coupon.stacking) == ("满300享9折", "percent", "stackable")
    assert (coupon.min_spend, coupon.amount_off, coupon.percent_off, coupon.max_discount) == (
        Decimal("300.00"),
        None,
        Decimal("10.00"),
        Decimal("100.00"),
    )
    assert (coupon.issued_at, coupon.valid_from, coupon.expires_at) == (
        NOW,
        None,
        NOW + timedelta(days=15),
    )
    assert (coupon.status, coupon.redeemed_order, coupon.redeemed_at) == ("issued", "", None)


@time_machine.travel(NOW, tick=False)
def test_a_fixed_date_template_gives_every_coupon_the_same_dates():
    # given: a Spring festival coupon, usable from 1 to 15 April whenever it is issued
    starts = datetime(2026, 4, 1, tzinfo=SHANGHAI)
    ends = datetime(2026, 4, 16, tzinfo=SHANGHAI)
    template = CouponTemplateFactory(valid_days=None, valid_from=starts, valid_until=ends)

    # when
    coupons = [coupon_issue(member=MemberFactory(), template=template) for _ in range(2)]

    # then
    assert [(c.valid_from, c.expires_at) for c in coupons] == [(starts, ends)] * 2
    assert member_coupons(member_id=coupons[0].member_id)[0]["valid_from"] == starts


def test_a_fixed_date_template_whose_end_has_passed_issues_nothing():
    # given
    template = CouponTemplateFactory(
        valid_days=None, valid_until=timezone.now() - timedelta(minutes=1)
    )

    # when
    with pytest.raises(CouponUnavailable) as refused:
        coupon_issue(member=MemberFactory(), template=template)

    # then
    assert refused.value.reason == "expired"
    assert not Coupon.objects.exists()


# --- limits ---------------------------------------------------------------------------


def test_the_per_member_limit_counts_the_coupons_held_but_not_void_ones():
    # given: at most two per member
    template = CouponTemplateFactory(per_member_limit=2)
    member, other = MemberFactory(), MemberFactory()
    first = coupon_issue(member=member, template=template)
    coupon_issue(member=member, template=template)

    # when / then: a third is refused; redeemed coupons still count
    Coupon.objects.filter(pk=first.pk).update(status="redeemed", redeemed_order="SO-1")
    with pytest.raises(CouponUnavailable) as refused:
        coupon_issue(member=member, template=template)
    assert refused.value.reason == "per_member_limit"
    assert Coupon.objects.filter(member=member).count() == 2

    # when / then: another member has their own allowance, and a void coupon frees one
    coupon_issue(member=other, template=template)
    Coupon.objects.filter(pk=first.pk).update(status="void")
    coupon_issue(member=member, template=template)
    assert Coupon.objects.filter(member=member).exclude(status="void").count() == 2


def test_the_budget_counts_every_members_coupons_of_the_template():
    # given: a budget of three
    template = CouponTemplateFactory(budget=3)
    other_template = CouponTemplateFactory()
    issued = [coupon_issue(member=MemberFactory(), template=template) for _ in range(3)]
    coupon_issue(member=MemberFactory(), template=other_template)

    # when
    with pytest.raises(CouponUnavailable) as refused:
        coupon_issue(member=MemberFactory(), template=template)

    # then
    assert refused.value.reason == "budget"
    assert Coupon.objects.filter(template=template).count() == 3

    # when: a coupon is voided (its order was refunded), the budget has room again
    Coupon.objects.filter(pk=issued[0].pk).update(status="void")
    coupon_issue(member=MemberFactory(), template=template)
    assert Coupon.objects.filter(template=template).exclude(status="void").count() == 3


def test_the_budget_read_is_the_templates_current_one():
    # given: the operator raised the budget after this template object was loaded
    template = CouponTemplateFactory(budget=1)
    coupon_issue(member=MemberFactory(), template=template)
    CouponTemplate.objects.filter(pk=template.pk).update(budget=2)

    # when
    coupon_issue(member=MemberFactory(), template=template)

    # then
    assert Coupon.objects.filter(template=template).count() == 2


# --- through a rule -------------------------------------------------------------------


def fire(member, amount="100") -> RuleFiring | None:
    order, _ = order_record(
        external_id=f"SO-{Order.objects.count() + 1}",
        member=member.external_id,
        amount=Decimal(amount),
        currency="CNY",
        placed_at=timezone.now() - timedelta(minutes=5),
    )
    member_evaluate(member_id=member.pk, trigger="order_paid", subject_id=order.pk)
    return RuleFiring.objects.filter(order=order).first()


def test_a_rule_whose_coupon_budget_is_spent_still_fires_its_other_actions(caplog):
    # given: every order gets a coupon (budget: one in all), 100 points and an SMS
    template = CouponTemplateFactory(code="gift", budget=1)
    message = NotificationTemplateFactory(
        body="{{ points }}积分{% if coupon %}，{{ coupon.name }}{% endif %}"
    )
    rule = RuleFactory(firing_limit="every_time")
    action(rule, "issue_coupon", coupon_template=template)
    action(rule, "award_points", points=100)
    action(rule, "notify", notification_template=message)
    member = MemberFactory(name="王先生", phone="13800138000")
    fire(member)

    # when
    with caplog.at_level(logging.INFO, logger="rules.services.effects"):
        second = fire(member)

    # then: the firing and its points stand, without a coupon
    assert second is not None
    assert not second.coupons.exists()
    assert [entry.points for entry in second.points_entries.all()] == [100]
    assert Coupon.objects.filter(member=member).count() == 1
    bodies = list(Notification.objects.order_by("pk").values_list("body", flat=True))
    assert bodies == ["100积分，满300减50", "100积分"]
    [record] = [r for r in caplog.records if r.name == "rules.services.effects"]
    assert record.levelno == logging.INFO
    assert record.getMessage() == f"member #{member.pk}: no coupon of gift (budget)"
    assert "王先生" not in caplog.text and "13800138000" not in caplog.text


# --- messages -------------------------------------------------------------------------


def test_a_message_reads_a_percentage_coupon_and_an_amount_coupon():
    # given
    member = MemberFactory()
    percent = coupon_issue(member=member, template=percent_template())
    uncapped = coupon_issue(
        member=member,
        template=percent_template(
            percent_off=Decimal("12.5"), max_discount=None, min_spend=Decimal(0)
        ),
    )
    amount = coupon_issue(member=member, template=CouponTemplateFactory())

    # when
    contexts = [
        message_context(member=member, coupon=c)["coupon"] for c in (percent, uncapped, amount)
    ]

    # then
    keys = ("min_spend", "amount_off", "percent_off", "max_discount", "discount_text")
    assert [tuple(context[k] for k in keys) for context in contexts] == [
        ("300", "", "10", "100", "满300享9折"),
        ("0", "", "12.5", "", "享8.75折"),
        ("300", "50", "", "", "满300减50"),
    ]


# --- the template's admin form --------------------------------------------------------


def template_form(**fields) -> dict:
    form = {
        "code": "spring",
        "name": "春季9折券",
        "discount": "percent",
        "amount_off": "",
        "percent_off": "10",
        "max_discount": "100",
        "min_spend": "300",
        "valid_days": "",
        "valid_from_0": "2026-04-01",
        "valid_from_1": "00:00:00",
        "valid_until_0": "2026-04-16",
        "valid_until_1": "00:00:00",
        "per_member_limit": "1",
        "budget": "1000",
        "stacking": "exclusive",
    }
    return {**form, **fields}


def test_the_template_form_groups_its_fields_and_saves_a_percentage_template(admin_client):
    # when
    page = admin_client.get(reverse("admin:benefits_coupontemplate_add"))
    response = admin_client.post(reverse("admin:benefits_coupontemplate_add"), template_form())

    # then
    text = page.content.decode()
    for heading in ("Discount", "Validity", "Limits and combining"):
        assert f'class="fieldset-heading">{heading}</h2>' in text
    assert response.status_code == 302
    template = CouponTemplate.objects.get(code="spring")
    assert (template.discount, template.percent_off, template.amount_off) == (
        "percent",
        Decimal("10.00"),
        None,
    )
    assert template.validity_from(timezone.now()) == (
        datetime(2026, 4, 1, tzinfo=SHANGHAI),
        datetime(2026, 4, 16, tzinfo=SHANGHAI),
    )
    assert (template.per_member_limit, template.budget) == (1, 1000)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"percent_off": ""}, "percent_off", "Give the percentage off."),
        ({"discount": "amount", "percent_off": ""}, "amount_off", "Give the amount off."),
        (
            {"valid_days": "15"},
            "valid_days",
            "Give either a number of days or fixed dates, not both.",
        ),
        (
            {"valid_from_0": "", "valid_from_1": "", "valid_until_0": "", "valid_until_1": ""},
            "valid_days",
            "Give a number of days, or a &#x27;valid until&#x27; date.",
        ),
        ({"valid_until_0": "2026-03-01"}, "valid_until", "Must be after &#x27;valid from&#x27;."),
    ],
)
def test_the_template_form_explains_what_is_wrong(admin_client, fields, field, message):
    # when
    response = admin_client.post(
        reverse("admin:benefits_coupontemplate_add"), template_form(**fields)
    )

    # then
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert message in response.content.decode()
    assert not CouponTemplate.objects.exists()


def test_the_template_and_coupon_lists_show_the_terms_in_a_few_words(admin_client):
    # given
    percent = percent_template(code="spring", budget=10)
    CouponTemplateFactory(code="gift", valid_days=15)
    coupon_issue(member=MemberFactory(), template=percent)

    # when
    templates = admin_client.get(reverse("admin:benefits_coupontemplate_changelist"))
    coupons = admin_client.get(reverse("admin:benefits_coupon_changelist"))

    # then
    text = templates.content.decode()
    assert "10% off, at most 100.00, spend 300.00 or more" in text
    assert "50.00 off, spend 300.00 or more" in text
    assert "15 days from issue" in text
    assert "1 / 10" in text
    assert "10% off, at most 100.00, spend 300.00 or more" in coupons.content.decode()


def test_the_member_api_lists_a_percentage_coupon(api):
    # given
    member = MemberFactory(external_id="M-1")
    coupon_issue(member=member, template=percent_template())

    # when
    response = api.get("/api/v1/members/M-1/")

    # then
    [coupon] = response.json()["coupons"]
    assert (coupon["name"], coupon["min_spend"], coupon["amount_off"], coupon["status"]) == (
        "满300享9折",
        "300.00",
        None,
        "issued",
    )


def test_codes_cannot_be_changed_in_the_admin(admin_client):
    # given
    gift = CouponTemplateFactory(code="silver-gift", name="银卡会员升级券", amount_off=50)

    # when
    response = admin_client.post(
        reverse("admin:benefits_coupontemplate_change", args=[gift.pk]),
        {
            "code": "renamed",
            "name": "New name",
            "discount": "amount",
            "min_spend": "300",
            "amount_off": "60",
            "valid_days": "15",
            "stacking": "exclusive",
        },
    )

    # then: the rest of the terms changed, the code did not
    assert response.status_code == 302
    gift.refresh_from_db()
    assert (gift.code, gift.name, gift.amount_off) == ("silver-gift", "New name", 60)
    assert not CouponTemplate.objects.filter(code="renamed").exists()
