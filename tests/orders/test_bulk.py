"""orders.bulk: history recorded silently (the fingerprint the API would give, the
indexes set aside for a first load) and the members' totals recomputed."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction

from core.idempotency import payload_fingerprint
from members.models import Member
from orders import bulk
from orders.models import Order
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def _history(member: Member, external_id: str, amount: str, placed_at: datetime):
    return bulk.HistoricOrder(
        external_id, member.pk, member.external_id, Decimal(amount), "CNY", placed_at
    )


def test_the_fingerprint_is_the_apis():
    rng = random.Random(7)
    zones = [UTC, ZoneInfo("Asia/Shanghai"), ZoneInfo("America/New_York")]
    for n in range(500):
        order = bulk.HistoricOrder(
            rng.choice(["SO", "订单-", 'a"b\\', "x\u2028"]) + str(n),
            n,
            rng.choice(["M", "会员", "m'"]) + str(rng.randrange(10**6)),
            Decimal(rng.randrange(10**8)) / rng.choice([1, 10, 100]),
            rng.choice(["CNY", "USD"]),
            datetime(2024, 1, 1, tzinfo=rng.choice(zones))
            + timedelta(seconds=rng.randrange(10**8), microseconds=rng.choice([0, 5])),
        )
        assert bulk.order_fingerprint(order) == payload_fingerprint(
            external_id=order.external_id,
            member=order.member,
            amount=order.amount,
            currency=order.currency,
            placed_at=order.placed_at,
        )


def test_orders_recorded_with_event_number_zero_and_the_totals_recomputed():
    spent, idle = MemberFactory(), MemberFactory(lifetime_spend=5, order_count=1)
    at = datetime(2025, 5, 1, 10, tzinfo=UTC)
    bulk.orders_record_silently(
        [_history(spent, "H-1", "100.50", at), _history(spent, "H-2", "0", at + timedelta(1))],
        [],
    )
    assert set(Order.objects.values_list("seq", flat=True)) == {0}
    assert bulk.members_totals_recompute([spent.pk, idle.pk, spent.pk]) == 2
    spent.refresh_from_db()
    idle.refresh_from_db()
    assert (spent.lifetime_spend, spent.order_count) == (Decimal("100.50"), 2)
    assert spent.last_order_at == at + timedelta(1)
    assert (idle.lifetime_spend, idle.order_count, idle.last_order_at) == (0, 0, None)


def test_an_order_recorded_meanwhile_leaves_the_others_to_be_recorded():
    member = MemberFactory()
    at = datetime(2025, 5, 1, 10, tzinfo=UTC)
    bulk.orders_record_silently([_history(member, "H-1", "10", at)], [])
    bulk.orders_record_silently(
        [_history(member, "H-1", "10", at), _history(member, "H-2", "20", at)], []
    )
    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["H-1", "H-2"]


def _secondary_indexes() -> set[str]:
    """The orders' indexes but the primary key and the unique ones, and foreign keys."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass "
            "AND NOT indisunique AND NOT indisprimary UNION ALL SELECT pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
            [Order._meta.db_table] * 2,
        )
        return {name for (name,) in cursor.fetchall()}


@pytest.mark.postgres
def test_a_first_load_sets_the_indexes_aside_and_builds_them_again():
    before = _secondary_indexes()
    member = MemberFactory()
    with transaction.atomic():
        statements = bulk.orders_indexes_set_aside()
        assert len(statements) == len(before) >= 4
        assert any("FOREIGN KEY" in definition for definition in before)
        assert _secondary_indexes() == set()
        bulk.orders_record_silently(
            [_history(member, "H-1", "10", datetime(2025, 1, 1, tzinfo=UTC))], []
        )
        bulk.orders_indexes_rebuild(statements)
        assert _secondary_indexes() == before


@pytest.mark.postgres
def test_indexes_set_aside_come_back_when_the_import_is_rolled_back():
    before = _secondary_indexes()
    with transaction.atomic():
        assert bulk.orders_indexes_set_aside()
        transaction.set_rollback(True)
    assert _secondary_indexes() == before


def test_with_orders_recorded_it_is_no_first_load():
    member = MemberFactory()
    bulk.orders_record_silently(
        [_history(member, "H-1", "10", datetime(2025, 1, 1, tzinfo=UTC))], []
    )
    with pytest.raises(bulk.NotAFirstLoad, match="There are orders already"):
        bulk.orders_indexes_set_aside()


def test_every_member_with_orders_recomputed_in_one_pass():
    first, second, none = MemberFactory(), MemberFactory(), MemberFactory(lifetime_spend=0)
    at = datetime(2025, 5, 1, 10, tzinfo=UTC)
    bulk.orders_record_silently(
        [
            _history(first, "H-1", "10.25", at),
            _history(first, "H-2", "5", at + timedelta(1)),
            _history(second, "H-3", "7", at),
        ],
        [],
    )
    assert bulk.members_totals_recompute(None) == 2
    totals = dict(
        Member.objects.values_list("pk", "lifetime_spend").filter(pk__in=[first.pk, second.pk])
    )
    assert totals == {first.pk: Decimal("15.25"), second.pk: Decimal("7")}
    assert Member.objects.get(pk=first.pk).order_count == 2
    assert Member.objects.get(pk=none.pk).order_count == 0
