"""`verify_balances` recomputes every member's totals from their orders and refunds and
checks the ledgers; it reports each drift and fails, or says there is none."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from benefits.models import PointsEntry
from members.models import Member
from orders.models import Order
from rules.programme.load import programme_load

pytestmark = pytest.mark.django_db

# A point per yuan and a growth point per 10; Silver at 2000 spent, with 500 points.
PROGRAMME = """
earning: {points_per_unit: 1, growth_per_unit: 0.1}
tiers:
  - {code: regular, name: Regular, rank: 0}
  - {code: silver, name: Silver, rank: 1}
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
      - {type: award_points, points: 500}
"""


def verify() -> str:
    out = StringIO()
    call_command("verify_balances", stdout=out)
    return out.getvalue()


def drift() -> str:
    out = StringIO()
    with pytest.raises(CommandError, match="discrepancies found"):
        call_command("verify_balances", stdout=out)
    return out.getvalue()


@pytest.fixture
def history(api) -> Member:
    """2100 spent (Silver, from SO-2), then 100 of SO-2 and all of SO-1 refunded."""
    programme_load(PROGRAMME)
    api.order(external_id="SO-1", amount="1500.00")
    api.order(external_id="SO-2", amount="600.00")
    api.post("/api/v1/orders/SO-2/refunds/", {"external_id": "R-1", "amount": "100.00"})
    api.post("/api/v1/orders/SO-1/refunds/", {"external_id": "R-2", "amount": "1500.00"})
    return Member.objects.get(external_id="M-1")


def test_orders_refunds_and_ledgers_that_agree_have_no_drift(history):
    assert "No drift" in verify()


def test_a_running_total_out_of_step_with_the_orders_is_reported(history):
    # given: a write that bypassed the services
    Member.objects.filter(pk=history.pk).update(lifetime_spend=Decimal("9999.00"))

    # then
    report = drift()
    assert "member M-1: totals say spend 9999.00" in report
    assert "orders say 500.00, 1 orders" in report


def test_a_refunded_amount_that_is_not_its_refunds_is_reported(history):
    Order.objects.filter(external_id="SO-2").update(refunded_amount=Decimal("50.00"))
    assert "order SO-2: refunded amount 50.00, refunds add up to 100.00" in drift()


def test_a_negative_balance_is_reported(history):
    PointsEntry.objects.create(member=history, kind="redeem", points=-100_000, reason="bad")
    assert "member M-1: points balance" in drift()


def test_a_refund_that_took_back_the_wrong_share_is_reported(history):
    # given: one reversal of SO-2 undone behind the ledger's back
    PointsEntry.objects.filter(order__external_id="SO-2", kind="reverse").delete()

    # then: SO-2's 100 of 600 refunded should have taken back 100 of its 600 points
    assert "order SO-2: its refunds should have taken back 100 points, took 0" in drift()
