"""Every write to members and tiers. Callers that change a member's totals or tier hold
the member row lock (`member_lock`) first, always before any other row lock."""

from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from django.utils.translation import gettext

from core.idempotency import payload_fingerprint, record_once
from core.upsert import upsert

from .journal import events_recorded, member_event_recorded
from .models import (
    EngagementEvent,
    EngagementKind,
    Member,
    MemberNotFound,
    Tag,
    Tier,
    TierChange,
    TierChangeCause,
)
from .selectors import member_tier_floor, tier_base

MEMBER_DETAIL_FIELDS = ("name", "phone", "email", "birthday", "language")
TIER_FIELDS = (
    "name",
    "rank",
    "discount_percent",
    "points_multiplier",
    "validity",
    "validity_days",
    "keep_metric",
    "keep_threshold",
    "remind_days_before",
    "lapse_to",
    "refund_policy",
)


def tier_upsert(*, code: str, **values: Any) -> tuple[Tier, bool]:
    """Create or update a tier by code. Returns (tier, changed)."""
    # Ranks may be swapped midway through a programme load; the database checks them.
    return upsert(Tier, lookup={"code": code}, values=values, validate_unique=False)


def tag_upsert(*, code: str, name: str) -> tuple[Tag, bool]:
    return upsert(Tag, lookup={"code": code}, values={"name": name})


def engagement_kind_upsert(*, code: str, **values: Any) -> tuple[EngagementKind, bool]:
    return upsert(EngagementKind, lookup={"code": code}, values=values)


@transaction.atomic
def tiers_free_ranks(*, codes: list[str]) -> None:
    """Move the given tiers out of the way (to ranks no programme uses) so a load can swap
    ranks without tripping the unique constraint halfway."""
    top = 30000
    for offset, tier in enumerate(Tier.objects.filter(code__in=codes).order_by("pk")):
        Tier.objects.filter(pk=tier.pk).update(rank=top + offset)


def members_assign_base_tier() -> int:
    """Members recorded before any programme existed get the base tier once one does,
    each in its own transaction under its row lock, with a tier-history entry."""
    base = tier_base()
    if base is None:
        return 0
    assigned = 0
    for member_id in Member.objects.filter(tier__isnull=True).values_list("pk", flat=True):
        with transaction.atomic():
            member = member_lock(member_id=member_id)
            if member.tier_id is None:
                member_set_tier(
                    member=member, tier=base, reason="base tier", cause=TierChangeCause.BASE
                )
                assigned += 1
    return assigned


def member_upsert(
    *, external_id: str, joined_at: datetime | None = None, lock: bool = False, **details: Any
) -> tuple[Member, bool]:
    """Get or create a member by external id, updating the details given (name, phone,
    e-mail, birthday). `joined_at` (default: now) applies only to a new member, so an ERP
    can bring its existing members with their anniversaries. Safe under concurrency: two
    requests creating one member both get it. With `lock`, the member's row is locked
    for the rest of the caller's transaction."""
    unknown = set(details) - set(MEMBER_DETAIL_FIELDS)
    if unknown:
        raise TypeError(f"Unknown member details: {', '.join(sorted(unknown))}")
    details = {k: v for k, v in details.items() if v is not None}
    members = Member.objects.select_for_update() if lock else Member.objects
    member = members.filter(external_id=external_id).first()
    created = False
    if member is None:
        base = tier_base()
        candidate = Member(
            external_id=external_id,
            tier=base,
            tier_since=timezone.now() if base else None,
            tier_period_start=timezone.now() if base else None,
            joined_at=joined_at or timezone.now(),
            **details,
        )
        candidate.full_clean(exclude=["tier"], validate_unique=False, validate_constraints=False)
        try:
            with transaction.atomic():
                candidate.save()
            # Joining is the member's event 1 (the model's defaults: waiting since now).
            events_recorded.send(sender=Member, member_id=candidate.pk)
            return candidate, True
        except IntegrityError:
            # Another request created the same member between our read and our insert.
            member = members.get(external_id=external_id)
    changed = {k: v for k, v in details.items() if getattr(member, k) != v}
    if changed:
        for field, value in changed.items():
            setattr(member, field, value)
        member.full_clean(exclude=["tier"], validate_unique=False, validate_constraints=False)
        member.save(update_fields=[*changed, "updated_at"])
    return member, created


