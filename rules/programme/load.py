"""`load_programme`: validate a whole programme file, then apply it in one transaction.

Nothing is written unless the entire file is valid; every error is reported with the
line and the path of the value at fault. Items are matched by `code`: loading the same
file twice changes nothing, and items absent from the file are left as they are.
"""

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework import serializers

from benefits.models import CouponTemplate, EarningPolicy
from benefits.services import coupons as coupon_services
from benefits.services import points as points_services
from members import services as member_services
from members.models import EngagementKind, Tag, Tier
from notifications.models import NotificationTemplate
from notifications.services.templates import notification_template_upsert

from ..engine import conditions
from ..engine.condition_tree import leaves_with_paths, tree_to_rows
from ..engine.facts import KIND, TAGS, TIER
from ..models import ActionKind, Rule
from ..services.authoring import rule_upsert
from . import yaml_io
from .schema import LIST_SECTIONS, SECTIONS, SPECS

# Which section defines the codes each reference names.
CODE_SECTIONS = {
    "tiers": Tier,
    "tags": Tag,
    "engagement_kinds": EngagementKind,
    "coupon_templates": CouponTemplate,
    "notification_templates": NotificationTemplate,
}
# (action type, key in the file) -> (section it refers to, model field it sets)
ACTION_TARGETS = {
    (ActionKind.SET_TIER, "tier"): ("tiers", "tier"),
    (ActionKind.ISSUE_COUPON, "template"): ("coupon_templates", "coupon_template"),
    (ActionKind.NOTIFY, "template"): ("notification_templates", "notification_template"),
    (ActionKind.ADD_TAG, "tag"): ("tags", "tag"),
    (ActionKind.REMOVE_TAG, "tag"): ("tags", "tag"),
}


@dataclass(frozen=True, order=True)
class ProgrammeError:
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "file"
        return f"{where}: {self.path or '(top level)'}: {self.message}"


class ProgrammeInvalid(Exception):
    def __init__(self, errors: list[ProgrammeError]) -> None:
        super().__init__(f"{len(errors)} error(s) in the programme")
        self.errors = sorted(errors)


@dataclass
class LoadReport:
    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {s: {"created": 0, "updated": 0, "unchanged": 0} for s in SECTIONS}
    )

    def count(self, section: str, *, existed: bool, changed: bool) -> None:
        outcome = "unchanged" if not changed else "updated" if existed else "created"
        self.counts[section][outcome] += 1

    @property
    def changed(self) -> bool:
        return any(c["created"] or c["updated"] for c in self.counts.values())

    def __str__(self) -> str:
        return "\n".join(
            f"{section}: {c['created']} created, {c['updated']} updated, {c['unchanged']} unchanged"
            for section, c in self.counts.items()
            if any(c.values())
        )


def programme_load(text: str) -> LoadReport:
    try:
        data, root = yaml_io.parse(text)
    except yaml_io.YamlSyntaxError as exc:
        raise ProgrammeInvalid([ProgrammeError(exc.line or 0, "", str(exc))]) from exc
    errors: list[tuple[tuple, str]] = []
    sections = _validate_shape(data, errors)
    if not errors:
        _validate_references(sections, errors)
    if errors:
        raise ProgrammeInvalid(
            [
                ProgrammeError(yaml_io.line_of(root, path) or 0, _format_path(path), message)
                for path, message in errors
            ]
        )
    try:
        report = _apply(sections)
    except ValidationError as exc:  # a model check the schema did not anticipate
        raise ProgrammeInvalid([ProgrammeError(0, "", m) for m in exc.messages]) from exc
    # After the load commits, and member by member: each takes its row lock.
    member_services.members_assign_base_tier()
    return report


