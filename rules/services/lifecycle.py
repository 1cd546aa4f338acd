"""The tier lifecycle. At the end of a period, a member who reached the tier's keep-tier
threshold is renewed for another period; one who did not moves down to the highest tier
the period's figures meet (or one step, as the tier says), never below an operator's
floor. After a refund, a tier whose policy is "at once" is re-checked: if the rule that
granted it no longer holds, the member goes back to the tier they came from. Each move is
a TierChange with its reason, which the `tier_changed` rules are evaluated for."""

import copy
from datetime import date
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from core.days import start_of_day
from members import services as member_services
from members.models import KeepMetric, LapseTo, Member, RefundPolicy, Tier, TierChange
from orders.models import Order

from .. import engine
from ..facts import FactSource, facts_compute
from ..models import Trigger
from ..selectors.tier_period import keeps, period_figures

# A member many periods behind (a long-missed daily job) catches up in one go, boundedly.
MAX_PERIODS = 100


def _figure_text(tier: Tier, figures: dict[str, Decimal]) -> str:
    what = "spend" if tier.keep_metric == KeepMetric.SPEND else "growth points"
    return f"{what} {figures[tier.keep_metric]:f} of {tier.keep_threshold:f} in the period"


def tier_lapses_due(on_date: date) -> list[int]:
    """Members whose tier lapsed by the start of `on_date`."""
    members = Member.objects.filter(tier_expires_at__lte=start_of_day(on_date))
    return list(members.order_by("pk").values_list("pk", flat=True))


def member_tier_lapse(*, member_id: int, on_date: date) -> list[TierChange]:
    """Renew or move down a member whose tier lapsed by the start of `on_date`, period
    after period if the job is far behind. Running it again changes nothing."""
    cutoff = start_of_day(on_date)
    changes = []
    with transaction.atomic():
        member = member_services.member_lock(member_id=member_id)
        while (
            member.tier is not None
            and member.tier_expires_at is not None
            and member.tier_expires_at <= cutoff
            and len(changes) < MAX_PERIODS
        ):
            changes.append(_lapse(member))
    return changes


def _lapse(member: Member) -> TierChange:
    tier, ends = member.tier, member.tier_expires_at
    figures = period_figures(member=member)
    if keeps(tier, figures):
        reason = "renewed"
        if tier.keep_threshold is not None:
            reason += f": {_figure_text(tier, figures)}"
        return member_services.member_renew_tier(member=member, reason=reason)
    target = _lapse_target(tier, figures)
    reason = f"lapsed: {_figure_text(tier, figures)}"
    floor = member_services.member_tier_floor(member=member, on_date=timezone.localdate(ends))
    if floor is not None and floor.rank > target.rank:
        target, reason = floor, f"{reason}; kept at the operator's floor"
    if target == tier:
        return member_services.member_renew_tier(member=member, reason=reason)
    return member_services.member_set_tier(
        member=member, tier=target, reason=reason, allow_downgrade=True, at=ends
    )


def _lapse_target(tier: Tier, figures: dict[str, Decimal]) -> Tier:
    lower = list(Tier.objects.filter(rank__lt=tier.rank).order_by("-rank"))
    if not lower:
        return tier
    if tier.lapse_to == LapseTo.ONE_STEP:
        return lower[0]
    return next((candidate for candidate in lower if keeps(candidate, figures)), lower[-1])


def tier_recheck_after_refund(*, member: Member, order: Order) -> TierChange | None:
    """For a locked member whose tier refunds re-check at once: if the rule firing that
    moved them to their tier no longer holds now that `order` was (partly) refunded, move
    them back to the tier they came from."""
    tier = member.tier
    if tier is None or tier.refund_policy != RefundPolicy.AT_ONCE:
        return None
    upgrade = (
        TierChange.objects.filter(member=member, to_tier=tier)
        .select_related("firing__rule", "firing__order", "from_tier")
        .order_by("-created_at", "-pk")
        .first()
    )
    if upgrade is None or upgrade.firing is None or upgrade.from_tier is None:
        return None  # set by hand, renewed, or the base tier: nothing a refund undoes
    if upgrade.from_tier.rank >= tier.rank:
        return None
    firing = upgrade.firing
    if firing.trigger != Trigger.ORDER_PAID or firing.order_id is None:
        return None
    rule = firing.rule
    # Judge the rule as it judged the member then: on the tier they came from (its
    # conditions usually say "below this tier"), with today's spend and balances.
    before = copy.copy(member)
    before.tier, before.tier_expires_at = upgrade.from_tier, None
    source = FactSource(
        member=before, now=timezone.now(), needs=engine.fact_needs([rule]), order=firing.order
    )
    if engine.rule_evaluate(rule, facts_compute(source)).matched:
        return None
    return member_services.member_set_tier(
        member=member,
        tier=upgrade.from_tier,
        reason=f"refund of order {order.external_id}: rule {rule.code} no longer holds",
        allow_downgrade=True,
    )
