"""Two members living through the same events, one evaluated right after each event and
one by a worker that lags, batches, stops halfway and crashes (tests/rules/test_ordering.py,
tests/e2e/test_ordering_worker.py); and everything the events led to, to compare them."""

import itertools
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from unittest import mock
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from benefits.models import Coupon, GrowthEntry, PointsEntry
from benefits.selectors import growth_balance, points_balance
from benefits.services.points import earning_policy_update
from members.models import EngagementEvent, Member, TierChange
from members.services import engagement_record, member_upsert
from notifications.models import Notification
from orders.models import Order, Refund
from orders.services import order_record, refund_record
from rules.models import RuleFiring
from rules.programme.load import programme_load
from rules.services.batch import Batch
from rules.services.evaluation import member_evaluate, waiting_evaluate
from tests.helpers import SEED_PROGRAMME

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=SHANGHAI)

# Besides the seed's upgrades and messages: rules over windows, the tier period, refunds,
# engagements and tags, so that every kind of fact is judged as of its event.
EXTRA_RULES = """
engagement_kinds:
  - {code: check-in, name: 签到, growth_points: 5, daily_cap: 1}
  - {code: review, name: 评价, growth_points: 20, daily_cap: 3}
tags:
  - {code: active, name: 活跃}
rules:
  - code: big-days
    name: 两天内两单消费满800
    trigger: order_paid
    fires: every_time
    conditions:
      all:
        - {fact: spend_in_days, op: gte, value: 800, days: 2}
        - {fact: orders_in_days, op: gte, value: 2, days: 2}
    actions:
      - {type: award_points, points: 30}
  - code: silver-spender
    name: 银卡期内消费满600
    trigger: order_paid
    fires: every_time
    conditions:
      all:
        - {fact: tier_rank, op: gte, value: 1}
        - {fact: period_spend, op: gte, value: 600}
    actions:
      - {type: award_growth_points, points: 7}
  - code: engaged
    name: 两天内互动两次
    trigger: engagement
    fires: once
    conditions:
      all:
        - {fact: engagements_in_days, op: gte, value: 2, days: 2}
    actions:
      - {type: add_tag, tag: active}
      - {type: award_points, points: 11}
  - code: refund-watch
    name: 退款后仍有消费
    trigger: order_refunded
    fires: every_time
    conditions:
      all:
        - {fact: order_count, op: gte, value: 2}
        - {fact: lifetime_spend, op: lt, value: 2000}
        - {fact: points_balance, op: gte, value: 1}
    actions:
      - {type: award_growth_points, points: 3}
"""


def load_ordering_programme() -> None:
    programme_load(SEED_PROGRAMME.read_text(encoding="utf-8"))
    programme_load(EXTRA_RULES)
    earning_policy_update(points_per_unit=Decimal(1), growth_per_unit=Decimal("0.1"))


ORDER = st.tuples(
    st.just("order"),
    st.sampled_from(["0", "300", "500", "800", "1200"]),
    st.integers(1, 40),  # placed this many hours before now, in any order
)
REFUND = st.tuples(st.just("refund"), st.integers(0, 9), st.sampled_from(["0.5", "1"]))
ENGAGE = st.tuples(st.just("engage"), st.sampled_from(["check-in", "review"]), st.integers(1, 40))
# What a lagging, batching or restarted worker does between events: evaluate everything
# waiting; evaluate up to an earlier event; crash after some events (all rolled back).
CATCH_UP = st.tuples(st.just("catch_up"), st.integers(1, 5), st.just(None))
UP_TO = st.tuples(st.just("up_to"), st.integers(0, 20), st.just(None))
CRASH = st.tuples(st.just("crash"), st.integers(0, 6), st.just(None))
EVENTS = st.lists(st.one_of(ORDER, REFUND, ENGAGE, CATCH_UP, UP_TO, CRASH), max_size=14)


CASES = itertools.count()


class Crash(Exception):
    pass


@contextmanager
def crashing_after(events: int):
    """The worker dies after evaluating `events` events of its batch."""
    real = Batch._event
    seen = []

    def event(self, member, occurrence):
        if len(seen) >= events:
            raise Crash
        seen.append(occurrence)
        return real(self, member, occurrence)

    with mock.patch.object(Batch, "_event", event):
        yield