def _validate_shape(data: Any, errors: list) -> dict[str, Any]:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        errors.append(((), f"Expected a mapping with the keys {', '.join(SECTIONS)}."))
        return {}
    for key in data:
        if key not in SECTIONS:
            errors.append(((key,), f"Unknown section. Expected one of {', '.join(SECTIONS)}."))
    sections: dict[str, Any] = {"earning": None}
    if data.get("earning") is not None:
        spec = SPECS["earning"](data=data["earning"])
        if spec.is_valid():
            sections["earning"] = dict(spec.validated_data)
        else:
            errors.extend(_flatten(spec.errors, ("earning",)))
    for section in LIST_SECTIONS:
        items = data.get(section)
        if items is None:
            items = []
        elif not isinstance(items, list):
            errors.append(((section,), "Expected a list."))
            continue
        spec = SPECS[section](data=items, many=True)
        if spec.is_valid():
            sections[section] = [dict(item) for item in spec.validated_data]
        else:
            errors.extend(_flatten(spec.errors, (section,)))
    for section in LIST_SECTIONS:
        _check_unique(section, sections.get(section, []), "code", errors)
    _check_unique("tiers", sections.get("tiers", []), "rank", errors)
    return sections


def _check_unique(section: str, items: list[dict], key: str, errors: list) -> None:
    seen = set()
    for index, item in enumerate(items):
        if item[key] in seen:
            errors.append(((section, index, key), f"Duplicate {key} '{item[key]}'."))
        seen.add(item[key])


def _validate_references(sections: dict[str, Any], errors: list) -> None:
    """References may point into the file or at what the database already holds."""
    _validate_ranks(sections["tiers"], errors)
    known = {
        section: {item["code"] for item in sections[section]}
        | set(model.objects.values_list("code", flat=True))
        for section, model in CODE_SECTIONS.items()
    }
    condition_codes = {TIER: known["tiers"], TAGS: known["tags"], KIND: known["engagement_kinds"]}
    for index, rule in enumerate(sections["rules"]):
        where = ("rules", index)
        if rule["kind"] is not None and rule["kind"] not in known["engagement_kinds"]:
            errors.append(((*where, "kind"), f"Unknown engagement kind '{rule['kind']}'."))
        for position, action in enumerate(rule["actions"]):
            for (kind, key), (section, _) in ACTION_TARGETS.items():
                if action["type"] == kind and action[key] not in known[section]:
                    what = section.rstrip("s").replace("_", " ")
                    errors.append(
                        ((*where, "actions", position, key), f"Unknown {what} '{action[key]}'.")
                    )
        for path, leaf in leaves_with_paths(rule["conditions"], (*where, "conditions")):
            event_kind = leaf.get("kind")
            if event_kind is not None and event_kind not in known["engagement_kinds"]:
                errors.append(((*path, "kind"), f"Unknown engagement kind '{event_kind}'."))
            problems = conditions.validate(
                leaf["fact"],
                leaf["op"],
                leaf["value"],
                leaf.get("days"),
                has_event_kind=event_kind is not None,
                known_codes=condition_codes,
            )
            field_names = {"event_kind": "kind"}
            errors.extend(
                ((*path, field_names.get(name, name)), msg) for name, msg in problems.items()
            )


def _validate_ranks(tiers: list[dict], errors: list) -> None:
    file_ranks = {t["code"]: t["rank"] for t in tiers}
    db_ranks = dict(Tier.objects.values_list("code", "rank"))
    for index, tier in enumerate(tiers):
        holders = [c for c, r in db_ranks.items() if r == tier["rank"] and c not in file_ranks]
        if holders:
            errors.append(
                (("tiers", index, "rank"), f"Rank {tier['rank']} belongs to tier '{holders[0]}'.")
            )
    ranks = {**db_ranks, **file_ranks}
    if ranks and 0 not in ranks.values():
        errors.append((("tiers",), "One tier needs rank 0: the tier new members start on."))


