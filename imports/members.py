"""Importing members: created or updated by external id, silently (no rule sees them
join), with their tier, opening points and growth balances, tags and consents."""

import re
from datetime import datetime
from functools import partial
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from benefits.selectors import balances_now
from benefits.services.opening import opening_balances, opening_balances_record
from core.pii import mask_phone
from members import bulk
from members.models import Member, Tier, external_id_validator
from members.selectors import member_tag_codes, tier_base
from notifications.selectors import consents_of_members
from notifications.services.consent import consents_record_many

from . import values
from .columns import Column, Columns, Row
from .runner import CREATE, UNCHANGED, UPDATE, Beat
from .seen import SeenKeys
from .summary import programme_summary
from .tiers import FILE_REASON as TIER_REASON
from .tiers import tiers_from_rules

LANGUAGES = {
    "zh-hans": "zh-hans",
    "zh": "zh-hans",
    "zh-cn": "zh-hans",
    "zh_hans": "zh-hans",
    "中文": "zh-hans",
    "简体中文": "zh-hans",
    "en": "en",
    "english": "en",
    "英文": "en",
}
CONSENTS = {"consent_sms": "sms", "consent_push": "push", "consent_email": "email"}
DETAILS = ("name", "phone", "email", "birthday", "joined_at", "language")
BASE_REASON = "base tier (import)"
CONSENT_SOURCE = "import"


# The validator's own pattern, compiled here: the validator's is lazy, and a lookup
# through the lazy object costs more than the match, at two ids an order.
EXTERNAL_ID = re.compile(external_id_validator.regex.pattern)
PLAIN_ID = re.compile(r"[0-9A-Za-z_.:#-]{1,64}")  # most ids: nothing more to check


def _external_id(cell: values.Cell) -> str | None:
    if isinstance(cell, str) and PLAIN_ID.fullmatch(cell):
        return cell
    value = values.plain_text(cell, max_length=64)
    if value is not None and not EXTERNAL_ID.search(value):
        raise ValueError(str(external_id_validator.message))
    return value


def _difference(change: int | tuple[int, Any]) -> int:
    """A points change is (difference, expiry), a growth change the difference."""
    return change[0] if isinstance(change, tuple) else change


def _language(cell: values.Cell) -> str | None:
    value = values.text(cell)
    if value is None:
        return None
    if value.lower() not in LANGUAGES:
        raise ValueError(_("“%(value)s” is not zh-hans or en") % {"value": value})
    return LANGUAGES[value.lower()]


COLUMNS = Columns(
    [
        Column("external_id", _external_id, required=True),
        Column("name", partial(values.plain_text, max_length=100)),
        Column("phone", values.phone),
        Column("email", values.email),
        Column("birthday", values.day),
        Column("joined_at", values.moment),
        Column("language", _language),
        Column("tier", partial(values.plain_text, max_length=50)),
        Column("tier_since", values.moment),
        Column("tier_expires_at", values.moment),
        Column("points", values.whole_number),
        Column("points_expire_at", values.moment),
        Column("growth_points", values.whole_number),
        Column("tags", values.tags),
        *(Column(name, values.boolean) for name in CONSENTS),
    ]
)


