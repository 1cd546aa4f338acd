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

from benefits import services as benefit_services
from benefits.models import CouponTemplate
from members import services as member_services
from members.models import Tier
from notifications import services as notification_services
from notifications.models import NotificationTemplate

from .. import conditions
from .. import services as rule_services
from ..models import ActionKind, Rule
from ..tree import leaves_with_paths, tree_to_rows
from . import yaml_io
from .schema import SECTIONS, SPECS


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


def _validate_shape(data: Any, errors: list) -> dict[str, list[dict]]:
    if data is None:
        return {section: [] for section in SECTIONS}
    if not isinstance(data, dict):
        errors.append(((), f"Expected a mapping with the keys {', '.join(SECTIONS)}."))
        return {}
    for key in data:
        if key not in SECTIONS:
            errors.append(((key,), f"Unknown section. Expected one of {', '.join(SECTIONS)}."))
    sections = {}
    for section in SECTIONS:
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
    for section, items in sections.items():
        _check_unique(section, items, "code", errors)
    _check_unique("tiers", sections.get("tiers", []), "rank", errors)
    return sections


def _check_unique(section: str, items: list[dict], key: str, errors: list) -> None:
    seen = set()
    for index, item in enumerate(items):
        if item[key] in seen:
            errors.append(((section, index, key), f"Duplicate {key} '{item[key]}'."))
        seen.add(item[key])


def _validate_references(sections: dict[str, list[dict]], errors: list) -> None:
    """References may point into the file or at what the database already holds."""
    file_tiers = {t["code"]: t["rank"] for t in sections["tiers"]}
    db_tiers = dict(Tier.objects.values_list("code", "rank"))
    for index, tier in enumerate(sections["tiers"]):
        holders = [c for c, r in db_tiers.items() if r == tier["rank"] and c not in file_tiers]
        if holders:
            errors.append(
                (("tiers", index, "rank"), f"Rank {tier['rank']} belongs to tier '{holders[0]}'.")
            )
    tiers = {**db_tiers, **file_tiers}
    if tiers and 0 not in tiers.values():
        errors.append((("tiers",), "One tier needs rank 0: the tier new members start on."))
    coupons = {t["code"] for t in sections["coupon_templates"]} | set(
        CouponTemplate.objects.values_list("code", flat=True)
    )
    messages = {t["code"] for t in sections["notification_templates"]} | set(
        NotificationTemplate.objects.values_list("code", flat=True)
    )
    known = {
        ActionKind.SET_TIER: ("tier", set(tiers), "tier"),
        ActionKind.ISSUE_COUPON: ("template", coupons, "coupon template"),
        ActionKind.NOTIFY: ("template", messages, "notification template"),
    }
    for index, rule in enumerate(sections["rules"]):
        for position, action in enumerate(rule["actions"]):
            if action["type"] in known:
                key, codes, what = known[action["type"]]
                if action[key] not in codes:
                    errors.append(
                        (
                            ("rules", index, "actions", position, key),
                            f"Unknown {what} '{action[key]}'.",
                        )
                    )
        for path, leaf in leaves_with_paths(rule["conditions"], ("rules", index, "conditions")):
            problems = conditions.validate(
                leaf["fact"], leaf["op"], leaf["value"], leaf.get("days"), tier_codes=set(tiers)
            )
            errors.extend(((*path, name), message) for name, message in problems.items())


@transaction.atomic
def _apply(sections: dict[str, list[dict]]) -> LoadReport:
    report = LoadReport()
    existing = {
        "tiers": set(Tier.objects.values_list("code", flat=True)),
        "coupon_templates": set(CouponTemplate.objects.values_list("code", flat=True)),
        "notification_templates": set(NotificationTemplate.objects.values_list("code", flat=True)),
        "rules": set(Rule.objects.values_list("code", flat=True)),
    }
    wanted_ranks = {t["code"]: t["rank"] for t in sections["tiers"]}
    member_services.tiers_free_ranks(
        codes=[
            t.code
            for t in Tier.objects.filter(code__in=wanted_ranks)
            if t.rank != wanted_ranks[t.code]
        ]
    )
    for spec in sections["tiers"]:
        _, changed = member_services.tier_upsert(**spec)
        report.count("tiers", existed=spec["code"] in existing["tiers"], changed=changed)
    for spec in sections["coupon_templates"]:
        _, changed = benefit_services.coupon_template_upsert(**spec)
        report.count(
            "coupon_templates",
            existed=spec["code"] in existing["coupon_templates"],
            changed=changed,
        )
    for spec in sections["notification_templates"]:
        _, changed = notification_services.notification_template_upsert(**spec)
        report.count(
            "notification_templates",
            existed=spec["code"] in existing["notification_templates"],
            changed=changed,
        )
    targets = {
        "tier": {t.code: t for t in Tier.objects.all()},
        "coupon_template": {t.code: t for t in CouponTemplate.objects.all()},
        "notification_template": {t.code: t for t in NotificationTemplate.objects.all()},
    }
    for spec in sections["rules"]:
        _, changed = rule_services.rule_upsert(**_rule_fields(spec, targets))
        report.count("rules", existed=spec["code"] in existing["rules"], changed=changed)
    return report


def _rule_fields(spec: dict, targets: dict[str, dict]) -> dict:
    """A validated rule spec as `rule_upsert` arguments, with codes resolved to rows."""
    rows, logic_line = tree_to_rows(spec["conditions"])
    actions = []
    for position, action in enumerate(spec["actions"], start=1):
        row = {"position": position, "kind": action["type"]}
        if action["type"] == ActionKind.SET_TIER:
            row.update(
                tier=targets["tier"][action["tier"]], allow_downgrade=action["allow_downgrade"]
            )
        elif action["type"] == ActionKind.ISSUE_COUPON:
            row["coupon_template"] = targets["coupon_template"][action["template"]]
        elif action["type"] == ActionKind.NOTIFY:
            row["notification_template"] = targets["notification_template"][action["template"]]
        elif action["type"] == ActionKind.AWARD_POINTS:
            row["points"] = action["points"]
        actions.append(row)
    return {
        "code": spec["code"],
        "name": spec["name"],
        "description": spec["description"],
        "trigger": spec["trigger"],
        "priority": spec["priority"],
        "is_active": spec["active"],
        "active_from": spec["active_from"],
        "active_until": spec["active_until"],
        "firing_limit": spec["fires"],
        "stop_processing": spec["stop_processing"],
        "logic": logic_line,
        "conditions": rows,
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
