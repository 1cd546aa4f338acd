"""Facts as of each event: however far behind the evaluation is, each event is judged on
the member as they stood right after it was recorded, a member's events are evaluated in
the order they were recorded, and so the outcome is the one an evaluation right after
each event would have had."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings

from benefits.models import Coupon
from benefits.selectors import growth_balance, points_balance
from members.models import Member
from members.services import engagement_record, member_upsert
from orders.services import order_record, refund_record
from rules.models import RuleFiring
from rules.programme.load import programme_load
from rules.services.evaluation import waiting_evaluate
from tests.ordering import CASES, EVENTS, NOW, World, load_ordering_programme

pytestmark = pytest.mark.django_db

# For the examples: growth points at 1 per 10 yuan and for a review; Silver at 2000 spent
# (or 500 growth points), with 500 points and a coupon.
UPGRADE = """
earning: {growth_per_unit: 0.1}
tiers:
  - {code: regular, name: Regular, rank: 0}
  - {code: silver, name: Silver, rank: 1}
engagement_kinds:
  - {code: review, name: Review, growth_points: 20}
coupon_templates:
  - {code: silver-gift, name: Silver gift, min_spend: 300, amount_off: 50, valid_days: 15}
rules:
  - code: silver-at-2000
    name: Silver at 2000
    trigger: order_paid
    fires: every_time
    conditions:
      all:
        - any:
            - {fact: lifetime_spend, op: gte, value: 2000}
            - {fact: growth_points, op: gte, value: 500}
        - {fact: tier_rank, op: lt, value: 1}
    actions:
      - {type: set_tier, tier: silver}
      - {type: issue_coupon, template: silver-gift}
      - {type: award_points, points: 500}
"""


@pytest.fixture
def upgrade() -> None:
    programme_load(UPGRADE)


@pytest.fixture
def programme(db) -> None:
    """The seed programme and more (tests/ordering.py): a realistic one, for the property
    test."""
    load_ordering_programme()


def test_a_backlog_is_evaluated_as_it_happened(upgrade):
    # given: the worker is stopped; five orders of 500 for a new member, then a refund
    # of the first in full
    member = {"external_id": "M-1", "name": "王先生", "phone": "13800138000"}
    orders = [
        order_record(
            external_id=f"SO-{n}",
            member=member if n == 1 else "M-1",
            amount=Decimal(500),
            currency="CNY",
            placed_at=NOW - timedelta(hours=6 - n),
        )[0]
        for n in range(1, 6)
    ]
    refund_record(order_external_id="SO-1", external_id="RF-1", amount=Decimal(500))

    # when: the worker starts
    evaluated, _ = waiting_evaluate()

    # then: the upgrade belongs to the fourth order, which crossed 2000, with the facts
    # as they stood right after it; the refund of the first takes back only its own
    # growth points, and the member, still at 2000, keeps Silver, the points and coupon
    assert evaluated.events == 7  # joining, five orders, the refund
    firing = RuleFiring.objects.get(rule__code="silver-at-2000")
    assert firing.order == orders[3]
    assert firing.facts == {"lifetime_spend": "2000.00", "growth_points": 200, "tier_rank": 0}
    member = Member.objects.select_related("tier").get(external_id="M-1")
    assert (member.tier.code, member.lifetime_spend, member.order_count) == (
        "silver",
        Decimal("2000.00"),
        4,
    )
    assert points_balance(member_id=member.pk) == 500
    assert Coupon.objects.get(member=member).status == "issued"
    assert growth_balance(member_id=member.pk) == 250 - 50


def test_an_engagement_waiting_behind_orders_sees_only_the_orders_before_it(upgrade):
    # given: an order of 1500, an engagement, then an order of 600, all waiting
    member_upsert(external_id="M-1")
    record = {"currency": "CNY", "member": "M-1"}
    order_record(external_id="SO-1", amount=Decimal(1500), placed_at=NOW, **record)
    engagement_record(external_id="EV-1", member="M-1", kind="review", occurred_at=NOW)
    order_record(external_id="SO-2", amount=Decimal(600), placed_at=NOW, **record)
    programme_load(
        "rules:\n  - {code: engaged-big, name: x, trigger: engagement, conditions: "
        "{all: [{fact: lifetime_spend, op: gte, value: 2000}]}, "
        "actions: [{type: award_points, points: 1}]}\n"
    )

    # when
    waiting_evaluate()

    # then: the engagement saw 1500 of spend, not the 2100 recorded after it
    assert not RuleFiring.objects.filter(rule__code="engaged-big").exists()
    assert RuleFiring.objects.get(rule__code="silver-at-2000").order.external_id == "SO-2"


# --- any interleaving ends where evaluating each event at once ends ------------------


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(script=EVENTS)
def test_any_interleaving_ends_as_evaluating_each_event_at_once(programme, script):
    case = next(CASES)  # examples share the test's database: new members each time
    with time_machine.travel(NOW, tick=False):
        # given: the same events for two members: one evaluated right after each event,
        # one by a worker that lags, batches, stops halfway and crashes as the script says
        at_once = World(f"A{case}", lagging=False)
        lagging = World(f"L{case}", lagging=True)

        # when
        for step in script:
            at_once.play(step)
            lagging.play(step)
        lagging.settle()  # the worker catches up in the end

        # then
        assert lagging.state() == at_once.state()