class MembersImport:
    kind = "members"
    columns = COLUMNS

    def __init__(self, *, tiers_from_rules: bool = False) -> None:
        self.place_by_rules = tiers_from_rules
        self.tiers = {tier.code: tier for tier in Tier.objects.all()}
        self.base = tier_base()
        self.now = timezone.now()
        self.start()

    def _expiry(self, tier: Tier, since: datetime) -> datetime | None:
        """tier.expiry_from, asked twice a row, mostly for the import's own time."""
        key = (tier.pk, since)
        if key not in self.expiries:
            if len(self.expiries) > 10_000:
                self.expiries.clear()
            self.expiries[key] = tier.expiry_from(since)
        return self.expiries[key]

    def start(self) -> None:
        self.expiries: dict[tuple[int, datetime], datetime | None] = {}
        self.phones = SeenKeys()  # phone → the first external id with it
        self.shared: dict[str, set[str]] = {}  # phone → external ids sharing it
        self.placed: list[int] = []  # members the rules may place (no tier in the file)

    # Checking

    def _row_problems(self, row: Row) -> None:
        v, now = row.values, self.now
        for name in ("joined_at", "tier_since"):
            if name in v and v[name] > now:
                row.error(name, _("is in the future"))
        if "birthday" in v and v["birthday"] > timezone.localdate(now):
            row.error("birthday", _("is in the future"))
        if "tier" in v and v["tier"] not in self.tiers:
            row.error("tier", _("no tier has the code “%(code)s”") % {"code": v["tier"]})
        for name in ("tier_since", "tier_expires_at"):
            if name in v and "tier" not in v:
                row.error(name, _("give the tier too"))
        if "tier" in v and v["tier"] in self.tiers:
            until = v.get("tier_expires_at") or self._expiry(
                self.tiers[v["tier"]], v.get("tier_since", now)
            )
            if until is not None and until <= now:
                row.error(
                    "tier_expires_at" if "tier_expires_at" in v else "tier_since",
                    _("the tier would have lapsed already (%(at)s)")
                    % {"at": timezone.localtime(until).isoformat(timespec="minutes")},
                )
        if "points_expire_at" in v:
            if "points" not in v:
                row.error("points_expire_at", _("give the points too"))
            elif v["points_expire_at"] <= now:
                row.error("points_expire_at", _("is in the past: those points have lapsed"))
        for code in v.get("tags", ()):
            if not code.replace("-", "").replace("_", "").isalnum() or not code.isascii():
                row.error("tags", _("“%(code)s” is not a tag code") % {"code": code})

    def check(self, rows: list[Row]) -> tuple[dict[int, str], Any]:
        for row in rows:
            self._row_problems(row)
        valid = [row for row in rows if not row.errors]
        ids = [row.values["external_id"] for row in valid]
        existing = {m.external_id: m for m in Member.objects.filter(external_id__any_of=ids)}
        known = [member.pk for member in existing.values()]
        balances = opening_balances(known)
        tags = member_tag_codes(known)
        consents = consents_of_members(known)
        self._note_phones(valid)
        found = []
        for row in valid:
            member = existing.get(row.values["external_id"])
            found.append((row, member, self._changes(row.values, member, balances, tags, consents)))
        self._lowered_below_zero(found)
        outcomes, plan = {}, []
        for row, member, changes in found:
            if row.errors:
                continue
            outcomes[row.number] = CREATE if member is None else UPDATE if changes else UNCHANGED
            plan.append((row.values, member, changes))
        return outcomes, plan

    def _lowered_below_zero(self, found: list[tuple[Row, Member | None, dict]]) -> None:
        """A lower opening balance is taken off what the member has now: not below zero
        (they spent some since it was first brought)."""
        lowered = [
            (row, member, name, changes[name])
            for row, member, changes in found
            for name in ("points", "growth_points")
            if name in changes and member is not None and _difference(changes[name]) < 0
        ]
        if not lowered:
            return
        now = balances_now([member.pk for _row, member, _name, _change in lowered])
        for row, member, name, change in lowered:
            held = now.get(member.pk, (0, 0))[name == "growth_points"]
            if held + _difference(change) < 0:
                row.error(
                    name,
                    _("the member has %(held)d now: taking %(less)d off leaves less than 0")
                    % {"held": held, "less": -_difference(change)},
                )

    def _note_phones(self, rows: list[Row]) -> None:
        """Phones under more than one external id, in the file or held by members."""
        in_batch: dict[str, set[str]] = {}
        for row in rows:
            if (phone := row.values.get("phone")) is not None:
                in_batch.setdefault(phone, set()).add(row.values["external_id"])
        pairs = [(phone, min(ids)) for phone, ids in in_batch.items()]
        firsts = self.phones.first_rows(pairs)
        for phone, ids in in_batch.items():
            if len(ids) > 1 or phone in firsts:
                self.shared.setdefault(phone, set()).update(ids, [firsts.get(phone, min(ids))])
        held = Member.objects.filter(phone__any_of=list(in_batch))
        held = held.values_list("phone", "external_id")
        for phone, external_id in held:
            if {external_id} != in_batch[phone]:
                self.shared.setdefault(phone, set()).update(in_batch[phone], [external_id])

    def duplicates(self) -> list[str]:
        return [
            _("phone %(phone)s: %(members)s")
            % {"phone": mask_phone(phone), "members": ", ".join(sorted(ids))}
            for phone, ids in sorted(self.shared.items())
        ]

    def _changes(self, v, member, balances, tags, consents) -> dict[str, Any]:
        """What the row changes of the member (everything, for a new one)."""
        changes = {}
        for name in DETAILS:
            if name in v and (member is None or getattr(member, name) != v[name]):
                changes[name] = v[name]
        tier = self.tiers.get(v.get("tier"))
        held = tier is not None and member is not None and member.tier_id == tier.pk
        # A tier the member holds, given without dates, keeps its period (renewals since
        # the member went live moved it on).
        if tier is not None and not (held and "tier_since" not in v and "tier_expires_at" not in v):
            since = v.get("tier_since") or (member.tier_since if held else None) or self.now
            until = v.get("tier_expires_at") or self._expiry(tier, since)
            current = (
                (member.tier_id, member.tier_since, member.tier_expires_at) if member else None
            )
            if current != (tier.pk, since, until):
                changes["tier"] = (tier, since, until)
        had_points, had_growth = balances.get(member.pk, (0, 0)) if member else (0, 0)
        if v.get("points", had_points) != had_points:
            changes["points"] = (v["points"] - had_points, v.get("points_expire_at"))
        if v.get("growth_points", had_growth) != had_growth:
            changes["growth_points"] = v["growth_points"] - had_growth
        if "tags" in v and set(v["tags"]) != (tags.get(member.pk, set()) if member else set()):
            changes["tags"] = set(v["tags"])
        for name, channel in CONSENTS.items():
            if name in v and (consents.get((member.pk, channel)) if member else None) != v[name]:
                changes[name] = v[name]
        return changes

    # Writing

    def begin(self, *, one_transaction: bool) -> None:
        pass

    def write(self, plan: list[tuple[dict, Member | None, dict]]) -> None:
        new = [(v, changes) for v, member, changes in plan if member is None]
        created = bulk.members_create_silently(
            [{n: v[n] for n in ("external_id", *DETAILS) if n in v} for v, _c in new],
            [self._placement(changes) for _v, changes in new],
        )
        updated, fields = [], set()
        for _v, member, changes in plan:
            if member is not None and (details := {n: changes[n] for n in DETAILS if n in changes}):
                for name, value in details.items():
                    setattr(member, name, value)
                updated.append(member)
                fields |= set(details)
        if updated:
            bulk.members_update_silently(updated, fields)
        self._write_tiers([(v, m, c) for v, m, c in plan if m is not None])
        # Every row by member id from here on.
        rows = [(v, m.pk if m else created[v["external_id"]], c) for v, m, c in plan]
        self.placed += [pk for v, pk, _c in rows if "tier" not in v]
        opening_balances_record(
            points=[(pk, *c["points"]) for _v, pk, c in rows if "points" in c],
            growth=[(pk, c["growth_points"]) for _v, pk, c in rows if "growth_points" in c],
        )
        with_tags = [(pk, c["tags"]) for _v, pk, c in rows if "tags" in c]
        if with_tags:
            ids = bulk.tags_ensure(code for _pk, codes in with_tags for code in codes)
            bulk.members_tags_set({pk: {ids[code] for code in codes} for pk, codes in with_tags})
        consents_record_many(
            [(pk, CONSENTS[name], c[name]) for _v, pk, c in rows for name in CONSENTS if name in c],
            source=CONSENT_SOURCE,
        )

    def _placement(self, changes: dict) -> bulk.Placement | None:
        """A new member's tier: the file's, or the base tier."""
        if "tier" in changes:
            return (*changes["tier"], TIER_REASON)
        return (self.base, self.now, None, BASE_REASON) if self.base is not None else None

    def _write_tiers(self, rows: list[tuple[dict, Member, dict]]) -> None:
        """Members there before: the file's tier, or the base tier for one without."""
        from_file = [(m, *c["tier"]) for _v, m, c in rows if "tier" in c]
        if from_file:
            bulk.members_tier_imported(from_file, reason=TIER_REASON)
        untiered = [m for v, m, _c in rows if "tier" not in v and m.tier_id is None]
        if self.base is not None and untiered:
            bulk.members_tier_imported(
                [(m, self.base, self.now, None) for m in untiered], reason=BASE_REASON
            )

    def finish(self, beat: Beat) -> list[str]:
        lines = []
        if self.place_by_rules:
            moved = tiers_from_rules(self.placed, progress=beat)
            lines.append(
                _("Tiers from the upgrade rules: %(moved)d members moved up.") % {"moved": moved}
            )
        return lines + programme_summary()
