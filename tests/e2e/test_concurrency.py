"""Invariants 1 and 3 under real concurrency on PostgreSQL: requests in parallel threads,
each with its own connection, evaluating in-process right after its commit."""

from decimal import Decimal

import pytest
from django.utils import timezone

from benefits.models import Coupon
from benefits.selectors import points_balance
from members.models import Member, TierChange
from notifications.models import Notification
from orders.services import order_record
from rules.models import RuleFiring
from rules.services.evaluation import member_evaluate
from tests.helpers import broker_down, erp_client, erp_order, in_parallel

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

MEMBER = {"external_id": "M-E2E", "name": "王先生", "phone": "13800138000"}


def test_twenty_concurrent_orders_upgrade_once_with_exact_totals(silver_at_2000):
    # given
    client = erp_client()

    # when: 20 orders of 100 for one new member at once
    statuses = in_parallel(
        20,
        lambda i: (
            client.post(
                "/api/v1/orders/", erp_order(f"C-{i}", "100.00", MEMBER), format="json"
            ).status_code
        ),
    )

    # then
    assert statuses == [201] * 20
    member = Member.objects.get(external_id="M-E2E")
    assert (member.lifetime_spend, member.order_count) == (Decimal("2000.00"), 20)
    assert member.tier.code == "silver"
    assert TierChange.objects.filter(member=member).count() == 1
    assert RuleFiring.objects.filter(member=member).count() == 1
    assert Coupon.objects.filter(member=member).count() == 1
    assert Notification.objects.filter(member=member).count() == 1
    assert points_balance(member_id=member.pk) == 500
    assert not Member.objects.filter(pending_since__isnull=False).exists()


def test_concurrent_replays_of_one_order_record_it_once(silver_at_2000):
    # given
    client = erp_client()
    payload = erp_order("C-1", "100.00", MEMBER)

    # when
    statuses = in_parallel(
        20, lambda i: client.post("/api/v1/orders/", payload, format="json").status_code
    )

    # then
    assert sorted(statuses) == [200] * 19 + [201]
    member = Member.objects.get(external_id="M-E2E")
    assert (member.lifetime_spend, member.order_count) == (Decimal("100.00"), 1)


def test_concurrent_evaluations_of_one_order_fire_once(silver_at_2000):
    # given: an order whose evaluation was not published
    with broker_down():
        recorded, _ = order_record(
            external_id="C-1",
            member=MEMBER,
            amount=Decimal("2500"),
            currency="CNY",
            placed_at=timezone.now(),
        )

    # when: ten deliveries of its evaluation task at once
    results = in_parallel(
        10,
        lambda i: member_evaluate(
            member_id=recorded.member_id, trigger="order_paid", subject_id=recorded.pk
        ),
    )

    # then
    assert sum(len(result.fired) for result in results) == 1
    assert sum(result.skipped for result in results) == 9
    assert RuleFiring.objects.count() == 1
    assert Coupon.objects.count() == 1
