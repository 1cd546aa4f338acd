from datetime import date, datetime
from decimal import Decimal

from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from core.models import newest
from core.money import money
from members import selectors as member_selectors
from members.models import Member, Tag, Tier

from .models import Coupon, CouponTemplate, Discount, GrowthEntry, PointsEntry, Stacking


def points_available(*, total: int, used: int, lapsed: int) -> int:
    """What can be spent of a ledger whose entries sum to `total`, whose negative entries
    (spent, written off, reversed) come to `used`, and whose lots lapsed by now come to
    `lapsed`. Spending uses up the lots that lapse soonest first, so the lapsed lots are
    used first and what is left of them, max(0, lapsed - used), never counts, even
    before the daily job writes it off."""
    return total - max(0, lapsed - used)


def points_balance(
    *, member_id: int, up_to_id: int | None = None, at: datetime | None = None
) -> int:
    """The points a member can spend at `at` (default now): the ledger's sum (up to and
    including entry `up_to_id`, if given), less what is left of lapsed lots."""
    entries = PointsEntry.objects.filter(member_id=member_id)
    if up_to_id is not None:
        entries = entries.filter(pk__lte=up_to_id)
    return _available(entries.aggregate(**_ledger_sums(at or timezone.now())))


def _ledger_sums(at: datetime) -> dict[str, Sum]:
    """What points_available needs of a ledger, as aggregates."""
    return {
        "total": Sum("points"),
        "used": Sum("points", filter=Q(points__lt=0)),
        "lapsed": Sum("points", filter=Q(points__gt=0, expires_at__lte=at)),
    }


def _available(sums: dict) -> int:
    return points_available(
        total=sums["total"] or 0, used=-(sums["used"] or 0), lapsed=sums["lapsed"] or 0
    )


def balances_now(member_ids: list[int]) -> dict[int, tuple[int, int]]:
    """(points they can spend, growth points) of each member that has any, now."""
    points = (
        PointsEntry.objects.filter(member_id__any_of=member_ids)
        .order_by()
        .values("member_id")
        .annotate(**_ledger_sums(timezone.now()))
    )
    found = {row["member_id"]: _available(row) for row in points}
    growth = dict(
        GrowthEntry.objects.filter(member_id__any_of=member_ids)
        .order_by()
        .values("member_id")
        .annotate(total=Sum("points"))
        .values_list("member_id", "total")
    )
    return {m: (found.get(m, 0), growth.get(m, 0)) for m in set(found) | set(growth)}


def growth_balance(*, member_id: int) -> int:
    entries = GrowthEntry.objects.filter(member_id=member_id)
    return entries.aggregate(total=Sum("points"))["total"] or 0


def growth_between(*, member_id: int, start, end) -> int:
    """Growth points earned (less those reversed) after `start`, up to and including
    `end` (entries are dated by the event that earned them)."""
    entries = GrowthEntry.objects.filter(
        member_id=member_id, created_at__gt=start, created_at__lte=end
    )
    return entries.aggregate(total=Sum("points"))["total"] or 0


def coupon_templates_by_code(codes: set[str] | None = None) -> dict[str, CouponTemplate]:
    templates = CouponTemplate.objects.all()
    if codes is not None:
        templates = templates.filter(code__in=codes)
    return {template.code: template for template in templates}


def coupon_terms(coupon: Coupon, now: datetime | None = None) -> dict:
    """A coupon as the API and the timeline show it: its terms, state and use."""
    return {
        "code": coupon.code,
        "name": coupon.name,
        "discount": coupon.discount,
        "min_spend": coupon.min_spend,
        "amount_off": coupon.amount_off,
        "percent_off": coupon.percent_off,
        "max_discount": coupon.max_discount,
        "stacking": coupon.stacking,
        "issued_at": coupon.issued_at,
        "valid_from": coupon.valid_from,
        "expires_at": coupon.expires_at,
        "status": coupon.display_status(now),
        "redeemed_order": coupon.redeemed_order,
        "redeemed_at": coupon.redeemed_at,
    }


def member_coupons(*, member_id: int) -> list[dict]:
    now = timezone.now()
    return [coupon_terms(coupon, now) for coupon in Coupon.objects.filter(member_id=member_id)]


def coupon_timeline(*, member_id: int, before=None, limit: int) -> list[dict]:
    coupons = Coupon.objects.filter(member_id=member_id).select_related("firing__rule")
    now = timezone.now()
    return [
        {
            "type": "coupon_issued",
            "at": coupon.issued_at,
            **coupon_terms(coupon, now),
            "rule": coupon.firing.reference if coupon.firing else None,
        }
        for coupon in newest(coupons, at="issued_at", before=before, limit=limit)
    ]


