from datetime import date, datetime, timedelta

from django.db.models import Count, Q

from core.models import newest

from .models import EngagementEvent, Member, MemberNotFound, Tier, TierChange


def tier_base() -> Tier | None:
    """The tier of rank 0, where every new member starts."""
    return Tier.objects.filter(rank=0).first()


def tiers_by_code(codes: set[str] | None = None) -> dict[str, Tier]:
    tiers = Tier.objects.all()
    if codes is not None:
        tiers = tiers.filter(code__in=codes)
    return {tier.code: tier for tier in tiers}


def member_engagement_counts(
    *, member_id: int, windows: set[tuple[int, str | None]], now: datetime
) -> dict[tuple[int, str | None], int]:
    """Engagement events in each (last N days, kind or any kind) window, in one query."""
    if not windows:
        return {}
    ordered = sorted(windows, key=str)
    aggregates = {}
    for index, (days, kind) in enumerate(ordered):
        recent = Q(occurred_at__gt=now - timedelta(days=days), occurred_at__lte=now)
        if kind is not None:
            recent &= Q(kind__code=kind)
        aggregates[f"w{index}"] = Count("id", filter=recent)
    row = EngagementEvent.objects.filter(member_id=member_id).aggregate(**aggregates)
    return {window: row[f"w{index}"] for index, window in enumerate(ordered)}


def member_get(*, external_id: str) -> Member:
    """The member with this external id, with their tier; MemberNotFound if none (the
    one lookup by external id: the API answers 404)."""
    member = Member.objects.select_related("tier").filter(external_id=external_id).first()
    if member is None:
        raise MemberNotFound(external_id)
    return member


def tier_change_timeline(*, member_id: int, before=None, limit: int) -> list[dict]:
    changes = TierChange.objects.filter(member_id=member_id).select_related(
        "from_tier", "to_tier", "firing__rule", "changed_by"
    )
    return [
        {
            "type": "tier_change",
            "at": change.created_at,
            "from_tier": change.from_tier.code if change.from_tier else None,
            "to_tier": change.to_tier.code,
            "move": change.move,
            "reason": change.reason,
            "rule": change.firing.reference if change.firing else None,
            "changed_by": change.changed_by.get_username() if change.changed_by else None,
        }
        for change in newest(changes, at="created_at", before=before, limit=limit)
    ]


def engagement_timeline(*, member_id: int, before=None, limit: int) -> list[dict]:
    events = EngagementEvent.objects.filter(member_id=member_id).select_related("kind")
    return [
        {
            "type": "engagement",
            "at": event.occurred_at,
            "external_id": event.external_id,
            "kind": event.kind.code,
            "occurred_at": event.occurred_at,
        }
        for event in newest(events, at="occurred_at", before=before, limit=limit)
    ]


def member_tier_floor(*, member: Member, on_date: date) -> Tier | None:
    """The operator's floor for the member, while it holds."""
    if member.tier_floor_id and member.tier_floor_until and member.tier_floor_until >= on_date:
        return member.tier_floor
    return None