class World:
    """One member living through the events; `lagging` worlds evaluate only when the
    script says so, the others right after each event."""

    def __init__(self, name: str, lagging: bool) -> None:
        self.name, self.lagging = name, lagging
        self.member = member_upsert(external_id=name, name="王先生", phone="13800138000")[0]
        self.orders: list[Order] = []
        self.subjects: list[tuple[str, int]] = [("member_joined", 0)]
        self.count = 0
        if not lagging:
            self.settle()

    def play(self, step) -> None:
        kind, a, b = step
        if kind in ("order", "refund", "engage"):
            getattr(self, kind)(a, b)
            if not self.lagging:
                self.settle()
        elif self.lagging:
            getattr(self, kind)(a)

    def _id(self) -> str:
        self.count += 1
        return f"{self.name}-{self.count}"

    def order(self, amount: str, hours: int) -> None:
        order, _ = order_record(
            external_id=self._id(),
            member=self.name,
            amount=Decimal(amount),
            currency="CNY",
            placed_at=NOW - timedelta(hours=hours),
        )
        self.orders.append(order)
        self.subjects.append(("order_paid", order.pk))

    def refund(self, which: int, share: str) -> None:
        if not self.orders:
            return
        order = Order.objects.get(pk=self.orders[which % len(self.orders)].pk)
        amount = ((order.amount - order.refunded_amount) * Decimal(share)).quantize(Decimal("1"))
        if amount <= 0:
            return
        refund, _ = refund_record(
            order_external_id=order.external_id,
            external_id=self._id(),
            amount=amount,
            refunded_at=NOW - timedelta(minutes=30),
        )
        self.subjects.append(("order_refunded", refund.pk))

    def engage(self, kind: str, hours: int) -> None:
        event, _ = engagement_record(
            external_id=self._id(),
            member=self.name,
            kind=kind,
            occurred_at=NOW - timedelta(hours=hours),
        )
        self.subjects.append(("engagement", event.pk))

    def settle(self) -> None:
        member_evaluate(member_id=self.member.pk)

    def catch_up(self, limit: int) -> None:
        waiting_evaluate(limit=limit)

    def up_to(self, which: int) -> None:
        trigger, subject = self.subjects[which % len(self.subjects)]
        member_evaluate(member_id=self.member.pk, trigger=trigger, subject_id=subject or None)

    def crash(self, events: int) -> None:
        try:
            with crashing_after(events):
                self.settle()
        except Crash:
            pass

    def state(self) -> dict:
        """Everything the events led to, with this world's names taken out."""
        member = Member.objects.select_related("tier").get(pk=self.member.pk)
        names = {f"{self.name}-": "#", self.name: "M"}

        def plain(text) -> str:
            for name, stand_in in names.items():
                text = str(text).replace(name, stand_in)
            return text

        keys = {f"order:{o.pk}": o.external_id for o in Order.objects.filter(member=member)}
        keys |= {f"refund:{r.pk}": r.external_id for r in Refund.objects.filter(member=member)}
        keys |= {
            f"event:{e.pk}": e.external_id for e in EngagementEvent.objects.filter(member=member)
        }
        changes = list(TierChange.objects.filter(member=member).order_by("pk"))
        keys |= {f"tier_change:{c.pk}": f"change {n}" for n, c in enumerate(changes)}

        def ledger(model) -> list:
            rows = model.objects.filter(member=member).select_related("order", "firing__rule")
            # None sorts first, beside text, so that entries alike but for an order or a
            # rule compare.
            return sorted(
                (
                    (
                        e.kind,
                        e.points,
                        plain(e.reason),
                        e.order and plain(e.order.external_id),
                        e.firing and e.firing.rule.code,
                        e.created_at,
                        getattr(e, "expires_at", None),
                    )
                    for e in rows
                ),
                key=lambda row: tuple((value is not None, value) for value in row),
            )

        def when(moment):
            # The base tier is given as the member is created: not an event's effect.
            joined = moment and abs(moment - member.created_at) < timedelta(seconds=1)
            return "when created" if joined else moment

        return {
            "member": (
                member.tier.code,
                when(member.tier_since),
                when(member.tier_period_start),
                member.tier_expires_at,
                member.lifetime_spend,
                member.order_count,
                member.evaluated_seq == member.event_seq,
            ),
            "tags": sorted(member.tags.values_list("code", flat=True)),
            "tier_changes": [
                (c.from_tier_id, c.to_tier_id, plain(c.reason), c.created_at) for c in changes
            ],
            "firings": sorted(
                (
                    f.rule.code,
                    plain(keys.get(f.occurrence_key, f.occurrence_key)),
                    f.order and plain(f.order.external_id),
                    sorted(f.facts.items()),
                )
                for f in RuleFiring.objects.filter(member=member).select_related("rule", "order")
            ),
            "points": ledger(PointsEntry),
            "growth": ledger(GrowthEntry),
            "balances": (points_balance(member_id=member.pk), growth_balance(member_id=member.pk)),
            "coupons": sorted(
                (c.template.code, c.status, c.firing and plain(c.firing.order.external_id))
                for c in Coupon.objects.filter(member=member).select_related(
                    "template", "firing__order"
                )
            ),
            "messages": sorted(
                (n.template.code if n.template else "webhook", n.status, n.body)
                for n in Notification.objects.filter(member=member).select_related("template")
            ),
        }
