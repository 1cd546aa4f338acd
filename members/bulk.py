"""Writes of many members at once, for imports from the system a business had before:
silent, so no journal event is recorded and no rule is evaluated for them (a new member's
joining counts as evaluated), and each call is one statement per kind of write."""

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.copy import rows_insert

from .models import Member, Tag, Tier, TierChange, TierChangeCause
from .selectors import member_ids_by_external_id

IMPORT_REASON = "import"


Placement = tuple[Tier, datetime, datetime | None, str]  # tier, since, until, reason


# What members_create_silently sets on each new member besides its details.
CREATED = ["event_seq", "evaluated_seq", "pending_since", "created_at", "updated_at"]
PLACED = ["tier_id", "tier_since", "tier_period_start", "tier_expires_at"]


@transaction.atomic
def members_create_silently(
    details: list[dict[str, Any]], placements: list[Placement | None]
) -> dict[str, int]:
    """Insert new members, each given by its fields' values (external_id among them),
    whose joining the rules are not to see: event 1 is theirs and already evaluated;
    each placed on its tier (as members_tier_imported, in the same insert) where its
    placement gives one. Returns their ids by external id."""
    if not details:
        return {}
    now = timezone.now()
    fields = sorted({name for values in details for name in values})
    # A field one member has and another has not: the other's is the field's default.
    defaults = [Member._meta.get_field(name).get_default() for name in fields]
    rows = []
    for values, placement in zip(details, placements, strict=True):
        tier = _placed(*placement[:3]) if placement is not None else (None, None, None, None)
        given = [values.get(name, default) for name, default in zip(fields, defaults, strict=True)]
        rows.append([*given, 1, 1, None, now, now, *tier])
    rows_insert(Member, [*fields, *CREATED, *PLACED], rows)
    ids = member_ids_by_external_id([values["external_id"] for values in details])
    _history_record(
        [
            (ids[values["external_id"]], None, placed[0].pk, placed[1], placed[3])
            for values, placed in zip(details, placements, strict=True)
            if placed is not None
        ]
    )
    return ids


def _placed(tier: Tier, since: datetime, until: datetime | None) -> tuple:
    """A member's tier_id, tier_since, tier_period_start and tier_expires_at."""
    return (tier.pk, since, since, until if until is not None else tier.expiry_from(since))


def _place(member: Member, tier: Tier, since: datetime, until: datetime | None) -> None:
    member.tier = tier
    _id, member.tier_since, member.tier_period_start, member.tier_expires_at = _placed(
        tier, since, until
    )


def _history_record(changes: list[tuple[int, int | None, int, datetime, str]]) -> None:
    """Tier changes of cause "import": (member, from tier, to tier, at, reason) ids."""
    rows_insert(
        TierChange,
        ["member_id", "from_tier_id", "to_tier_id", "created_at", "reason", "cause", "seq"],
        [(*change, TierChangeCause.IMPORT, 0) for change in changes],
    )


@transaction.atomic
def members_update_silently(members: list[Member], fields: Iterable[str]) -> None:
    fields = sorted({*fields, "updated_at"})
    now = timezone.now()
    for member in members:
        member.updated_at = now
    Member.objects.bulk_update(members, fields)


@transaction.atomic
def members_tier_imported(
    changes: list[tuple[Member, Tier, datetime, datetime | None]], *, reason: str
) -> None:
    """Put each member on a tier since a moment, until an end (None: the tier's own
    validity from that moment), as an import did: a tier change of cause "import" in
    the history, outside the journal (no tier_changed rule fires)."""
    _history_record(
        [(member.pk, member.tier_id, tier.pk, since, reason) for member, tier, since, _ in changes]
    )
    for member, tier, since, until in changes:
        _place(member, tier, since, until)
    # One UPDATE per set of values (an import's members mostly share them) rather than
    # bulk_update's CASE over every member, which costs a millisecond a member.
    by_values: dict[tuple, list[int]] = defaultdict(list)
    for member, *_ in changes:
        values = (member.tier_id, member.tier_since, member.tier_expires_at)
        by_values[values].append(member.pk)
    now = timezone.now()
    for (tier_id, since, until), member_ids in by_values.items():
        Member.objects.filter(pk__any_of=member_ids).update(
            tier_id=tier_id,
            tier_since=since,
            tier_period_start=since,
            tier_expires_at=until,
            updated_at=now,
        )


@transaction.atomic
def tags_ensure(codes: Iterable[str]) -> dict[str, int]:
    """The ids of the tags by code, creating those that do not exist (named by code)."""
    codes = set(codes)
    found = dict(Tag.objects.filter(code__in=codes).values_list("code", "pk"))
    missing = [Tag(code=code, name=code) for code in sorted(codes - set(found))]
    Tag.objects.bulk_create(missing, ignore_conflicts=True)
    if missing:
        found = dict(Tag.objects.filter(code__in=codes).values_list("code", "pk"))
    return found


@transaction.atomic
def members_tags_set(tags: dict[int, set[int]]) -> None:
    """Give each member (by id) exactly these tags (by id)."""
    through = Member.tags.through
    through.objects.filter(member_id__any_of=list(tags)).delete()
    rows_insert(
        through, ["member_id", "tag_id"], [(m, tag) for m, ids in tags.items() for tag in ids]
    )
