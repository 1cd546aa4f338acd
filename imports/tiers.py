"""`--tiers from-rules`: members placed where the programme's upgrade rules would put
them from what was imported (their totals, balances, tags), setting only the tier: the
rules' other effects (coupons, points, messages) are for what happens from now on."""

from collections.abc import Callable

from django.utils import timezone

from members import bulk
from members.models import Member, TierChangeCause
from members.selectors import member_ids_with_tier_change
from rules.models import ActionKind, Trigger
from rules.selectors.live import rule_actions, rules_live
from rules.selectors.preview import members_matching

CHUNK = 5_000
REASON = "tier from the upgrade rules (import)"
FILE_REASON = "tier from the import file"


def tiers_from_rules(
    member_ids: list[int], *, progress: Callable[[int, int], None] | None = None
) -> int:
    """Move each member (but those whose tier a members file gave) up to the highest
    tier a live order_paid rule that sets a tier would give them now (conditions about
    the order itself count as met), lowest target first so that a rule for a tier above
    sees the tier below. progress(done, total) after each chunk. Returns how many
    members moved."""
    upgrades = []
    for rule in rules_live(trigger=Trigger.ORDER_PAID):
        for action in rule_actions(rule):
            if action.kind == ActionKind.SET_TIER:
                upgrades.append((action.tier.rank, rule.code, rule, action.tier))
    ids = sorted(set(member_ids))
    # Where a members file gave the tier, the file wins.
    given: set[int] = set()
    for start in range(0, len(ids), CHUNK):
        given |= member_ids_with_tier_change(
            ids[start : start + CHUNK], cause=TierChangeCause.IMPORT, reason=FILE_REASON
        )
    ids = [member_id for member_id in ids if member_id not in given]
    now, moved, done = timezone.now(), set(), 0
    for _rank, _code, rule, tier in sorted(upgrades, key=lambda found: found[:2]):
        matching = members_matching(rule, now=now).members
        for start in range(0, len(ids), CHUNK):
            below = matching.filter(pk__in=ids[start : start + CHUNK]).exclude(
                tier__rank__gte=tier.rank
            )
            members = list(Member.objects.filter(pk__in=below.values("pk")).select_related("tier"))
            if members:
                bulk.members_tier_imported([(m, tier, now, None) for m in members], reason=REASON)
                moved.update(m.pk for m in members)
            done += 1
            if progress:
                progress(done, len(upgrades) * len(range(0, len(ids), CHUNK)))
    return len(moved)
