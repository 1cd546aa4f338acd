"""What a firing does: each action kind is a small function that calls the owning app's
service. Actions of one firing share a context, so a message can mention the coupon
that the same rule just issued."""

from collections.abc import Callable
from typing import Any

from benefits import services as benefit_services
from members import services as member_services
from members.models import Member
from notifications import services as notification_services
from orders.models import Order

from .models import ActionKind, RuleAction, RuleFiring


def actions_apply(*, firing: RuleFiring, member: Member, order: Order | None) -> dict[str, Any]:
    """Apply the firing rule's actions in order; returns what they produced."""
    produced: dict[str, Any] = {"order": order}
    for action in firing.rule.actions.all():
        APPLY[action.kind](action, firing, member, produced)
    return produced


def _set_tier(action: RuleAction, firing: RuleFiring, member: Member, produced: dict) -> None:
    produced["tier_change"] = member_services.member_set_tier(
        member=member,
        tier=action.tier,
        reason=f"rule {firing.rule.code}",
        allow_downgrade=action.allow_downgrade,
        firing=firing,
    )


def _issue_coupon(action: RuleAction, firing: RuleFiring, member: Member, produced: dict) -> None:
    produced["coupon"] = benefit_services.coupon_issue(
        member=member, template=action.coupon_template, firing=firing
    )


def _award_points(action: RuleAction, firing: RuleFiring, member: Member, produced: dict) -> None:
    benefit_services.points_award(
        member=member, points=action.points, reason=f"rule {firing.rule.code}", firing=firing
    )
    produced["points"] = produced.get("points", 0) + action.points


def _notify(action: RuleAction, firing: RuleFiring, member: Member, produced: dict) -> None:
    notification_services.notification_queue(
        member=member,
        template=action.notification_template,
        context=notification_services.message_context(
            member=member,
            coupon=produced.get("coupon"),
            points=produced.get("points"),
            order=produced.get("order"),
        ),
        firing=firing,
    )


APPLY: dict[str, Callable[[RuleAction, RuleFiring, Member, dict], None]] = {
    ActionKind.SET_TIER: _set_tier,
    ActionKind.ISSUE_COUPON: _issue_coupon,
    ActionKind.AWARD_POINTS: _award_points,
    ActionKind.NOTIFY: _notify,
}