def points_timeline(*, member_id: int, before=None, limit: int) -> list[dict]:
    entries = PointsEntry.objects.filter(member_id=member_id).select_related("firing__rule")
    return [
        {
            "type": "points",
            "at": entry.created_at,
            "kind": entry.kind,
            "points": entry.points,
            "reason": entry.reason,
            "rule": entry.firing.reference if entry.firing else None,
        }
        for entry in newest(entries, at="created_at", before=before, limit=limit)
    ]


def points_lots(*, member_id: int) -> list[tuple[PointsEntry, int]]:
    """Each positive entry (a lot) with the points left in it. Spent, expired and reversed
    points use up the lots that expire soonest first (lots that never expire last)."""
    entries = list(PointsEntry.objects.filter(member_id=member_id))
    used = -sum(entry.points for entry in entries if entry.points < 0)
    lots = sorted(
        (entry for entry in entries if entry.points > 0),
        key=lambda lot: (
            lot.expires_at is None,
            lot.expires_at or lot.created_at,
            lot.created_at,
            lot.pk,
        ),
    )
    remaining = []
    for lot in lots:
        taken = min(lot.points, used)
        used -= taken
        remaining.append((lot, lot.points - taken))
    return remaining


def points_expiring_on(*, member_id: int, day) -> int:
    """Points that will lapse on `day` (a business date) unless spent first."""
    return sum(
        left
        for lot, left in points_lots(member_id=member_id)
        if lot.expires_at and timezone.localdate(lot.expires_at) == day
    )


def growth_timeline(*, member_id: int, before=None, limit: int) -> list[dict]:
    entries = GrowthEntry.objects.filter(member_id=member_id).select_related("firing__rule")
    return [
        {
            "type": "growth_points",
            "at": entry.created_at,
            "kind": entry.kind,
            "points": entry.points,
            "reason": entry.reason,
            "rule": entry.firing.reference if entry.firing else None,
        }
        for entry in newest(entries, at="created_at", before=before, limit=limit)
    ]


def coupon_code_clean(code: str) -> str:
    """Codes are printed in capitals; a till may send them in lower case."""
    return code.strip().upper()


def coupon_unusable_reason(coupon: Coupon, *, now: datetime) -> tuple[str, str] | None:
    """(reason code, sentence) saying why a coupon cannot be used now, or None."""
    if coupon.status == Coupon.Status.VOID:
        return "void", "This coupon is void."
    if coupon.status == Coupon.Status.REDEEMED:
        return "used", "This coupon has already been used."
    if coupon.expires_at <= now:
        moment = timezone.localtime(coupon.expires_at).strftime("%Y-%m-%d %H:%M")
        return "expired", f"This coupon expired at {moment}."
    if coupon.valid_from and coupon.valid_from > now:
        moment = timezone.localtime(coupon.valid_from).strftime("%Y-%m-%d %H:%M")
        return "not_yet_valid", f"This coupon can be used from {moment}."
    return None


def coupon_discount(coupon: Coupon, payable: Decimal) -> Decimal:
    """What the coupon alone takes off `payable` (the amount after the tier discount)."""
    if coupon.discount == Discount.PERCENT:
        off = money(payable * coupon.percent_off / 100)
        return min(off, coupon.max_discount) if coupon.max_discount is not None else off
    return coupon.amount_off


def after_tier_discount(amount: Decimal, tier: Tier | None) -> tuple[Decimal, Decimal]:
    """(the tier's discount on `amount`, what is left to pay): the first step of pricing a
    basket, before any coupon."""
    amount = money(amount)
    tier_discount = money(amount * (tier.discount_percent if tier else Decimal(0)) / 100)
    return tier_discount, amount - tier_discount


