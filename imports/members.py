"""Importing members: created or updated by external id, silently (no rule sees them
join), with their tier, opening points and growth balances, tags and consents."""

from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from benefits.services.opening import opening_balances, opening_balances_record
from core.pii import mask_phone
from members import bulk
from members.models import Member, Tier, external_id_validator
from members.selectors import member_tag_codes, tier_base
from notifications.selectors import consents_of_members
from notifications.services.consent import consents_record_many

from . import values
from .columns import Column, Columns, Row
from .runner import CREATE, UNCHANGED, UPDATE
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


def _external_id(cell: values.Cell) -> str | None:
    value = values.plain_text(cell, max_length=64)
    if value is not None:
        try:
            external_id_validator(value)
        except ValidationError as exc:
            raise ValueError(" ".join(exc.messages)) from None
    return value


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

    def start(self) -> None:
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
            until = v.get("tier_expires_at") or self.tiers[v["tier"]].expiry_from(
                v.get("tier_since", now)
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
        existing = {m.external_id: m for m in Member.objects.filter(external_id__in=ids)}
        known = [member.pk for member in existing.values()]
        balances = opening_balances(known)
        tags = member_tag_codes(known)
        consents = consents_of_members(known)
        self._note_phones(valid)
        outcomes, plan = {}, []
        for row in valid:
            member = existing.get(row.values["external_id"])
            changes = self._changes(row.values, member, balances, tags, consents)
            outcomes[row.number] = CREATE if member is None else UPDATE if changes else UNCHANGED
            plan.append((row.values, member, changes))
        return outcomes, plan

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
        held = Member.objects.filter(phone__in=list(in_batch)).values_list("phone", "external_id")
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
            until = v.get("tier_expires_at") or tier.expiry_from(since)
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

    def write(self, plan: list[tuple[dict, Member | None, dict]]) -> None:
        new = [
            Member(**{n: v[n] for n in DETAILS if n in v}, external_id=v["external_id"])
            for v, member, _changes in plan
            if member is None
        ]
        bulk.members_create_silently(new)
        created = {member.external_id: member for member in new}
        updated, fields = [], set()
        for _v, member, changes in plan:
            if member is not None and (details := {n: changes[n] for n in DETAILS if n in changes}):
                for name, value in details.items():
                    setattr(member, name, value)
                updated.append(member)
                fields |= set(details)
        if updated:
            bulk.members_update_silently(updated, fields)
        rows = [(v, member or created[v["external_id"]], changes) for v, member, changes in plan]
        self._write_tiers(rows)
        opening_balances_record(
            points=[(m.pk, *c["points"]) for _v, m, c in rows if "points" in c],
            growth=[(m.pk, c["growth_points"]) for _v, m, c in rows if "growth_points" in c],
        )
        with_tags = [(m, c["tags"]) for _v, m, c in rows if "tags" in c]
        if with_tags:
            ids = bulk.tags_ensure(code for _m, codes in with_tags for code in codes)
            bulk.members_tags_set({m.pk: {ids[code] for code in codes} for m, codes in with_tags})
        consents_record_many(
            [
                (m.pk, CONSENTS[name], c[name])
                for _v, m, c in rows
                for name in CONSENTS
                if name in c
            ],
            source=CONSENT_SOURCE,
        )

    def _write_tiers(self, rows: list[tuple[dict, Member, dict]]) -> None:
        from_file = [(m, *c["tier"]) for _v, m, c in rows if "tier" in c]
        if from_file:
            bulk.members_tier_imported(from_file, reason=TIER_REASON)
        untiered = [m for v, m, _c in rows if "tier" not in v and m.tier_id is None]
        if self.base is not None and untiered:
            bulk.members_tier_imported(
                [(m, self.base, self.now, None) for m in untiered], reason=BASE_REASON
            )
        self.placed += [m.pk for v, m, _c in rows if "tier" not in v]

    def finish(self) -> list[str]:
        lines = []
        if self.place_by_rules:
            moved = tiers_from_rules(self.placed)
            lines.append(
                _("Tiers from the upgrade rules: %(moved)d members moved up.") % {"moved": moved}
            )
        return lines + programme_summary()
