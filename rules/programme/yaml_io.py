"""Reading programme files with line numbers for errors, and writing them back in the
compact style people write by hand (one-line mappings where they fit)."""

from decimal import Decimal
from typing import Any

import yaml

Path = tuple[str | int, ...]


class YamlSyntaxError(ValueError):
    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line


def parse(text: str) -> tuple[Any, yaml.Node | None]:
    """The data and its node tree (for locating errors)."""
    try:
        return yaml.safe_load(text), yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlSyntaxError(
            mark.line + 1 if mark else None, f"YAML syntax error: {problem}"
        ) from exc
    except RecursionError as exc:
        raise YamlSyntaxError(None, "The file nests too deeply to be a programme.") from exc


def line_of(root: yaml.Node | None, path: Path) -> int | None:
    """1-based line of the deepest node along `path` (a missing key points at its parent)."""
    node, line = root, None
    for step in path:
        if node is None:
            break
        line = node.start_mark.line + 1
        node = _child(node, step)
    if node is not None:
        line = node.start_mark.line + 1
    return line


def _child(node: yaml.Node, step: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == str(step):
                return value
    elif (
        isinstance(node, yaml.SequenceNode)
        and isinstance(step, int)
        and 0 <= step < len(node.value)
    ):
        return node.value[step]
    return None


class _Dumper(yaml.SafeDumper):
    pass


def _represent_dict(dumper: yaml.SafeDumper, data: dict) -> yaml.Node:
    scalars = all(
        not isinstance(value, (dict, list)) and "\n" not in str(value) for value in data.values()
    )
    flow = scalars and len(repr(data)) <= 110
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=flow)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


def _represent_decimal(dumper: yaml.SafeDumper, data: Decimal) -> yaml.Node:
    return dumper.represent_data(number_or_text(str(data)))


_Dumper.add_representer(dict, _represent_dict)
_Dumper.add_multi_representer(str, _represent_str)  # and choices enums
_Dumper.add_representer(Decimal, _represent_decimal)


def dump(data: dict) -> str:
    return yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=4096)


def number_or_text(text: str) -> int | float | str:
    """A stored value as YAML will read it back identically: 2000 stays a number, and
    "2000.00" stays text (as a float it would come back as "2000.0")."""
    try:
        if str(int(text)) == text:
            return int(text)
    except ValueError:
        pass
    try:
        if repr(float(text)) == text:
            return float(text)
    except ValueError:
        pass
    return text