def member_lock(*, member_id: int) -> Member:
    """Lock the member row for the rest of the transaction (SELECT ... FOR UPDATE), then
    read it with its tier."""
    # Two statements, not one SELECT ... JOIN tier FOR UPDATE OF member: when that waits
    # for a transaction that changed the member's tier, PostgreSQL re-checks the locked
    # row's new version against the tier row it had already joined, and returns the member
    # with no tier at all. Read after the lock is granted, everything is current.
    Member.objects.select_for_update().filter(pk=member_id).values_list("pk").get()
    return Member.objects.select_related("tier").get(pk=member_id)


def member_order_recorded(
    *, member: Member, seq: int, amount: Decimal, placed_at: datetime
) -> None:
    """Add a just-recorded order, the locked member's event `seq`, to their running
    totals: one relative UPDATE."""
    placed = Value(placed_at)
    member_event_recorded(
        member=member,
        seq=seq,
        lifetime_spend=F("lifetime_spend") + amount,
        order_count=F("order_count") + 1,
        last_order_at=Greatest(Coalesce(F("last_order_at"), placed), placed),
    )


def member_set_tier(
    *,
    member: Member,
    tier: Tier,
    reason: str,
    allow_downgrade: bool = False,
    firing=None,
    changed_by: AbstractBaseUser | None = None,
    cause: str | None = None,
    at: datetime | None = None,
    as_event: bool = True,
    save: bool = True,
) -> TierChange | None:
    """Move a locked member to `tier`, starting a new period at `at` (default now). A
    downgrade happens only when allowed, and never below an operator's floor unless the
    operator makes it; moving to the current tier is a no-op. Returns the change, or None.

    The change is an event of the member's journal, for the tier_changed rules to be
    evaluated after commit; the engine, which evaluates them itself in the same
    transaction, passes `as_event=False`, and `save=False` to save a batch's changes at
    once (tier_changes_save)."""
    current = member.tier
    if current is not None and tier.rank < current.rank:
        if not allow_downgrade:
            return None
        floor = member_tier_floor(member=member, on_date=timezone.localdate(at))
        if changed_by is None and floor is not None and floor.rank > tier.rank:
            tier = floor
    if current == tier:
        return None
    return _tier_change(
        member=member,
        tier=tier,
        reason=reason,
        firing=firing,
        changed_by=changed_by,
        cause=cause,
        at=at,
        as_event=as_event,
        save=save,
    )


def member_renew_tier(
    *, member: Member, reason: str, as_event: bool = True, save: bool = True
) -> TierChange:
    """Start the next period of a locked member's tier where the current one ends."""
    return _tier_change(
        member=member,
        tier=member.tier,
        reason=reason,
        cause=TierChangeCause.LAPSE,
        at=member.tier_expires_at,
        as_event=as_event,
        save=save,
    )


TIER_FIELDS_CHANGED = ["tier", "tier_since", "tier_period_start", "tier_expires_at", "updated_at"]


def _tier_change(
    *,
    member,
    tier,
    reason,
    firing=None,
    changed_by=None,
    cause=None,
    at=None,
    as_event=True,
    save=True,
) -> TierChange:
    at = at or timezone.now()
    # A rule's and an operator's changes say so themselves; the others name their cause.
    cause = cause or (
        TierChangeCause.RULE if firing else TierChangeCause.MANUAL if changed_by else None
    )
    if cause is None:
        raise ValueError("A tier change needs its cause.")
    change = TierChange(
        member=member,
        from_tier=member.tier,
        to_tier=tier,
        reason=reason,
        cause=cause,
        firing=firing,
        changed_by=changed_by,
        created_at=at,
        seq=member.event_seq + 1 if as_event else 0,
    )
    if member.tier != tier:
        member.tier_since = at
    member.tier, member.tier_period_start, member.tier_expires_at = tier, at, tier.expiry_from(at)
    member.updated_at = timezone.now()
    if not save:
        return change
    change.save()
    member.save(update_fields=TIER_FIELDS_CHANGED)
    if as_event:
        member_event_recorded(member=member, seq=change.seq)
    return change


def tier_changes_save(*, changes: list[TierChange], members: list[Member]) -> None:
    """Save the tier changes made in memory (save=False) for locked members: one INSERT,
    and one UPDATE per set of new values (the members lapsing on one day mostly share
    them: the same tier, from the same midnight, to the same end)."""
    TierChange.objects.bulk_create(changes)
    by_values = defaultdict(list)
    for member in members:
        values = tuple(getattr(member, name) for name in TIER_FIELDS_CHANGED[:-1])
        by_values[values].append(member.pk)
    now = timezone.now()
    for values, member_ids in by_values.items():
        Member.objects.filter(pk__in=member_ids).update(
            **dict(zip(TIER_FIELDS_CHANGED[:-1], values, strict=True)), updated_at=now
        )


