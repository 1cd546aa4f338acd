from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from django.db import models
from django.db.models import Case, Count, Exists, F, Min, OuterRef, Q, Subquery, When
from django.db.models.functions import Greatest

from core.days import business_bucket
from core.models import newest

from .models import EngagementEvent, Member, MemberNotFound, Tier, TierChange


def tier_base() -> Tier | None:
    """The tier of rank 0, where every new member starts."""
    return Tier.objects.filter(rank=0).first()


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


def members_joined_by_bucket(*, since: datetime, until: datetime, interval: str) -> dict[date, int]:
    """Members who joined in [since, until), by the business date starting their bucket."""
    rows = (
        Member.objects.filter(joined_at__gte=since, joined_at__lt=until)
        .values(bucket=business_bucket("joined_at", interval))
        .annotate(joined=Count("pk"))
        .values_list("bucket", "joined")
    )
    return dict(rows)


def members_joined_before(*, moment: datetime) -> int:
    return Member.objects.filter(joined_at__lt=moment).count()


def tiers_ranked() -> list[Tier]:
    """Every tier, lowest rank first."""
    return list(Tier.objects.order_by("rank"))


def tier_held(moment=None, *, member: str = "pk", current: str = "tier_id") -> Case:
    """An expression for the tier (id) a member held just before `moment` (a datetime or
    an OuterRef), from their tier history: the latest change before it; else, if they
    changed later, what they changed from; else `current`, the tier they hold now (they
    never changed). Without `moment`: the tier they joined with. `member` names the
    member's id in the outer query."""
    changes = TierChange.objects.filter(member=OuterRef(member))
    before = changes.filter(created_at__lt=moment) if moment is not None else changes.none()
    after = changes.filter(created_at__gte=moment) if moment is not None else changes
    return Case(
        When(
            Exists(before),
            then=Subquery(before.order_by("-created_at", "-id").values("to_tier_id")[:1]),
        ),
        When(
            Exists(after),
            then=Subquery(after.order_by("created_at", "id").values("from_tier_id")[:1]),
        ),
        default=F(current),
        output_field=models.BigIntegerField(),
    )


def tier_counts_at(*, moment: datetime) -> Counter:
    """Members who joined before `moment`, by the id of the tier they held at it."""
    rows = (
        Member.objects.filter(joined_at__lt=moment)
        .annotate(held=tier_held(moment))
        .values("held")
        .annotate(members=Count("pk"))
        .values_list("held", "members")
    )
    return Counter(dict(rows))


# A tier change counts in the members on each tier from when it took effect, but never
# before the member joined (an order back-dated before joining moves them at joining):
# so the counts at any moment (tier_counts_at) are the sum of every earlier delta.
_COUNTED_FROM = Greatest("created_at", "member__joined_at")


def tier_count_deltas(*, since: datetime, until: datetime, interval: str) -> dict[date, Counter]:
    """How the members on each tier (by id) changed in each bucket of [since, until):
    members joining on the tier they joined with, and each tier change moving one member
    from one tier to another (a renewal moves nobody)."""
    deltas: dict[date, Counter] = defaultdict(Counter)
    joins = (
        Member.objects.filter(joined_at__gte=since, joined_at__lt=until)
        .annotate(bucket=business_bucket("joined_at", interval), held=tier_held())
        .values("bucket", "held")
        .annotate(members=Count("pk"))
        .values_list("bucket", "held", "members")
    )
    for bucket, tier_id, members in joins:
        deltas[bucket][tier_id] += members
    moves = (
        TierChange.objects.annotate(counted=_COUNTED_FROM)
        .filter(counted__gte=since, counted__lt=until)
        .exclude(from_tier=F("to_tier"))
        .values("from_tier_id", "to_tier_id", bucket=business_bucket("counted", interval))
        .annotate(members=Count("pk"))
        .values_list("bucket", "from_tier_id", "to_tier_id", "members")
    )
    for bucket, from_tier_id, to_tier_id, members in moves:
        deltas[bucket][from_tier_id] -= members
        deltas[bucket][to_tier_id] += members
    return deltas


