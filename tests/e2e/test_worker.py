"""The whole path on the real services: API -> PostgreSQL -> Redis -> Celery worker."""

from datetime import timedelta
from decimal import Decimal

import pytest

from benefits.models import Coupon, PointsEntry
from benefits.selectors import points_balance
from members.models import Member, TierChange
from notifications.models import Notification
from orders.models import Order
from rules.models import RuleFiring
from tests.helpers import erp_client, erp_order, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

MEMBER = {"external_id": "M-E2E", "name": "王先生", "phone": "13800138000"}


def evaluated(external_id: str) -> bool:
    order = Order.objects.select_related("member").filter(external_id=external_id).first()
    return order is not None and order.is_evaluated


def settled() -> bool:
    """Every event evaluated and every message out of the queue."""
    return (
        not Member.objects.filter(pending_since__isnull=False).exists()
        and not Notification.objects.filter(status__in=["queued", "sending"]).exists()
    )


def effects(member: Member) -> tuple[int, int, int, int, int]:
    return (
        RuleFiring.objects.filter(member=member).count(),
        TierChange.objects.filter(member=member).count(),
        Coupon.objects.filter(member=member).count(),
        PointsEntry.objects.filter(member=member).count(),
        Notification.objects.filter(member=member).count(),
    )


def test_two_orders_move_a_new_member_to_silver_through_a_real_worker(
    celery_worker, silver_at_2000
):
    # given
    client = erp_client()

    # when: 1500, then 600
    assert (
        client.post(
            "/api/v1/orders/", erp_order("E2E-1", "1500.00", MEMBER), format="json"
        ).status_code
        == 201
    )
    wait_until(lambda: evaluated("E2E-1"))
    member = Member.objects.get(external_id="M-E2E")
    assert member.tier.code == "regular"
    assert (
        client.post("/api/v1/orders/", erp_order("E2E-2", "600.00"), format="json").status_code
        == 201
    )
    wait_until(lambda: evaluated("E2E-2") and settled())

    # then: Silver, one coupon, 500 points, one SMS naming the member and the tier
    member.refresh_from_db()
    assert member.tier.code == "silver"
    assert (member.lifetime_spend, member.order_count) == (Decimal("2100.00"), 2)
    upgrade = TierChange.objects.get(member=member)
    coupon = Coupon.objects.get(member=member)
    assert (coupon.min_spend, coupon.amount_off) == (Decimal(300), Decimal(50))
    assert coupon.expires_at - coupon.issued_at == timedelta(days=15)
    # the upgrade is dated by the order that crossed the line; the coupon by its issue
    assert upgrade.created_at == Order.objects.get(external_id="E2E-2").placed_at
    assert coupon.issued_at > upgrade.created_at
    assert points_balance(member_id=member.pk) == 500
    sms = Notification.objects.get(member=member)
    assert (sms.channel, sms.status) == ("sms", "sent")
    assert "王先生" in sms.body and "银卡会员" in sms.body and "9.5折" in sms.body

    # when: a further order
    assert (
        client.post("/api/v1/orders/", erp_order("E2E-3", "300.00"), format="json").status_code
        == 201
    )
    wait_until(lambda: evaluated("E2E-3") and settled())

    # then: nothing more
    assert effects(member) == (1, 1, 1, 1, 1)
    member.refresh_from_db()
    assert member.lifetime_spend == Decimal("2400.00")


def test_a_task_delivered_twice_applies_its_effects_once(celery_worker, silver_at_2000):
    # given: an order, evaluated
    client = erp_client()
    client.post("/api/v1/orders/", erp_order("E2E-1", "2500.00", MEMBER), format="json")
    wait_until(lambda: evaluated("E2E-1") and settled())
    member = Member.objects.get(external_id="M-E2E")
    order_id = Order.objects.get(external_id="E2E-1").pk

    # when: the broker redelivers its evaluation, and the sweeper publishes it again
    from rules.tasks import evaluate

    for _ in range(2):
        evaluate.delay(member.pk, "order_paid", order_id)
    marker = client.post("/api/v1/orders/", erp_order("E2E-2", "1.00"), format="json")
    assert marker.status_code == 201
    wait_until(lambda: evaluated("E2E-2") and settled())

    # then
    assert effects(member) == (1, 1, 1, 1, 1)
