"""What a condition can test about a member. Each fact is a small function registered
under a key; the engine computes only the facts its rules use, and each data source (the
member row, the orders, a ledger, the engagements, the tags) costs at most one query
however many rules and windows there are."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from benefits import selectors as benefit_selectors
from core.money import money
from members import selectors as member_selectors
from members.models import EngagementEvent, Member, TierChange
from orders import selectors as order_selectors
from orders.models import Order, Refund

from ..selectors import tier_period

MONEY, COUNT, TIER, TAGS, KIND = "money", "count", "tier", "tags", "kind"


@dataclass(frozen=True)
class Fact:
    key: str
    label: str
    kind: str
    compute: Callable[["FactSource", "Need"], Any]
    windowed: bool = False  # needs "over the last N days"
    takes_event_kind: bool = False  # may be narrowed to one engagement kind
    source: str = "member"  # where its data comes from: member, orders, engagements


FACTS: dict[str, Fact] = {}
# The facts about the current tier period.
PERIOD_FACTS = {"period_spend", "period_growth_points", "keep_tier_shortfall"}


@dataclass(frozen=True)
class Need:
    """One value a condition reads: a fact, over how many days, of which engagement kind."""

    fact: str
    days: int | None = None
    event_kind: str | None = None

    @property
    def label(self) -> str:
        """JSON-friendly name, e.g. 'spend_in_days[30]', 'engagements_in_days[7,review]'."""
        qualifiers = [str(q) for q in (self.days, self.event_kind) if q is not None]
        return f"{self.fact}[{','.join(qualifiers)}]" if qualifiers else self.fact

    @property
    def description(self) -> str:
        """For people, e.g. 'spend in the last 30 days' (the admin's "test on a member")."""
        return fact_describe(self.fact, self.days, self.event_kind)


def fact_describe(fact: str, days: int | None = None, event_kind: str | None = None) -> str:
    """A fact's label with its window and engagement kind filled in, in the active
    language: 'spend in the last 30 days', 'engagements in the last 7 days (review)'."""
    definition = FACTS.get(fact)
    label = str(definition.label) if definition else fact
    if days:
        label = label.replace("N", str(days), 1)  # "spend in the last N days", "最近N天消费"
    if event_kind:
        label = f"{label} ({event_kind})"
    return label


def fact(
    key: str,
    label: str,
    kind: str,
    *,
    windowed: bool = False,
    takes_event_kind: bool = False,
    source: str = "member",
):
    def register(compute):
        FACTS[key] = Fact(key, label, kind, compute, windowed, takes_event_kind, source)
        return compute

    return register


class LiveData:
    """The data facts are computed from, read from the database as it is now: for the
    admin's "test on a member" and previews. The engine passes instead the member as they
    stood right after the event (selectors.history.AsOf); simulation, its replay."""

    def __init__(self, *, member: Member, now: datetime) -> None:
        self.member, self.now = member, now

    def totals(self) -> tuple[Decimal, int]:
        return self.member.lifetime_spend, self.member.order_count

    def order_windows(self, windows: set[int]) -> dict[int, tuple[Decimal, int]]:
        return order_selectors.member_order_windows(
            member_id=self.member.pk, windows=windows, now=self.now
        )

    def engagement_counts(self, windows: set[tuple[int, str | None]]) -> dict:
        return member_selectors.member_engagement_counts(
            member_id=self.member.pk, windows=windows, now=self.now
        )

    def points_balance(self) -> int:
        return benefit_selectors.points_balance(member_id=self.member.pk, at=self.now)

    def growth_points(self) -> int:
        return benefit_selectors.growth_balance(member_id=self.member.pk)

    def period_figures(self, member: Member) -> dict[str, Decimal]:
        return tier_period.period_figures(member=member, now=self.now)

    def tags(self) -> frozenset[str]:
        return frozenset(self.member.tags.values_list("code", flat=True))


class FactSource:
    """What facts are computed from: the member (their tier and dates), the moment, the
    triggering event, and `data` (default: LiveData), each source read once and only if a
    fact needs it."""

    def __init__(
        self,
        *,
        member: Member,
        now: datetime,
        needs: set[Need],
        data: Any = None,
        order: Order | None = None,
        refund: Refund | None = None,
        event: EngagementEvent | None = None,
        tier_change: TierChange | None = None,
    ) -> None:
        self.member, self.now, self.needs = member, now, needs
        self.data = data if data is not None else LiveData(member=member, now=now)
        self.order, self.refund, self.event = order, refund, event
        self.tier_change = tier_change

    @property
    def today(self):
        return timezone.localdate(self.now)

    @cached_property
    def totals(self) -> tuple[Decimal, int]:
        """(lifetime spend net of refunds, orders not refunded in full)."""
        return self.data.totals()

    @cached_property
    def order_windows(self) -> dict[int, tuple[Decimal, int]]:
        return self.data.order_windows(
            {n.days for n in self.needs if FACTS[n.fact].source == "orders"}
        )

    @cached_property
    def engagement_counts(self) -> dict[tuple[int, str | None], int]:
        return self.data.engagement_counts(
            {(n.days, n.event_kind) for n in self.needs if FACTS[n.fact].source == "engagements"}
        )

    @cached_property
    def points_balance(self) -> int:
        return self.data.points_balance()

    @cached_property
    def growth_points(self) -> int:
        return self.data.growth_points()

    @cached_property
    def period_figures(self) -> dict[str, Decimal]:
        return self.data.period_figures(self.member)

    @cached_property
    def tags(self) -> frozenset[str]:
        return self.data.tags()


def facts_compute(source: FactSource) -> dict[Need, Any]:
    return {need: FACTS[need.fact].compute(source, need) for need in source.needs}


def _average(total: Decimal, count: int) -> Decimal:
    return money(total / count) if count else money(0)


def _local_date(value: datetime | None):
    return timezone.localdate(value) if value else None


@fact("lifetime_spend", _("lifetime spend (net of refunds)"), MONEY)
def _lifetime_spend(source: FactSource, need: Need) -> Decimal:
    return source.totals[0]


@fact("order_count", _("lifetime number of orders"), COUNT)
def _order_count(source: FactSource, need: Need) -> int:
    return source.totals[1]


@fact("avg_order_value", _("average order value"), MONEY)
def _avg_order_value(source: FactSource, need: Need) -> Decimal:
    return _average(*source.totals)


@fact("spend_in_days", _("spend in the last N days"), MONEY, windowed=True, source="orders")
def _spend_in_days(source: FactSource, need: Need) -> Decimal:
    return source.order_windows[need.days][0]


@fact("orders_in_days", _("orders in the last N days"), COUNT, windowed=True, source="orders")
def _orders_in_days(source: FactSource, need: Need) -> int:
    return source.order_windows[need.days][1]


@fact(
    "avg_order_value_in_days",
    _("average order value in the last N days"),
    MONEY,
    windowed=True,
    source="orders",
)
def _avg_order_value_in_days(source: FactSource, need: Need) -> Decimal:
    return _average(*source.order_windows[need.days])


@fact("order_amount", _("amount of the triggering order"), MONEY)
def _order_amount(source: FactSource, need: Need) -> Decimal | None:
    return source.order.amount if source.order else None


@fact("refund_amount", _("amount of the triggering refund"), MONEY)
def _refund_amount(source: FactSource, need: Need) -> Decimal | None:
    return source.refund.amount if source.refund else None


@fact("growth_points", _("growth points"), COUNT)
def _growth_points(source: FactSource, need: Need) -> int:
    return source.growth_points


@fact("points_balance", _("points balance"), COUNT)
def _points_balance(source: FactSource, need: Need) -> int:
    return source.points_balance


@fact("tier", _("tier"), TIER)
def _tier(source: FactSource, need: Need) -> str | None:
    return source.member.tier.code if source.member.tier else None


@fact("tier_rank", _("tier rank"), COUNT)
def _tier_rank(source: FactSource, need: Need) -> int:
    # A member recorded before any tier existed counts as being on the base tier.
    return source.member.tier.rank if source.member.tier else 0


@fact("days_since_joined", _("days since joining"), COUNT)
def _days_since_joined(source: FactSource, need: Need) -> int:
    return (source.today - _local_date(source.member.joined_at)).days


@fact("days_until_tier_lapses", _("days until the tier lapses"), COUNT)
def _days_until_tier_lapses(source: FactSource, need: Need) -> int | None:
    lapses = _local_date(source.member.tier_expires_at)
    return (lapses - source.today).days if lapses else None


@fact("tags", _("tags"), TAGS)
def _tags(source: FactSource, need: Need) -> frozenset[str]:
    return source.tags


@fact("engagement_kind", _("kind of the triggering engagement"), KIND)
def _engagement_kind(source: FactSource, need: Need) -> str | None:
    return source.event.kind.code if source.event else None


@fact(
    "engagements_in_days",
    _("engagements in the last N days"),
    COUNT,
    windowed=True,
    takes_event_kind=True,
    source="engagements",
)
def _engagements_in_days(source: FactSource, need: Need) -> int:
    return source.engagement_counts[(need.days, need.event_kind)]


@fact("birthday_month", _("birthday month (1-12)"), COUNT)
def _birthday_month(source: FactSource, need: Need) -> int | None:
    return source.member.birthday.month if source.member.birthday else None


@fact("period_spend", _("spend in the current tier period"), MONEY)
def _period_spend(source: FactSource, need: Need) -> Decimal:
    return source.period_figures["spend"]


@fact("period_growth_points", _("growth points earned in the current tier period"), COUNT)
def _period_growth_points(source: FactSource, need: Need) -> int:
    return int(source.period_figures["growth"])


@fact("keep_tier_shortfall", _("still needed to keep the tier (0: kept)"), MONEY)
def _keep_tier_shortfall(source: FactSource, need: Need) -> Decimal:
    return tier_period.keep_shortfall(source.member.tier, source.period_figures)


@fact("previous_tier", _("tier before the change (tier changed trigger)"), TIER)
def _previous_tier(source: FactSource, need: Need) -> str | None:
    change = source.tier_change
    return change.from_tier.code if change and change.from_tier else None


@fact("tier_move", _("ranks moved (tier changed trigger): up > 0, down < 0, renewed 0"), COUNT)
def _tier_move(source: FactSource, need: Need) -> int | None:
    return source.tier_change.rank_change if source.tier_change else None
