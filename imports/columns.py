"""An import's columns: which it knows, which it needs, how each cell is read; the header
checked against them, and each row read into values and field errors."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from .files import FileError
from .values import Cell


@dataclass(frozen=True)
class Column:
    name: str
    parse: Callable[[Cell], Any]
    required: bool = False


@dataclass
class Row:
    """A data row: its number in the file, its values (only the cells not empty) and its
    problems as (column, message)."""

    number: int
    cells: list[Any]
    values: dict[str, Any] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)

    def error(self, column: str, message: str) -> None:
        self.errors.append((column, message))


class Columns:
    def __init__(self, columns: Sequence[Column]) -> None:
        self.known = {column.name: column for column in columns}

    def positions(self, header: list[str], *, ignore_unknown: bool) -> dict[str, int]:
        """Each known column's position in the header; FileError for a header with an
        unknown column (unless ignored), a column twice, or a required one missing."""
        problems, positions = [], {}
        for position, name in enumerate(header):
            if not name:
                continue
            if name in positions:
                problems.append(_("the column “%(name)s” is there twice") % {"name": name})
            elif name in self.known:
                positions[name] = position
            elif not ignore_unknown:
                problems.append(
                    _("unknown column “%(name)s” (known: %(known)s; or --ignore-columns)")
                    % {"name": name, "known": ", ".join(self.known)}
                )
        for name, column in self.known.items():
            if column.required and name not in positions:
                problems.append(_("the column “%(name)s” is missing") % {"name": name})
        if problems:
            raise FileError(_("Header row: %(problems)s.") % {"problems": "; ".join(problems)})
        return positions

    def read(self, number: int, cells: list[Any], positions: dict[str, int]) -> Row:
        row = Row(number, cells)
        for name, position in positions.items():
            cell = cells[position] if position < len(cells) else None
            try:
                value = self.known[name].parse(cell)
            except ValueError as exc:
                row.error(name, str(exc))
                continue
            if value is not None and value != []:
                row.values[name] = value
            elif self.known[name].required:
                row.error(name, _("is required"))
        return row
