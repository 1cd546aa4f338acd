from decimal import Decimal

import pytest

from members.models import discount_label
from notifications.rendering import render, template_errors


@pytest.mark.parametrize(
    ("percent", "label"),
    [
        ("5", "9.5折"),
        ("10", "9折"),
        ("2", "9.8折"),
        ("12.5", "8.75折"),
        ("0", "无折扣"),
        ("100", "免费"),
    ],
)
def test_discount_label_reads_as_a_chinese_shopper_reads_it(percent, label):
    assert discount_label(Decimal(percent)) == label


def test_render_fills_in_plain_values_without_escaping():
    body = "尊敬的{{ member.name }}，恭喜您升级为{{ tier.name }}，专属{{ tier.discount_label }}优惠已生效 <3"
    context = {
        "member": {"name": "王先生"},
        "tier": {"name": "银卡会员", "discount_label": "9.5折"},
    }
    assert render(body, context) == "尊敬的王先生，恭喜您升级为银卡会员，专属9.5折优惠已生效 <3"


def test_known_variables_tags_and_filters_are_accepted():
    body = (
        "{% if coupon %}{{ coupon.name|upper }} {{ coupon.expires_at|date:'Y-m-d' }}{% endif %}"
        "{% for x in member.name %}{{ x }}{% endfor %} {{ points|default:0 }}"
    )
    assert template_errors(body) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "Hi {{ member.nmae }}",
            "Unknown variable 'member.nmae'. Available: member.external_id, member.name.",
        ),
        ("Hi {{ user.name }}", "Unknown variable 'user.name'."),
        ("{% if member.phone %}x{% endif %}", "Unknown variable 'member.phone'."),
        ("{{ points.total }}", "'points' has no attributes."),
        ("Hi {{ member.name ", "A '{{' or '{%' is not closed."),
        ("Hi {{ member.name }", "A '{{' or '{%' is not closed."),
        ("{% load static %}", "Template syntax error"),
    ],
)
def test_mistakes_are_explained(body, message):
    errors = template_errors(body)
    assert any(message in error for error in errors), errors