@transaction.atomic
def _apply(sections: dict[str, Any]) -> LoadReport:
    report = LoadReport()
    existing = {
        section: set(model.objects.values_list("code", flat=True))
        for section, model in CODE_SECTIONS.items()
    }
    existing["rules"] = set(Rule.objects.values_list("code", flat=True))
    if sections["earning"] is not None:
        existed = EarningPolicy.objects.exists()
        _, changed = points_services.earning_policy_update(**sections["earning"])
        report.count("earning", existed=existed, changed=changed)
    wanted_ranks = {t["code"]: t["rank"] for t in sections["tiers"]}
    moving = [
        t.code for t in Tier.objects.filter(code__in=wanted_ranks) if t.rank != wanted_ranks[t.code]
    ]
    member_services.tiers_free_ranks(codes=moving)
    upserts = {
        "tiers": member_services.tier_upsert,
        "tags": member_services.tag_upsert,
        "engagement_kinds": member_services.engagement_kind_upsert,
        "coupon_templates": coupon_services.coupon_template_upsert,
        "notification_templates": notification_template_upsert,
    }
    for section, upsert in upserts.items():
        for spec in sections[section]:
            _, changed = upsert(**spec)
            report.count(section, existed=spec["code"] in existing[section], changed=changed)
    targets = {
        section: {row.code: row for row in model.objects.all()}
        for section, model in CODE_SECTIONS.items()
    }
    for spec in sections["rules"]:
        _, changed = rule_upsert(**_rule_fields(spec, targets))
        report.count("rules", existed=spec["code"] in existing["rules"], changed=changed)
    return report


def _rule_fields(spec: dict, targets: dict[str, dict]) -> dict:
    """A validated rule spec as `rule_upsert` arguments, with codes resolved to rows."""
    rows, logic_line = tree_to_rows(spec["conditions"])
    kinds = targets["engagement_kinds"]
    conditions_rows = [
        {
            "position": row["position"],
            "fact": row["fact"],
            "op": row["op"],
            "value": row["value"],
            "days": row.get("days"),
            "event_kind": kinds[row["kind"]] if row.get("kind") else None,
        }
        for row in rows
    ]
    actions = []
    for position, action in enumerate(spec["actions"], start=1):
        row = {"position": position, "kind": action["type"]}
        for (kind, key), (section, field_name) in ACTION_TARGETS.items():
            if action["type"] == kind:
                row[field_name] = targets[section][action[key]]
        if action["type"] in (ActionKind.AWARD_POINTS, ActionKind.AWARD_GROWTH_POINTS):
            row["points"] = action["points"]
        if action["type"] == ActionKind.WEBHOOK:
            row["webhook_url"] = action["url"]
        row["allow_downgrade"] = action.get("allow_downgrade", False)
        row["channel"] = action.get("channel", "")
        actions.append(row)
    return {
        "code": spec["code"],
        "name": spec["name"],
        "description": spec["description"],
        "trigger": spec["trigger"],
        "trigger_days": spec["days"],
        "engagement_kind": kinds[spec["kind"]] if spec["kind"] else None,
        "priority": spec["priority"],
        "is_active": spec["active"],
        "active_from": spec["active_from"],
        "active_until": spec["active_until"],
        "firing_limit": spec["fires"],
        "budget": spec["budget"],
        "stop_processing": spec["stop_processing"],
        "logic": logic_line,
        "conditions": conditions_rows,
        "actions": actions,
    }


def _flatten(detail: Any, path: tuple) -> list[tuple[tuple, str]]:
    """DRF's nested error structure as (path, message) pairs."""
    if isinstance(detail, dict):
        found = []
        for key, value in detail.items():
            step = () if key == "non_field_errors" else (int(key) if str(key).isdigit() else key,)
            found.extend(_flatten(value, (*path, *step)))
        return found
    if isinstance(detail, list):
        if all(isinstance(item, (str, serializers.ErrorDetail)) for item in detail):
            return [(path, str(item)) for item in detail]
        found = []
        for index, item in enumerate(detail):
            found.extend(_flatten(item, (*path, index)))
        return found
    return [(path, str(detail))]


def _format_path(path: tuple) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text
