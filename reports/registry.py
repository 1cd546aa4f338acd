"""The reports: each a name, its columns and how its rows are computed for a period.
Reports read the other apps through their selectors and write nothing to them."""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from core.errors import NotFound

from .periods import Period


class Kind:
    """How a column's values are written: JSON gives money and rates as decimal strings,
    XLSX as numeric cells."""

    DATE, TEXT, COUNT, MONEY, RATE = "date", "text", "count", "money", "rate"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = Kind.COUNT


@dataclass(frozen=True)
class Report:
    name: str
    title: str
    definition: str  # what each figure means, shown beside it
    columns: Callable[[], Sequence[Column]]
    rows: Callable[[Period], Iterable[Sequence[Any]]]


class ReportNotFound(NotFound):
    pass


REPORTS: dict[str, Report] = {}


def register(report: Report) -> Report:
    REPORTS[report.name] = report
    return report


def report_get(name: str) -> Report:
    try:
        return REPORTS[name]
    except KeyError:
        raise ReportNotFound(f"No report named '{name}'.") from None


RATE_PLACES = Decimal("0.0001")


def rate(part: int, whole: int) -> Decimal:
    """part / whole to four decimals; 0 when there is no whole."""
    return (Decimal(part) / whole).quantize(RATE_PLACES) if whole else Decimal("0.0000")


def fixed(*columns: Column) -> Callable[[], Sequence[Column]]:
    return lambda: columns
