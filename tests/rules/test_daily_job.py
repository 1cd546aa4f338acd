"""The daily job works set-based: a batch of members whose tiers and points lapse costs
the same number of statements however many members it holds."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from benefits.models import PointsEntry
from members.models import Member, Tier
from notifications.models import Notification
from orders.models import Order
from rules.programme.load import programme_load
from rules.selectors.live import rules_active
from rules.services.daily import clock_triggers_run

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")

# Silver lasts a year and is kept by spending 1000 in it; a renewal and a move down each
# send a message.
PROGRAMME = """
tiers:
  - {code: regular, name: Regular, rank: 0}
  - {code: silver, name: Silver, rank: 1, validity: days, validity_days: 365,
     keep_threshold: 1000}
notification_templates:
  - {code: tier-renewed-sms, channel: sms, body: "{{ tier.name }} renewed"}
  - {code: tier-lapsed-sms, channel: sms, body: "Now {{ tier.name }}"}
rules:
  - code: tier-renewed
    name: Tier renewed
    trigger: tier_changed
    fires: every_time
    conditions:
      all:
        - {fact: tier_move, op: eq, value: 0}
        - {fact: tier_rank, op: gt, value: 0}
    actions:
      - {type: notify, template: tier-renewed-sms}
  - code: tier-lapsed
    name: Tier lapsed
    trigger: tier_changed
    fires: every_time
    conditions:
      all:
        - {fact: tier_move, op: lt, value: 0}
    actions:
      - {type: notify, template: tier-lapsed-sms}
"""


@pytest.fixture
def programme() -> None:
    programme_load(PROGRAMME)


def due_members(count: int, day: date) -> list[Member]:
    """Silver members whose year ends at the start of `day`, half of them having spent
    enough to keep it, each with 100 points lapsing then too."""
    lapses_at = datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)
    since = lapses_at - timedelta(days=365)
    silver = Tier.objects.get(code="silver")
    members = Member.objects.bulk_create(
        Member(
            external_id=f"D-{day}-{n}",
            phone="13800138000",
            tier=silver,
            tier_since=since,
            tier_period_start=since,
            tier_expires_at=lapses_at,
            event_seq=1,
            evaluated_seq=1,
            pending_since=None,
        )
        for n in range(count)
    )
    Order.objects.bulk_create(
        Order(
            external_id=f"DO-{member.pk}",
            member=member,
            amount=Decimal(1500 if n % 2 else 200),
            currency="CNY",
            placed_at=since + timedelta(days=100),
            payload_hash="-",
        )
        for n, member in enumerate(members)
    )
    PointsEntry.objects.bulk_create(
        PointsEntry(member=m, kind="earn", points=100, reason="-", expires_at=lapses_at)
        for m in members
    )
    return members


def run_day(day: date) -> tuple[dict, int]:
    at = datetime(day.year, day.month, day.day, 0, 30, tzinfo=SHANGHAI)
    with time_machine.travel(at, tick=False), CaptureQueriesContext(connection) as queries:
        done = clock_triggers_run(day)
    return done, len(queries.captured_queries)


def test_a_batch_of_lapses_costs_the_same_statements_for_20_members_as_for_60(programme):
    # given, when: a day with 20 members due, and the next with 60
    first, second = date(2026, 1, 1), date(2026, 1, 2)
    due_members(20, first)
    large = due_members(60, second)
    rules_active()  # loaded once per process, before either day
    small_done, small_statements = run_day(first)
    large_done, large_statements = run_day(second)

    # then: everyone settled, renewed or moved down with a message, points
    # written off; and not one statement more for three times the members
    assert small_done == {"points_expiry": 20, "tier_lapse": 20}
    assert large_done == {"points_expiry": 60, "tier_lapse": 60}
    moved = Member.objects.filter(pk__in=[m.pk for m in large])
    assert sorted(moved.values_list("tier__code", flat=True)) == ["regular"] * 30 + ["silver"] * 30
    assert Notification.objects.filter(member__in=moved).count() == 60
    assert PointsEntry.objects.filter(member__in=moved, kind="expire").count() == 60
    assert large_statements == small_statements
