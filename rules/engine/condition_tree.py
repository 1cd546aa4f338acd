"""Condition trees in files ({all: [...]}/{any: [...]}) and numbered conditions with a
logic line in the database ("(1 and 2) or 3") are two views of one thing."""

from typing import Any

from . import logic_line


def tree_to_rows(tree: dict | None) -> tuple[list[dict], str]:
    """Numbered condition rows and the logic line; empty logic means "all of them"."""
    if not tree:
        return [], ""
    rows: list[dict] = []

    def walk(node: dict) -> logic_line.Node:
        for key, op in (("all", "and"), ("any", "or")):
            if key in node:
                return (op, [walk(child) for child in node[key]])
        rows.append(
            {**{k: v for k, v in node.items() if k != "position"}, "position": len(rows) + 1}
        )
        return len(rows)

    # Re-parse so nested groups of the same kind flatten exactly as a typed line would.
    expression = logic_line.parse(logic_line.to_text(walk(tree)))
    if isinstance(expression, int) or (
        expression[0] == "and" and all(isinstance(operand, int) for operand in expression[1])
    ):
        return rows, ""  # "all of them", the default
    return rows, logic_line.to_text(expression)


def canonical(rows: list[dict], line: str) -> tuple[list[dict], str]:
    """The one stored form of a rule's conditions: numbered 1, 2, … in the order the logic
    names them, and no logic line when they must simply all hold. "2 or 1" over rows 10
    and 20 becomes "1 or 2" over rows 1 and 2; "1 and 2" becomes ""."""
    return tree_to_rows(rows_to_tree(rows, line))


def rows_to_tree(rows: list[dict], line: str, leaf=lambda row: row) -> dict | None:
    if not rows:
        return None
    by_position = {row["position"]: row for row in rows}
    expression = logic_line.parse(line) if line else ("and", sorted(by_position))

    def build(node: logic_line.Node) -> Any:
        if isinstance(node, int):
            return leaf(by_position[node])
        op, operands = node
        return {"all" if op == "and" else "any": [build(operand) for operand in operands]}

    tree = build(expression)
    return tree if "all" in tree or "any" in tree else {"all": [tree]}


def leaves_with_paths(tree: dict | None, path: tuple = ()) -> list[tuple[tuple, dict]]:
    """Each condition in the tree with its path inside the file, for error messages."""
    if not tree:
        return []
    for key in ("all", "any"):
        if key in tree:
            found = []
            for index, child in enumerate(tree[key]):
                found.extend(leaves_with_paths(child, (*path, key, index)))
            return found
    return [(path, tree)]
