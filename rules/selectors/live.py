"""The programme as the engine runs it: each trigger's active rules, with their conditions
and actions, as last loaded by this process. Only a speed-up: every batch first asks the
database (one small aggregate) whether they changed, so no process ever evaluates with
rules it has not seen."""

from datetime import datetime

from django.db.models import Count, Max, Prefetch, Sum
from django.utils import timezone

from ..models import Rule, RuleAction, RuleCondition

_LOADED: dict[str, tuple[dict, dict[str, list[Rule]]]] = {}


def rules_active() -> dict[str, list[Rule]]:
    """Every active rule by trigger, in the order they apply (priority, then code), with
    their conditions and actions."""
    active = Rule.objects.filter(is_active=True)
    # Which rules (ids are never reused) at which versions (every save bumps one).
    version = active.aggregate(
        n=Count("pk"), ids=Sum("pk"), versions=Sum("version"), changed=Max("updated_at")
    )
    cached = _LOADED.get("all")
    if cached is None or cached[0] != version:
        by_trigger: dict[str, list[Rule]] = {}
        rules = (
            active.order_by("priority", "code")
            .select_related("engagement_kind")
            .prefetch_related(
                Prefetch("conditions", queryset=RuleCondition.objects.select_related("event_kind")),
                Prefetch(
                    "actions",
                    queryset=RuleAction.objects.select_related(
                        "tier", "coupon_template", "notification_template", "tag"
                    ),
                ),
            )
        )
        for rule in rules:
            by_trigger.setdefault(rule.trigger, []).append(rule)
        cached = _LOADED["all"] = (version, by_trigger)
    return cached[1]


def rules_live(*, trigger: str, at: datetime | None = None) -> list[Rule]:
    """Active rules for a trigger that are live at `at` (default now)."""
    at = at or timezone.now()
    return [rule for rule in rules_active().get(trigger, []) if rule.is_live(at)]


def rule_actions(rule: Rule) -> list[RuleAction]:
    """A rule's actions in order (prefetched for the live rules)."""
    return list(rule.actions.all())


def clear() -> None:
    """Forget the loaded rules (tests whose database reuses rule ids)."""
    _LOADED.clear()
