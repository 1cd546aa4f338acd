"""Every write to members and tiers. Callers that change a member's totals or tier hold
the member row lock (`member_lock`) first, always before any other row lock."""

from datetime import datetime
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import Member, Tier, TierChange
from .selectors import tier_base

MEMBER_DETAIL_FIELDS = ("name", "phone", "email")


def tier_upsert(*, code: str, name: str, rank: int, discount_percent: Decimal) -> tuple[Tier, bool]:
    """Create or update a tier by code. Returns (tier, changed)."""
    values = {"name": name, "rank": rank, "discount_percent": Decimal(discount_percent)}
    tier = Tier.objects.filter(code=code).first()
    if tier is None:
        tier = Tier(code=code, **values)
        tier.full_clean()
        tier.save()
        return tier, True
    if all(getattr(tier, field) == value for field, value in values.items()):
        return tier, False
    for field, value in values.items():
        setattr(tier, field, value)
    tier.full_clean(validate_unique=False)  # ranks may be swapped mid-load; the DB checks
    tier.save()
    return tier, True


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
                member_set_tier(member=member, tier=base, reason="base tier")
                assigned += 1
    return assigned


def member_upsert(*, external_id: str, **details: str) -> tuple[Member, bool]:
    """Get or create a member by external id, updating the details given (name, phone,
    e-mail). Safe under concurrency: two requests creating one member both get it."""
    details = {k: v for k, v in details.items() if k in MEMBER_DETAIL_FIELDS and v is not None}
    member = Member.objects.filter(external_id=external_id).first()
    created = False
    if member is None:
        base = tier_base()
        candidate = Member(
            external_id=external_id,
            tier=base,
            tier_since=timezone.now() if base else None,
            **details,
        )
        candidate.full_clean(exclude=["tier"], validate_unique=False, validate_constraints=False)
        try:
            with transaction.atomic():
                candidate.save()
            return candidate, True
        except IntegrityError:
            # Another request created the same member between our read and our insert.
            member = Member.objects.get(external_id=external_id)
    changed = {k: v for k, v in details.items() if getattr(member, k) != v}
    if changed:
        for field, value in changed.items():
            setattr(member, field, value)
        member.full_clean(exclude=["tier"], validate_unique=False, validate_constraints=False)
        member.save(update_fields=[*changed, "updated_at"])
    return member, created


def member_lock(*, member_id: int) -> Member:
    """Lock the member row for the rest of the transaction (SELECT ... FOR UPDATE)."""
    # Lock the member row only (not the joined tier): the tier is read, never locked.
    return Member.objects.select_for_update(of=("self",)).select_related("tier").get(pk=member_id)


def member_totals_add_order(*, member: Member, amount: Decimal, placed_at: datetime) -> None:
    """Add one order to a locked member's running totals."""
    member.lifetime_spend += amount
    member.order_count += 1
    if member.last_order_at is None or placed_at > member.last_order_at:
        member.last_order_at = placed_at
    member.save(update_fields=["lifetime_spend", "order_count", "last_order_at", "updated_at"])


def member_set_tier(
    *,
    member: Member,
    tier: Tier,
    reason: str,
    allow_downgrade: bool = False,
    firing=None,
    changed_by: AbstractBaseUser | None = None,
) -> TierChange | None:
    """Move a locked member to `tier`. A downgrade happens only when allowed; moving to
    the current tier is a no-op. Returns the recorded change, or None."""
    current = member.tier
    if current == tier:
        return None
    if current is not None and tier.rank < current.rank and not allow_downgrade:
        return None
    now = timezone.now()
    change = TierChange.objects.create(
        member=member,
        from_tier=current,
        to_tier=tier,
        reason=reason,
        firing=firing,
        changed_by=changed_by,
        created_at=now,
    )
    member.tier, member.tier_since = tier, now
    member.save(update_fields=["tier", "tier_since", "updated_at"])
    return change
