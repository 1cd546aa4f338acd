"""The condition logic line: numbered conditions combined with and/or and parentheses,
e.g. "(1 and 2) or 3". `and` binds tighter than `or`, as in most languages."""

import re
from collections.abc import Mapping

from django.utils.translation import gettext

# A parsed expression: a condition number, or ("and" | "or", [operands]).
Node = int | tuple[str, list["Node"]]

TOKEN_RE = re.compile(r"\s*(?:(\d+)|(\()|(\))|(and|or)\b)", re.IGNORECASE)


class LogicError(ValueError):
    pass


def parse(text: str) -> Node:
    tokens = _tokenize(text)
    if not tokens:
        raise LogicError(gettext("The logic is empty."))
    node, rest = _parse_or(tokens)
    if rest:
        raise LogicError(gettext("Unexpected '%(token)s' in the logic.") % {"token": rest[0]})
    return node


def evaluate(node: Node, results: Mapping[int, bool]) -> bool:
    if isinstance(node, int):
        # Saving a rule checks that its logic names only its conditions; should one go
        # missing anyway, the rule does not match rather than the evaluation failing.
        return results.get(node, False)
    op, operands = node
    combine = all if op == "and" else any
    return combine(evaluate(operand, results) for operand in operands)


def numbers(node: Node) -> set[int]:
    if isinstance(node, int):
        return {node}
    return set().union(*(numbers(operand) for operand in node[1]))


def to_text(node: Node, *, nested: bool = False) -> str:
    if isinstance(node, int):
        return str(node)
    op, operands = node
    text = f" {op} ".join(to_text(operand, nested=True) for operand in operands)
    return f"({text})" if nested else text


def _tokenize(text: str) -> list[str]:
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = TOKEN_RE.match(text, position)
        if not match:
            raise LogicError(
                gettext(
                    "Cannot read '%(text)s': use condition numbers, 'and', 'or' and parentheses."
                )
                % {"text": text[position:].strip()}
            )
        tokens.append(match.group(match.lastindex).lower())
        position = match.end()
    return tokens


def _parse_or(tokens: list[str]) -> tuple[Node, list[str]]:
    return _parse_chain(tokens, "or", _parse_and)


def _parse_and(tokens: list[str]) -> tuple[Node, list[str]]:
    return _parse_chain(tokens, "and", _parse_operand)


def _parse_chain(tokens, op, parse_operand) -> tuple[Node, list[str]]:
    node, tokens = parse_operand(tokens)
    operands = [node]
    while tokens and tokens[0] == op:
        node, tokens = parse_operand(tokens[1:])
        operands.append(node)
    if len(operands) == 1:
        return operands[0], tokens
    # Flatten "1 and (2 and 3)" into one group: same meaning, simpler to show.
    flat = []
    for operand in operands:
        same_op = not isinstance(operand, int) and operand[0] == op
        flat.extend(operand[1] if same_op else [operand])
    return (op, flat), tokens


def _parse_operand(tokens: list[str]) -> tuple[Node, list[str]]:
    if not tokens:
        raise LogicError(gettext("The logic ends too early."))
    head, rest = tokens[0], tokens[1:]
    if head.isdigit():
        return int(head), rest
    if head == "(":
        node, rest = _parse_or(rest)
        if not rest or rest[0] != ")":
            raise LogicError("A '(' is not closed.")
        return node, rest[1:]
    raise LogicError(
        gettext("Expected a condition number or '(', found '%(token)s'.") % {"token": head}
    )


def check(text: str, positions: set[int]) -> str | None:
    """Why a logic line does not fit a rule's numbered conditions, or None if it does."""
    if not text.strip():
        return None
    try:
        used = numbers(parse(text))
    except LogicError as exc:
        return str(exc)
    if unknown := sorted(used - positions):
        names = ", ".join(map(str, unknown))
        return gettext(
            "The logic names condition(s) %(numbers)s, which the rule does not have."
        ) % {"numbers": names}
    if unused := sorted(positions - used):
        return gettext("Condition(s) %(numbers)s are not used in the logic.") % {
            "numbers": ", ".join(map(str, unused))
        }
    return None
