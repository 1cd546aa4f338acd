"""A rule's "Test on a member" page names each fact by its label, in the operator's
language, never by its code."""

import re
from datetime import timedelta
from decimal import Decimal
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from orders.services import order_record
from tests.factories import MemberFactory, RuleFactory, action, condition

pytestmark = pytest.mark.django_db

CODES = ["growth_points", "lifetime_spend", "spend_in_days", "orders_in_days"]


@pytest.fixture
def rule():
    rule = RuleFactory(code="big-spender", name="Big spender", is_active=False)
    condition(rule, "lifetime_spend", "gte", "2000")
    condition(rule, "spend_in_days", "gte", "500", days=30)
    condition(rule, "orders_in_days", "gte", "2", days=7)
    condition(rule, "growth_points", "gte", "100")
    action(rule, "award_points", points=500)
    return rule


@pytest.fixture
def member():
    member = MemberFactory(external_id="M-RICH")
    order_record(
        external_id="SO-1",
        member="M-RICH",
        amount=Decimal("3000.00"),
        currency="CNY",
        placed_at=timezone.now() - timedelta(days=1),
    )
    return member


def facts_table(html: str) -> dict[str, str]:
    """The page's "Facts" table: each row's name and value, as shown."""
    table = re.search(r"<h3>[^<]*</h3>\s*<table>(.*?)</table>", html, re.S).group(1)
    rows = re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", table, re.S)
    return {unescape(name).strip(): unescape(value).strip() for name, value in rows}


def test_the_test_page_names_facts_by_their_labels(admin_client, rule, member):
    # when
    response = admin_client.get(
        reverse("admin:rules_rule_test", args=[rule.pk]), {"member": "M-RICH"}
    )

    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert facts_table(html) == {
        "growth points": "0",  # no earning policy: nothing earned
        "lifetime spend (net of refunds)": "3000.00",
        "orders in the last 7 days": "1",
        "spend in the last 30 days": "3000.00",
    }
    assert "spend in the last 30 days ≥ 500" in html  # the condition, too
    assert [code for code in CODES if code in html] == []


def test_the_test_page_names_facts_in_the_operators_language(admin_client, rule, member):
    # when
    response = admin_client.get(
        reverse("admin:rules_rule_test", args=[rule.pk]),
        {"member": "M-RICH"},
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )

    # then
    html = response.content.decode()
    names = set(facts_table(html))
    assert "成长值" in names
    assert not names & {"growth points", *CODES}
    assert [code for code in CODES if code in html] == []