def checkout_quote(*, member_external_id: str, amount: Decimal, coupon_codes: list[str]) -> dict:
    """What a member would pay for a basket of `amount`: the tier discount first, then
    the best combination of the coupons given. Reads only; nothing is used up.

    A stackable coupon combines with other stackable ones, an exclusive one with none:
    the quote takes whichever gives the most, the best exclusive coupon alone or all the
    stackable ones. Minimum spends are judged on `amount`, before any discount; percent
    coupons take their share of the amount after the tier discount."""
    member = member_selectors.member_get(external_id=member_external_id)
    amount = money(amount)
    tier = member.tier
    percent = tier.discount_percent if tier else Decimal(0)
    tier_discount, payable = after_tier_discount(amount, tier)
    codes = list(dict.fromkeys(coupon_code_clean(code) for code in coupon_codes))
    found = {coupon.code: coupon for coupon in Coupon.objects.filter(code__in=codes)}
    now = timezone.now()
    lines = {code: _quote_line(code, found.get(code), member, amount, now) for code in codes}
    usable = [found[code] for code, line in lines.items() if line["reason_code"] is None]
    chosen, unused = _best_combination(usable, payable)
    for coupon, discount in chosen:
        lines[coupon.code].update(applies=True, discount=discount)
    names = ", ".join(coupon.code for coupon, _ in chosen)
    for coupon in usable:
        line = lines[coupon.code]
        if line["applies"]:
            continue
        if not chosen or coupon in unused:
            _refuse(line, "nothing_left", "Nothing is left to pay for it to take off.")
        else:
            _refuse(line, "not_combinable", f"Cannot be combined with {names}.")
    coupon_total = sum((discount for _, discount in chosen), Decimal("0.00"))
    return {
        "member": member.external_id,
        "amount": amount,
        "tier": tier and {"code": tier.code, "name": tier.name, "discount_percent": percent},
        "tier_discount": tier_discount,
        "amount_after_tier_discount": payable,
        "coupons": list(lines.values()),
        "coupon_discount": coupon_total,
        "total_discount": tier_discount + coupon_total,
        "final_amount": max(payable - coupon_total, Decimal("0.00")),
    }


def _quote_line(code: str, coupon: Coupon | None, member: Member, amount, now) -> dict:
    line = {
        "code": code,
        "name": coupon.name if coupon else None,
        "applies": False,
        "discount": Decimal("0.00"),
        "reason_code": None,
        "reason": None,
    }
    if coupon is None:
        return _refuse(line, "unknown", "Unknown coupon code.")
    if coupon.member_id != member.pk:
        return _refuse(line, "other_member", "This coupon belongs to another member.")
    problem = coupon_unusable_reason(coupon, now=now)
    if problem:
        return _refuse(line, *problem)
    if amount < coupon.min_spend:
        return _refuse(
            line, "below_min_spend", f"The basket is below its minimum spend of {coupon.min_spend}."
        )
    return line


def _refuse(line: dict, code: str, reason: str) -> dict:
    line.update(applies=False, discount=Decimal("0.00"), reason_code=code, reason=reason)
    return line


def _best_combination(
    coupons: list[Coupon], payable: Decimal
) -> tuple[list[tuple[Coupon, Decimal]], list[Coupon]]:
    """The coupons to use with what each takes off, and those of the chosen option that
    would take nothing off because nothing is left to pay."""
    stackable = [coupon for coupon in coupons if coupon.stacking == Stacking.STACKABLE]
    options = [[coupon] for coupon in coupons if coupon.stacking == Stacking.EXCLUSIVE]
    if stackable:
        options.append(stackable)
    best, best_key, best_unused = [], None, []
    for option in options:
        # The biggest first, so that a coupon left with nothing to take off is a small one.
        ranked = sorted(option, key=lambda c: (-coupon_discount(c, payable), c.expires_at))
        remaining, used, unused = payable, [], []
        for coupon in ranked:
            take = min(coupon_discount(coupon, payable), remaining)
            if take > 0:
                used.append((coupon, take))
                remaining -= take
            else:
                unused.append(coupon)
        # Most off; then the fewest coupons; then the one that would expire soonest.
        soonest = min((coupon.expires_at for coupon, _ in used), default=None)
        key = (payable - remaining, -len(used), -(soonest.timestamp() if soonest else 0))
        if best_key is None or key > best_key:
            best, best_key, best_unused = used, key, unused
    return best, best_unused


def members_for_coupon_issue(
    *,
    tier: Tier | None = None,
    tag: Tag | None = None,
    joined_from: date | None = None,
    joined_until: date | None = None,
    min_lifetime_spend: Decimal | None = None,
) -> QuerySet[Member]:
    """The members a bulk issue's filter selects: all that match every criterion given
    (joining dates are business dates, in TIME_ZONE)."""
    members = Member.objects.all()
    if tier is not None:
        members = members.filter(tier=tier)
    if tag is not None:
        members = members.filter(tags=tag)
    if joined_from is not None:
        members = members.filter(joined_at__date__gte=joined_from)
    if joined_until is not None:
        members = members.filter(joined_at__date__lte=joined_until)
    if min_lifetime_spend is not None:
        members = members.filter(lifetime_spend__gte=min_lifetime_spend)
    return members


# --- reports --------------------------------------------------------------------------