def members_page(members=None, *, after_pk: int, limit: int) -> list[Member]:
    """Up to `limit` of `members` (a queryset of them; default every member) after id
    `after_pk`, in id order, with their tier and tags: for reading all members a chunk at
    a time."""
    members = members if members is not None else Member.objects.all()
    return list(
        members.filter(pk__gt=after_pk)
        .order_by("pk")
        .select_related("tier")
        .prefetch_related("tags")[:limit]
    )


def member_count() -> int:
    return Member.objects.count()


def member_join_days_recorded_since(moment: datetime) -> set[date]:
    """The business days on which the members created at or after `moment` joined."""
    members = Member.objects.filter(created_at__gte=moment).order_by()
    return set(members.values_list(business_bucket("joined_at", "day"), flat=True).distinct())


def member_join_days(member_ids: Iterable[int]) -> set[date]:
    members = Member.objects.filter(pk__in=member_ids).order_by()
    return set(members.values_list(business_bucket("joined_at", "day"), flat=True).distinct())


def tier_changes_recorded_since(moment: datetime) -> dict[int, datetime | None]:
    """Members with tier changes recorded at or after `moment`, each with the earliest
    moment such a change took effect; None where that is the member's first change of
    all, whose from tier is then the tier they held at joining and at every earlier
    order (tier_held)."""
    recent = (
        TierChange.objects.filter(recorded_at__gte=moment)
        .values("member_id")
        .annotate(first=Min("created_at"))
        .order_by()
    )
    firsts = {row["member_id"]: row["first"] for row in recent}
    earliest = dict(
        TierChange.objects.filter(member_id__in=firsts)
        .values("member_id")
        .annotate(first=Min("created_at"))
        .order_by()
        .values_list("member_id", "first")
    )
    return {
        member_id: None if earliest[member_id] >= first else first
        for member_id, first in firsts.items()
    }


def tier_change_days_recorded_since(moment: datetime) -> set[date]:
    """The business days on which the tier changes recorded at or after `moment` count in
    the members on each tier (tier_count_deltas: never before the member joined)."""
    changes = TierChange.objects.filter(recorded_at__gte=moment).order_by()
    days = changes.values_list(business_bucket(_COUNTED_FROM, "day"), flat=True).distinct()
    return set(days)


def member_first_joined() -> datetime | None:
    return Member.objects.aggregate(first=Min("joined_at"))["first"]


def member_tag_codes(member_ids: list[int]) -> dict[int, set[str]]:
    """The codes of each member's tags, for the members that have any."""
    found: dict[int, set[str]] = {}
    through = Member.tags.through.objects.filter(member_id__any_of=member_ids)
    for member_id, code in through.values_list("member_id", "tag__code"):
        found.setdefault(member_id, set()).add(code)
    return found


def members_per_tier() -> list[tuple[str | None, int]]:
    """(tier code, members) for every tier, lowest rank first, then members with none."""
    counts = dict(
        Member.objects.order_by()
        .values("tier_id")
        .annotate(n=Count("pk"))
        .values_list("tier_id", "n")
    )
    found = [(tier.code, counts.get(tier.pk, 0)) for tier in Tier.objects.order_by("rank")]
    return found + ([(None, counts[None])] if counts.get(None) else [])


def member_ids_by_external_id(external_ids: Iterable[str]) -> dict[str, int]:
    members = Member.objects.filter(external_id__any_of=list(external_ids))
    return dict(members.values_list("external_id", "pk"))


def member_ids_with_tier_change(member_ids: list[int], *, cause: str, reason: str) -> set[int]:
    """Those of the members with a tier change of this cause and reason in their history."""
    changes = TierChange.objects.filter(member_id__in=member_ids, cause=cause, reason=reason)
    return set(changes.values_list("member_id", flat=True).distinct())
