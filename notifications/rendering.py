"""Message templates: Django template syntax over a fixed set of variables.

Templates see plain values (never model instances), so a template can only read what is
listed in VARIABLES, and checking a template for unknown names is exact.
"""

from datetime import datetime
from functools import lru_cache
from typing import Any

from django.template import Context, Engine, Template, TemplateSyntaxError
from django.template.base import Node, TextNode, VariableNode
from django.template.defaulttags import ForNode, IfNode, TemplateLiteral, WithNode

# Root name -> the attributes a template may read (None: a plain value).
VARIABLES: dict[str, frozenset[str] | None] = {
    "member": frozenset({"name", "external_id"}),
    "tier": frozenset({"code", "name", "discount_percent", "discount_label", "expires_at"}),
    "coupon": frozenset(
        {
            "code",
            "name",
            "min_spend",
            "amount_off",
            "percent_off",
            "max_discount",
            "discount_text",
            "expires_at",
        }
    ),
    "points": None,
    "order": frozenset({"external_id", "amount"}),
}

# SMS and push are plain text: nothing is HTML-escaped.
ENGINE = Engine(autoescape=False, libraries={})


def render(body: str, context: dict[str, Any]) -> str:
    return _compiled(body).render(Context(context)).strip()


@lru_cache(maxsize=512)
def _compiled(body: str) -> Template:
    """A template's body, parsed once per process: the daily job may render it for a
    million members."""
    return ENGINE.from_string(body)


def template_errors(body: str) -> list[str]:
    """Syntax errors and unknown variables, as messages an operator can act on."""
    try:
        template = ENGINE.from_string(body)
    except TemplateSyntaxError as exc:
        return [f"Template syntax error: {exc}"]
    local_names = set()
    errors = []
    for node in _walk(template.nodelist):
        # Django leaves an unclosed tag as text, which would reach the customer verbatim.
        if isinstance(node, TextNode) and ("{{" in node.s or "{%" in node.s):
            errors.append("A '{{' or '{%' is not closed.")
        if isinstance(node, ForNode):
            local_names.update(node.loopvars)
        elif isinstance(node, WithNode):
            local_names.update(node.extra_context)
    for lookups in _variables(template.nodelist):
        root, *attributes = lookups
        if root in local_names:
            continue
        if root not in VARIABLES:
            errors.append(f"Unknown variable '{'.'.join(lookups)}'. Available: {_available()}.")
            continue
        allowed = VARIABLES[root]
        if attributes and (allowed is None or attributes[0] not in allowed):
            choices = ", ".join(f"{root}.{name}" for name in sorted(allowed or ()))
            hint = f"Available: {choices}." if choices else f"'{root}' has no attributes."
            errors.append(f"Unknown variable '{'.'.join(lookups)}'. {hint}")
    return sorted(set(errors))


def _available() -> str:
    names = []
    for root, attributes in VARIABLES.items():
        names.extend([root] if attributes is None else [f"{root}.{a}" for a in sorted(attributes)])
    return ", ".join(names)


def _walk(nodelist) -> list[Node]:
    nodes = []
    for node in nodelist:
        nodes.append(node)
        for attr in node.child_nodelists:  # IfNode's covers all of its branches
            nodes.extend(_walk(getattr(node, attr, None) or []))
    return nodes


def _variables(nodelist) -> list[tuple[str, ...]]:
    """Every variable read by the template: in {{ }} and in {% if %} conditions."""
    expressions = []
    for node in _walk(nodelist):
        if isinstance(node, VariableNode):
            expressions.append(node.filter_expression)
        elif isinstance(node, IfNode):
            for condition, _ in node.conditions_nodelists:
                expressions.extend(_condition_expressions(condition))
        elif isinstance(node, ForNode):
            expressions.append(node.sequence)
    found = []
    for expression in expressions:
        variables = [expression.var, *(arg for _, args in expression.filters for _, arg in args)]
        for variable in variables:
            lookups = getattr(variable, "lookups", None)
            if lookups:
                found.append(tuple(lookups))
    return found


def _condition_expressions(condition) -> list:
    if condition is None:
        return []
    if isinstance(condition, TemplateLiteral):
        return [condition.value]
    return _condition_expressions(getattr(condition, "first", None)) + _condition_expressions(
        getattr(condition, "second", None)
    )


# The GSM 03.38 basic alphabet (and the extension characters that take two places): text
# made only of these is sent 7-bit, 160 a message; anything else (Chinese) as UCS-2, 70.
GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = set("^{}\\[~]|€")


def sms_segments(text: str) -> tuple[int, int]:
    """(length as the network counts it, number of SMS parts). A long text is split in
    parts of 153 (7-bit) or 67 (UCS-2) characters; carriers bill per part."""
    if all(char in GSM_BASIC or char in GSM_EXTENDED for char in text):
        length = sum(2 if char in GSM_EXTENDED else 1 for char in text)
        single, part = 160, 153
    else:
        # UCS-2 counts UTF-16 code units: an emoji takes two.
        length = len(text.encode("utf-16-le")) // 2
        single, part = 70, 67
    if length <= single:
        return length, 1 if length else 0
    return length, -(-length // part)


# Typical values, to show how long a template comes out before any member is chosen.
SAMPLE_CONTEXT: dict[str, Any] = {
    "member": {"name": "王小明", "external_id": "M-10001"},
    "tier": {
        "code": "gold",
        "name": "金卡会员",
        "discount_percent": "10.00",
        "discount_label": "9折",
        "expires_at": datetime(2027, 6, 30, 0, 0),
    },
    "coupon": {
        "code": "K7M2-9QX4-T3AB",
        "name": "满300减50",
        "min_spend": "300",
        "amount_off": "50",
        "percent_off": "",
        "max_discount": "",
        "discount_text": "满300减50",
        "expires_at": datetime(2026, 12, 8, 0, 0),
    },
    "points": 500,
    "order": {"external_id": "SO-1001", "amount": "2100"},
}
