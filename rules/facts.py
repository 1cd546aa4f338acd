"""What a condition can test about a member. Each fact is a small function registered
under a key; the engine computes only the facts its rules use, and each data source
(the member row, the orders, the points ledger) costs at most one query however many
rules and windows there are."""

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
from members.models import Member
from orders import selectors as order_selectors
from orders.models import Order

MONEY, COUNT, TIER = "money", "count", "tier"


@dataclass(frozen=True)
class Fact:
    key: str
    label: str
    kind: str
    compute: Callable[["FactSource", int | None], Any]
    windowed: bool = False  # needs "over the last N days"


FACTS: dict[str, Fact] = {}


def fact(key: str, label: str, kind: str, *, windowed: bool = False):
    def register(compute):
        FACTS[key] = Fact(key, label, kind, compute, windowed)
        return compute

    return register


class FactSource:
    """The data facts are computed from, each source loaded once and only if needed."""

    def __init__(
        self, *, member: Member, order: Order | None, now: datetime, windows: set[int]
    ) -> None:
        self.member, self.order, self.now, self.windows = member, order, now, windows

    @cached_property
    def order_windows(self) -> dict[int, tuple[Decimal, int]]:
        return order_selectors.member_order_windows(
            member_id=self.member.pk, windows=self.windows, now=self.now
        )

    @cached_property
    def points_balance(self) -> int:
        return benefit_selectors.points_balance(member_id=self.member.pk)

    def after_effects(self) -> "FactSource":
        """A source for re-reading facts after a rule fired: actions change the member's
        tier and points, never their orders, so the order aggregates are kept."""
        fresh = FactSource(member=self.member, order=self.order, now=self.now, windows=self.windows)
        if "order_windows" in self.__dict__:
            fresh.order_windows = self.order_windows
        return fresh


Need = tuple[str, int | None]  # (fact key, days)


def facts_compute(source: FactSource, needs: set[Need]) -> dict[Need, Any]:
    return {(key, days): FACTS[key].compute(source, days) for key, days in needs}


def fact_label(key: str, days: int | None) -> str:
    """JSON-friendly name of a computed fact, e.g. 'spend_in_days[30]'."""
    return f"{key}[{days}]" if days is not None else key


def _average(total: Decimal, count: int) -> Decimal:
    return money(total / count) if count else money(0)


@fact("lifetime_spend", _("lifetime spend"), MONEY)
def _lifetime_spend(source: FactSource, days: int | None) -> Decimal:
    return source.member.lifetime_spend


@fact("order_count", _("lifetime number of orders"), COUNT)
def _order_count(source: FactSource, days: int | None) -> int:
    return source.member.order_count


@fact("avg_order_value", _("average order value"), MONEY)
def _avg_order_value(source: FactSource, days: int | None) -> Decimal:
    return _average(source.member.lifetime_spend, source.member.order_count)


@fact("spend_in_days", _("spend in the last N days"), MONEY, windowed=True)
def _spend_in_days(source: FactSource, days: int | None) -> Decimal:
    return source.order_windows[days][0]


@fact("orders_in_days", _("orders in the last N days"), COUNT, windowed=True)
def _orders_in_days(source: FactSource, days: int | None) -> int:
    return source.order_windows[days][1]


@fact("avg_order_value_in_days", _("average order value in the last N days"), MONEY, windowed=True)
def _avg_order_value_in_days(source: FactSource, days: int | None) -> Decimal:
    return _average(*source.order_windows[days])


@fact("order_amount", _("amount of the triggering order"), MONEY)
def _order_amount(source: FactSource, days: int | None) -> Decimal | None:
    return source.order.amount if source.order else None


@fact("tier_rank", _("tier rank"), COUNT)
def _tier_rank(source: FactSource, days: int | None) -> int:
    # A member recorded before any tier existed counts as being on the base tier.
    return source.member.tier.rank if source.member.tier else 0


@fact("tier", _("tier"), TIER)
def _tier(source: FactSource, days: int | None) -> str | None:
    return source.member.tier.code if source.member.tier else None


@fact("points_balance", _("points balance"), COUNT)
def _points_balance(source: FactSource, days: int | None) -> int:
    return source.points_balance


@fact("days_since_joined", _("days since joining"), COUNT)
def _days_since_joined(source: FactSource, days: int | None) -> int:
    joined = timezone.localtime(source.member.joined_at).date()
    return (timezone.localtime(source.now).date() - joined).days