@transaction.atomic
def member_set_tier_by_hand(
    *,
    member_id: int,
    tier: Tier,
    reason: str,
    changed_by: AbstractBaseUser,
    floor: Tier | None = None,
    floor_until: date | None = None,
) -> TierChange | None:
    """An operator sets a member's tier, up or down, with a reason; optionally a floor the
    automatic moves (lapses, refunds, rules) will not go below until a date."""
    if not reason.strip():
        raise ValidationError({"reason": gettext("Give the reason for the change.")})
    if (floor is None) != (floor_until is None):
        raise ValidationError(
            {"floor_until": gettext("Give both the floor tier and its end date.")}
        )
    if floor_until is not None and floor_until < timezone.localdate():
        raise ValidationError({"floor_until": gettext("The floor's end date has passed.")})
    if floor is not None and floor.rank > tier.rank:
        raise ValidationError({"tier_floor": gettext("The floor cannot be above the tier set.")})
    member = member_lock(member_id=member_id)
    if floor is not None:
        reason = f"{reason} (never below {floor.name} until {floor_until.isoformat()})"
    if member.tier_floor_id != (floor and floor.pk) or member.tier_floor_until != floor_until:
        member.tier_floor, member.tier_floor_until = floor, floor_until
        member.save(update_fields=["tier_floor", "tier_floor_until", "updated_at"])
    if member.tier == tier:
        # Same tier: record the operator's decision all the same, as a new period.
        return _tier_change(member=member, tier=tier, reason=reason, changed_by=changed_by)
    return member_set_tier(
        member=member, tier=tier, reason=reason, allow_downgrade=True, changed_by=changed_by
    )


def member_tag(*, member: Member, tag: Tag, add: bool) -> bool:
    """Add or remove a tag; True if that changed anything."""
    has = member.tags.filter(pk=tag.pk).exists()
    if add and not has:
        member.tags.add(tag)
    elif not add and has:
        member.tags.remove(tag)
    return add != has


def member_refund_recorded(
    *, member: Member, seq: int, amount: Decimal, order_now_fully_refunded: bool
) -> None:
    """Take a just-recorded refund, the locked member's event `seq`, off their running
    totals."""
    member_event_recorded(
        member=member,
        seq=seq,
        lifetime_spend=F("lifetime_spend") - amount,
        order_count=F("order_count") - (1 if order_now_fully_refunded else 0),
    )


def engagement_record(
    *, external_id: str, member: str | dict, kind: str, occurred_at: datetime
) -> tuple[EngagementEvent, bool]:
    """Record an engagement event from the ERP or app, once per external id. Returns
    (event, created); a replay of the same payload returns the recorded event, and a
    different payload for a recorded id raises SubjectConflict. Growth points and rules
    follow in the evaluation, after commit."""
    payload_hash = payload_fingerprint(
        external_id=external_id, member=member, kind=kind, occurred_at=occurred_at
    )

    def create() -> EngagementEvent:
        engagement_kind = EngagementKind.objects.filter(code=kind, is_active=True).first()
        if engagement_kind is None:
            raise ValidationError({"kind": f"Unknown engagement kind '{kind}'."})
        member_obj = member_lock_for_event(member)
        event = EngagementEvent(
            external_id=external_id,
            member=member_obj,
            kind=engagement_kind,
            occurred_at=occurred_at,
            payload_hash=payload_hash,
            seq=member_obj.event_seq + 1,
        )
        event.full_clean(
            exclude=["member", "kind"], validate_unique=False, validate_constraints=False
        )
        event.save()
        member_event_recorded(member=member_obj, seq=event.seq)
        return event

    return record_once(
        EngagementEvent, external_id=external_id, payload_hash=payload_hash, create=create
    )


def member_lock_for_event(member: str | dict) -> Member:
    """The member an order or event names, locked for recording it: a known member's
    external id (one locked read of the row alone), or details that create or update the
    member."""
    if isinstance(member, str):
        try:
            return Member.objects.select_for_update().only(*JOURNAL_FIELDS).get(external_id=member)
        except Member.DoesNotExist:
            raise MemberNotFound(member) from None
    details = dict(member)
    # A new member's row was inserted by this transaction, so it is locked by it too.
    return member_upsert(external_id=details.pop("external_id"), lock=True, **details)[0]


# What recording an event reads of its member.
JOURNAL_FIELDS = ("pk", "external_id", "event_seq", "pending_since")
