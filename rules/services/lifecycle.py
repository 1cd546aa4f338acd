"""The tier lifecycle. At the end of a period, a member who reached the tier's keep-tier
threshold is renewed for another period; one who did not moves down to the highest tier
the period's figures meet (or one step, as the tier says), never below an operator's
floor. After a refund, a tier whose policy is "at once" is re-checked: if the rule that
granted it no longer holds, the member goes back to the tier they came from. Each move is
a TierChange with its reason, which the `tier_changed` rules are evaluated for."""

import copy
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from core.days import start_of_day
from members import selectors as member_selectors
from members import services as member_services
from members.models import (
    KeepMetric,
    LapseTo,
    Member,
    RefundPolicy,
    Tier,
    TierChange,
    TierChangeCause,
)
from orders.models import Order

from ..engine import evaluate
from ..engine.facts import FactSource, facts_compute
from ..models import ActionKind, Rule, Trigger
from ..selectors.live import rules_live
from ..selectors.tier_period import keeps

# A member many periods behind (a long-missed daily job) catches up in one go, boundedly.
MAX_PERIODS = 100


def _figure_text(tier: Tier, figures: dict[str, Decimal]) -> str:
    what = "spend" if tier.keep_metric == KeepMetric.SPEND else "growth points"
    return f"{what} {figures[tier.keep_metric]:f} of {tier.keep_threshold:f} in the period"


def tier_lapses_due(on_date: date) -> list[int]:
    """Members whose tier lapsed by the start of `on_date`."""
    members = Member.objects.filter(tier_expires_at__lte=start_of_day(on_date))
    return list(members.order_by("pk").values_list("pk", flat=True))


def member_tier_lapse(
    *,
    member: Member,
    on_date: date,
    figures: Callable[[Member], dict[str, Decimal]],
    tiers: list[Tier],
) -> list[TierChange]:
    """Renew or move down a locked member whose tier lapsed by the start of `on_date`,
    period after period if the job is far behind; `figures` gives the member's current
    period's figures, `tiers` are all the tiers. The moves are made in memory: the engine
    saves a batch's at once and evaluates their tier_changed rules (services.batch).
    Running it again changes nothing."""
    cutoff = start_of_day(on_date)
    changes = []
    while (
        member.tier is not None
        and member.tier_expires_at is not None
        and member.tier_expires_at <= cutoff
        and len(changes) < MAX_PERIODS
    ):
        changes.append(_lapse(member, figures(member), tiers))
    return changes


def _lapse(member: Member, figures: dict[str, Decimal], tiers: list[Tier]) -> TierChange:
    tier, ends = member.tier, member.tier_expires_at
    unsaved = {"as_event": False, "save": False}
    if keeps(tier, figures):
        reason = "renewed"
        if tier.keep_threshold is not None:
            reason += f": {_figure_text(tier, figures)}"
        return member_services.member_renew_tier(member=member, reason=reason, **unsaved)
    target = _lapse_target(tier, figures, tiers)
    reason = f"lapsed: {_figure_text(tier, figures)}"
    floor = member_selectors.member_tier_floor(member=member, on_date=timezone.localdate(ends))
    if floor is not None and floor.rank > target.rank:
        target, reason = floor, f"{reason}; kept at the operator's floor"
    if target == tier:
        return member_services.member_renew_tier(member=member, reason=reason, **unsaved)
    return member_services.member_set_tier(
        member=member,
        tier=target,
        reason=reason,
        cause=TierChangeCause.LAPSE,
        allow_downgrade=True,
        at=ends,
        **unsaved,
    )


def _lapse_target(tier: Tier, figures: dict[str, Decimal], tiers: list[Tier]) -> Tier:
    lower = sorted((t for t in tiers if t.rank < tier.rank), key=lambda t: -t.rank)
    if not lower:
        return tier
    if tier.lapse_to == LapseTo.ONE_STEP:
        return lower[0]
    return next((candidate for candidate in lower if keeps(candidate, figures)), lower[-1])


def tier_recheck_after_refund(
    *, member: Member, order: Order, data: Any, at: datetime
) -> TierChange | None:
    """For a locked member whose tier refunds re-check at once: if what moved them to
    their tier no longer holds now that `order` was (partly) refunded, move them back to
    the tier they came from, never below an operator's floor. `data` is the member as
    they stood right after the refund (FactSource data), `at` its moment.

    A tier a rule gave is judged by that rule. A tier set by hand with a floor is judged
    by the live rules that grant it (the operator let automatic moves go down to the
    floor); one set by hand without a floor stands."""
    tier = member.tier
    if tier is None or tier.refund_policy != RefundPolicy.AT_ONCE:
        return None
    upgrade = (
        TierChange.objects.filter(member=member, to_tier=tier)
        .select_related("firing__rule", "firing__order", "from_tier")
        .order_by("-created_at", "-pk")
        .first()
    )
    if upgrade is None or upgrade.from_tier is None or upgrade.from_tier.rank >= tier.rank:
        return None  # the base tier, a renewal or a move down: nothing a refund undoes
    firing = upgrade.firing
    if firing is not None:
        if firing.trigger != Trigger.ORDER_PAID or firing.order_id is None:
            return None
        rules, judged_order = [firing.rule], firing.order
        why = f"rule {firing.rule.code} no longer holds"
    elif upgrade.changed_by_id is not None and member_selectors.member_tier_floor(
        member=member, on_date=timezone.localdate(at)
    ):
        rules, judged_order = rules_granting(tier), order
        why = f"no rule granting {tier.code} holds"
    else:
        return None
    # Judge the rules as they judged the member then: on the tier they came from (their
    # conditions usually say "below this tier"), with the spend and balances of now.
    before = copy.copy(member)
    before.tier, before.tier_expires_at = upgrade.from_tier, None
    source = FactSource(
        member=before, now=at, needs=evaluate.fact_needs(rules), data=data, order=judged_order
    )
    facts = facts_compute(source)
    if any(evaluate.rule_evaluate(rule, facts).matched for rule in rules):
        return None
    return member_services.member_set_tier(
        member=member,
        tier=upgrade.from_tier,
        reason=f"refund of order {order.external_id}: {why}",
        cause=TierChangeCause.REFUND,
        allow_downgrade=True,
        at=at,
        as_event=False,  # evaluated by the engine, in the refund's transaction
    )


def rules_granting(tier: Tier) -> list[Rule]:
    """The live order_paid rules with an action that moves a member to `tier`."""
    return [
        rule
        for rule in rules_live(trigger=Trigger.ORDER_PAID)
        if any(a.kind == ActionKind.SET_TIER and a.tier_id == tier.pk for a in rule.actions.all())
    ]
