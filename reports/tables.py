"""A report's table for a period, as the API answers it and the files hold it."""

from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from core.money import money

from .periods import Period
from .registry import Column, Kind, Report


def report_table(report: Report, period: Period) -> tuple[Sequence[Column], list[list[Any]]]:
    return report.columns(), [list(row) for row in report.rows(period)]


def json_rows(columns: Sequence[Column], rows: Iterable[Sequence[Any]]) -> list[list[Any]]:
    """Dates as YYYY-MM-DD, money as decimal strings (two places), rates as decimal
    strings (four places), counts as numbers."""
    kinds = [column.kind for column in columns]
    return [[_json(value, kind) for value, kind in zip(row, kinds, strict=True)] for row in rows]


def _json(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()
    if kind == Kind.MONEY:
        return str(money(value))
    if kind == Kind.RATE:
        return str(Decimal(value).quantize(Decimal("0.0001")))
    return value
