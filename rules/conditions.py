"""One condition: a fact, an operator and a value, as an operator types them.

Values are stored as the text an operator typed ("2000", "silver, gold", "100, 500") and
parsed by the fact's kind; `validate` turns every mistake into a sentence they can act on.
"""

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext_lazy as _

from .facts import COUNT, FACTS, MONEY, TIER

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
            raise ValueError("Give at least one value, separated by commas.")
        if op == "between":
            if len(values) != 2:
                raise ValueError("Give two values for 'between': low, high.")
            if values[0] > values[1]:
                raise ValueError("For 'between', the first value must not exceed the second.")
        return values
    return _parse_scalar(kind, str(text).strip())


def normalize_value(op: str, text: str) -> str:
    """The canonical way to store a typed value: lists as "a, b", no stray spaces."""
    if op in LIST_OPERATORS or op == "between":
        return ", ".join(part.strip() for part in SEPARATOR_RE.split(str(text)) if part.strip())
    return str(text).strip()


def _parse_scalar(kind: str, text: str) -> Any:
    if not text:
        raise ValueError("Enter a value.")
    if kind == MONEY:
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"'{text}' is not an amount of money.") from None
        if not value.is_finite():
            raise ValueError(f"'{text}' is not an amount of money.")
        return value
    if kind == COUNT:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"'{text}' is not a whole number.") from None
    return text


def validate(
    fact: str, op: str, value: str, days: int | None, *, tier_codes: set[str] | None = None
) -> dict[str, str]:
    """Field name -> message for everything wrong with one condition. Tier codes are checked
    against `tier_codes` when given (a programme file's own), else the database."""
    definition = FACTS.get(fact)
    if definition is None:
        return {"fact": f"Unknown fact '{fact}'."}
    errors = {}
    if op not in OPERATORS:
        errors["op"] = f"Unknown operator '{op}'."
    elif op in ORDERED_OPERATORS and definition.kind == TIER:
        errors["op"] = (
            "Tiers are compared with =, ≠, 'is one of' or 'is none of'; for ≥ use the tier rank."
        )
    if definition.windowed and not days:
        errors["days"] = f"'{definition.label}' needs the number of days to look back."
    elif not definition.windowed and days:
        errors["days"] = f"'{definition.label}' does not look back over days; leave it empty."
    if "op" not in errors:
        try:
            parsed = parse_value(definition.kind, op, value)
        except ValueError as exc:
            errors["value"] = str(exc)
        else:
            if definition.kind == TIER:
                codes = set(parsed) if isinstance(parsed, tuple) else {parsed}
                if tier_codes is None:
                    from members.selectors import tiers_by_code

                    tier_codes = set(tiers_by_code(codes))
                if missing := sorted(codes - tier_codes):
                    errors["value"] = f"Unknown tier code: {', '.join(missing)}."
    return errors


def evaluate(actual: Any, op: str, parsed: Any) -> bool:
    """A fact with no value (no triggering order, say) satisfies no condition."""
    if actual is None:
        return False
    return OPERATORS[op](actual, parsed)


def describe(fact: str, op: str, value: str, days: int | None) -> str:
    definition = FACTS.get(fact)
    label = str(definition.label) if definition else fact
    if days:
        label = label.replace("N days", f"{days} days")
    return f"{label} {dict(OPERATOR_CHOICES).get(op, op)} {value}"
