"""What a firing does: each action kind is a small function that calls the owning app's
service. Actions of one firing share a context, so a message can mention the coupon the
same rule just issued.

Every action that changes a balance has a reversal when the order that caused it is
refunded: points and growth points are taken back in proportion to the share refunded,
and unused coupons are voided once the order is refunded in full (benefits/services/
reversals.py). A tier is not a balance: after a refund it follows the tier's refund
policy (services/lifecycle.py)."""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from benefits.models import EarningPolicy
from benefits.services import coupons as coupon_services
from benefits.services import growth as growth_services
from benefits.services import points as points_services
from members import services as member_services
from members.models import Member, TierChange
from notifications.models import Purpose
from notifications.services.messages import message_context
from notifications.services.outbox import notification_queue, webhook_queue
from orders.models import Order

from ..models import ActionKind, RuleAction, RuleFiring

logger = logging.getLogger(__name__)


@dataclass
class Effects:
    """What a firing's actions produced so far. `at` is the moment of the event that
    caused the firing: a tier period starts, and points and growth points count, from
    then, however late the evaluation ran."""

    order: Order | None
    send_notifications: bool
    policy: EarningPolicy
    at: datetime
    coupon: Any = None
    points: int = 0
    tier_changes: list[TierChange] = field(default_factory=list)
    save: bool = True  # False: messages are built, for the caller to save in bulk
    messages: list = field(default_factory=list)


# The fact sources (see facts.FactSource) each kind of action changes.
TOUCHES = {
    ActionKind.AWARD_POINTS: "points_balance",
    ActionKind.AWARD_GROWTH_POINTS: "growth_points",
    ActionKind.ADD_TAG: "tags",
    ActionKind.REMOVE_TAG: "tags",
}


def facts_touched(actions: list[RuleAction]) -> set[str]:
    return {TOUCHES[action.kind] for action in actions if action.kind in TOUCHES}


def messages_only(actions: list[RuleAction]) -> bool:
    """Whether the actions only send transactional messages or webhooks: such a firing
    changes no fact a later rule reads, so the engine writes it, and its messages, in
    bulk with the rest of its batch. (Marketing messages are counted against a daily
    cap as they are saved, so they are written one by one.)"""
    return all(
        action.kind == ActionKind.WEBHOOK
        or (
            action.kind == ActionKind.NOTIFY
            and action.notification_template.purpose == Purpose.TRANSACTIONAL
        )
        for action in actions
    )


def actions_apply(
    *,
    firing: RuleFiring,
    actions: list[RuleAction],
    member: Member,
    order: Order | None,
    policy: EarningPolicy,
    at: datetime,
    send_notifications: bool = True,
    save: bool = True,
) -> Effects:
    """Apply the firing rule's actions in order. With `save=False` (for messages_only
    actions) nothing is written: the messages are left in `Effects.messages`."""
    effects = Effects(
        order=order, send_notifications=send_notifications, policy=policy, at=at, save=save
    )
    for action in actions:
        APPLY[action.kind](action, firing, member, effects)
    return effects


def _reason(firing: RuleFiring) -> str:
    return f"rule {firing.rule.code}"


def _set_tier(action: RuleAction, firing: RuleFiring, member: Member, effects: Effects) -> None:
    change = member_services.member_set_tier(
        member=member,
        tier=action.tier,
        reason=_reason(firing),
        allow_downgrade=action.allow_downgrade,
        firing=firing,
        at=effects.at,
        as_event=False,  # the engine evaluates its tier_changed rules itself
    )
    if change is not None:
        effects.tier_changes.append(change)


def _issue_coupon(action: RuleAction, firing: RuleFiring, member: Member, effects: Effects) -> None:
    try:
        effects.coupon = coupon_services.coupon_issue(
            member=member, template=action.coupon_template, firing=firing
        )
    except coupon_services.CouponUnavailable as exc:
        # A spent budget or a member's limit is not an error: the firing stands and its
        # other actions still run, only without this coupon.
        logger.info(
            "member #%s: no coupon of %s (%s)", member.pk, action.coupon_template.code, exc.reason
        )


def _award_points(action: RuleAction, firing: RuleFiring, member: Member, effects: Effects) -> None:
    points_services.points_award(
        member=member,
        points=action.points,
        reason=_reason(firing),
        firing=firing,
        policy=effects.policy,
        at=effects.at,
    )
    effects.points += action.points


def _award_growth(action: RuleAction, firing: RuleFiring, member: Member, effects: Effects) -> None:
    growth_services.growth_award(
        member=member, points=action.points, reason=_reason(firing), firing=firing, at=effects.at
    )


def _notify(action: RuleAction, firing: RuleFiring, member: Member, effects: Effects) -> None:
    message = notification_queue(
        member=member,
        template=action.notification_template,
        channel=action.channel or action.notification_template.channel,
        context=message_context(
            member=member, coupon=effects.coupon, points=effects.points, order=effects.order
        ),
        firing=firing,
        suppressed="messages were switched off for this job"
        if not effects.send_notifications
        else "",
        save=effects.save,
    )
    effects.messages.append(message)


def _tag(add: bool):
    def apply(action: RuleAction, firing: RuleFiring, member: Member, effects: Effects) -> None:
        member_services.member_tag(member=member, tag=action.tag, add=add)

    return apply


def _webhook(action: RuleAction, firing: RuleFiring, member: Member, effects: Effects) -> None:
    message = webhook_queue(
        member=member,
        url=action.webhook_url,
        event={
            "type": "rule.fired",
            "rule": {
                "code": firing.rule.code,
                "name": firing.rule.name,
                "version": firing.rule_version,
            },
            "member": member.external_id,
            "tier": member.tier.code if member.tier else None,
            "trigger": firing.trigger,
            "order": effects.order.external_id if effects.order else None,
            "coupon": effects.coupon.code if effects.coupon else None,
            "points": effects.points,
            "fired_at": timezone.localtime(firing.fired_at).isoformat(),
        },
        firing=firing,
        save=effects.save,
    )
    effects.messages.append(message)


APPLY: dict[str, Callable[[RuleAction, RuleFiring, Member, Effects], None]] = {
    ActionKind.SET_TIER: _set_tier,
    ActionKind.ISSUE_COUPON: _issue_coupon,
    ActionKind.AWARD_POINTS: _award_points,
    ActionKind.AWARD_GROWTH_POINTS: _award_growth,
    ActionKind.NOTIFY: _notify,
    ActionKind.ADD_TAG: _tag(add=True),
    ActionKind.REMOVE_TAG: _tag(add=False),
    ActionKind.WEBHOOK: _webhook,
}
