"""Writes of many members at once, for imports from the system a business had before:
silent, so no journal event is recorded and no rule is evaluated for them (a new member's
joining counts as evaluated), and each call is one statement per kind of write."""

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from .models import Member, Tag, Tier, TierChange, TierChangeCause

IMPORT_REASON = "import"


@transaction.atomic
def members_create_silently(members: list[Member]) -> list[Member]:
    """Insert new members whose joining the rules are not to see: event 1 is theirs and
    already evaluated. Returns them with their ids."""
    now = timezone.now()
    for member in members:
        member.event_seq, member.evaluated_seq, member.pending_since = 1, 1, None
        member.created_at = member.updated_at = now
    return Member.objects.bulk_create(members)


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
    history = []
    for member, tier, since, until in changes:
        history.append(
            TierChange(
                member=member,
                from_tier_id=member.tier_id,
                to_tier=tier,
                reason=reason,
                cause=TierChangeCause.IMPORT,
                created_at=since,
                seq=0,
            )
        )
        member.tier, member.tier_since, member.tier_period_start = tier, since, since
        member.tier_expires_at = until if until is not None else tier.expiry_from(since)
    TierChange.objects.bulk_create(history)
    # One UPDATE per set of values (an import's members mostly share them) rather than
    # bulk_update's CASE over every member, which costs a millisecond a member.
    by_values: dict[tuple, list[int]] = defaultdict(list)
    for member, *_ in changes:
        values = (member.tier_id, member.tier_since, member.tier_expires_at)
        by_values[values].append(member.pk)
    now = timezone.now()
    for (tier_id, since, until), member_ids in by_values.items():
        Member.objects.filter(pk__in=member_ids).update(
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
    through.objects.filter(member_id__in=list(tags)).delete()
    through.objects.bulk_create(
        [through(member_id=member, tag_id=tag) for member, ids in tags.items() for tag in ids]
    )
