"""One condition: a fact, an operator and a value, as an operator types them.

Values are stored as the text an operator typed ("2000", "silver, gold", "100, 500") and
parsed by the fact's kind; `validate` turns every mistake into a sentence they can act on.
"""

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .facts import COUNT, FACTS, KIND, MONEY, TAGS, TIER, fact_describe

OPERATOR_CHOICES = [
    ("gte", "≥"),
    ("gt", ">"),
    ("lte", "≤"),
    ("lt", "<"),
    ("eq", "="),
    ("ne", "≠"),
    ("in", _("is one of")),
    ("not_in", _("is none of")),
    ("between", _("is between")),
]
OPERATORS = {
    "gte": lambda actual, value: actual >= value,
    "gt": lambda actual, value: actual > value,
    "lte": lambda actual, value: actual <= value,
    "lt": lambda actual, value: actual < value,
    "eq": lambda actual, value: actual == value,
    "ne": lambda actual, value: actual != value,
    "in": lambda actual, value: actual in value,
    "not_in": lambda actual, value: actual not in value,
    "between": lambda actual, value: value[0] <= actual <= value[1],
}
LIST_OPERATORS = {"in", "not_in"}
ORDERED_OPERATORS = {"gte", "gt", "lte", "lt", "between"}
SEPARATOR_RE = re.compile("[,\uff0c]")  # ASCII or full-width comma


def parse_value(kind: str, op: str, text: str) -> Any:
    """The typed value for `op`: a scalar, a tuple for in/not_in, (low, high) for between.
    Raises ValueError with an operator-facing message."""
    if op in LIST_OPERATORS or op == "between":
        parts = [part.strip() for part in SEPARATOR_RE.split(str(text)) if part.strip()]
        values = tuple(_parse_scalar(kind, part) for part in parts)
        if not values:
            raise ValueError(gettext("Give at least one value, separated by commas."))
        if op == "between":
            if len(values) != 2:
                raise ValueError(gettext("Give two values for 'between': low, high."))
            if values[0] > values[1]:
                raise ValueError(
                    gettext("For 'between', the first value must not exceed the second.")
                )
        return values
    return _parse_scalar(kind, str(text).strip())


def normalize_value(op: str, text: str) -> str:
    """The canonical way to store a typed value: lists as "a, b", no stray spaces."""
    if op in LIST_OPERATORS or op == "between":
        return ", ".join(part.strip() for part in SEPARATOR_RE.split(str(text)) if part.strip())
    return str(text).strip()


def _parse_scalar(kind: str, text: str) -> Any:
    if not text:
        raise ValueError(gettext("Enter a value."))
    if kind == MONEY:
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise ValueError(
                gettext("'%(text)s' is not an amount of money.") % {"text": text}
            ) from None
        if not value.is_finite():
            raise ValueError(gettext("'%(text)s' is not an amount of money.") % {"text": text})
        return value
    if kind == COUNT:
        try:
            return int(text)
        except ValueError:
            raise ValueError(
                gettext("'%(text)s' is not a whole number.") % {"text": text}
            ) from None
    return text


# Which values each kind of code-valued fact takes, and how operators should read them.
CODE_KINDS = {
    TIER: (
        _("tier"),
        _("Tiers are compared with =, ≠, 'is one of' or 'is none of'; for ≥ use the tier rank."),
    ),
    TAGS: (_("tag"), _("Tags are tested with 'is one of' (has any of them) or 'is none of'.")),
    KIND: (
        _("engagement kind"),
        _("Engagement kinds are compared with =, ≠, 'is one of' or 'is none of'."),
    ),
}
ALLOWED_OPERATORS = {
    TIER: {"eq", "ne", "in", "not_in"},
    TAGS: LIST_OPERATORS,
    KIND: {"eq", "ne", "in", "not_in"},
}


def validate(
    fact: str,
    op: str,
    value: str,
    days: int | None,
    *,
    has_event_kind: bool = False,
    known_codes: dict[str, set[str]] | None = None,
) -> dict[str, str]:
    """Field name -> message for everything wrong with one condition. Codes (tiers, tags,
    engagement kinds) are checked against `known_codes` when given (a programme file's
    own), else against the database."""
    definition = FACTS.get(fact)
    if definition is None:
        return {"fact": gettext("Unknown fact '%(fact)s'.") % {"fact": fact}}
    errors = {}
    label = {"fact": definition.label}
    if op not in OPERATORS:
        errors["op"] = gettext("Unknown operator '%(op)s'.") % {"op": op}
    elif definition.kind in ALLOWED_OPERATORS and op not in ALLOWED_OPERATORS[definition.kind]:
        errors["op"] = CODE_KINDS[definition.kind][1]
    if definition.windowed and not days:
        errors["days"] = gettext("'%(fact)s' needs the number of days to look back.") % label
    elif not definition.windowed and days:
        errors["days"] = gettext("'%(fact)s' does not look back over days; leave it empty.") % label
    if has_event_kind and not definition.takes_event_kind:
        errors["event_kind"] = gettext("'%(fact)s' is not counted by engagement kind.") % label
    if "op" not in errors:
        try:
            parsed = parse_value(definition.kind, op, value)
        except ValueError as exc:
            errors["value"] = str(exc)
        else:
            if definition.kind in CODE_KINDS:
                codes = set(parsed) if isinstance(parsed, tuple) else {parsed}
                known = (known_codes or {}).get(definition.kind)
                if known is None:
                    known = _codes_in_database(definition.kind, codes)
                if missing := sorted(codes - known):
                    what = CODE_KINDS[definition.kind][0]
                    errors["value"] = gettext("Unknown %(what)s code: %(codes)s.") % {
                        "what": what,
                        "codes": ", ".join(missing),
                    }
    return errors


def _code_model(kind: str):
    from members.models import EngagementKind, Tag, Tier

    return {TIER: Tier, TAGS: Tag, KIND: EngagementKind}[kind]


def _codes_in_database(kind: str, codes: set[str]) -> set[str]:
    return set(_code_model(kind).objects.filter(code__in=codes).values_list("code", flat=True))


def codes_from_names(fact: str, op: str, text: str) -> str:
    """Operators see tiers, tags and engagement kinds by name (金卡会员); conditions hold
    their codes (gold). Names typed as values become codes."""
    definition = FACTS.get(fact)
    if definition is None or definition.kind not in CODE_KINDS:
        return text
    parts = [part.strip() for part in SEPARATOR_RE.split(str(text)) if part.strip()]
    by_name = dict(
        _code_model(definition.kind).objects.filter(name__in=parts).values_list("name", "code")
    )
    codes = _codes_in_database(definition.kind, set(parts))
    return normalize_value(
        op, ", ".join(part if part in codes else by_name.get(part, part) for part in parts)
    )


def evaluate(actual: Any, op: str, parsed: Any) -> bool:
    """A fact with no value (no triggering order, say) satisfies no condition. A set of
    tags is "one of" the values when it holds any of them."""
    if actual is None:
        return False
    if isinstance(actual, frozenset):
        return bool(actual & set(parsed)) == (op == "in")
    return OPERATORS[op](actual, parsed)


def describe(
    fact: str, op: str, value: str, days: int | None, event_kind: str | None = None
) -> str:
    return f"{fact_describe(fact, days, event_kind)} {dict(OPERATOR_CHOICES).get(op, op)} {value}"
