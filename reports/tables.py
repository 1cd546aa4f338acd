"""A report's table for a period, as the API answers it and the files hold it."""

from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext_lazy as _

from core.money import money

from .periods import Period
from .registry import Column, Kind, Report


def report_table(report: Report, period: Period) -> tuple[Sequence[Column], list[list[Any]]]:
    return report.columns(), [list(row) for row in report.rows(period)]


def report_filename(report: Report, period: Period) -> str:
    return f"{report.name}_{period.start}_{period.end}_{period.interval}"


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


# (label, report, column, how it is defined): the period's headline figures, each read
# from the last bucket of a report's table.
HEADLINE = [
    (_("Members"), "member-growth", "total_members", _("joined by the period's end")),
    (_("Active"), "member-growth", "active_members", _("ordered in the last bucket")),
    (_("Repurchase rate"), "repurchase", "repurchase_rate", _("in the last bucket")),
    (_("Points outstanding"), "points", "closing", _("all balances at the period's end")),
]

HEADLINE_REPORTS = sorted({name for _label, name, _column, _definition in HEADLINE})


def headline(tables: dict[str, tuple[Sequence[Column], list[list[Any]]]]) -> list[tuple]:
    """(label, figure, how it is defined) of each headline figure the tables hold, from
    `{report name: report_table(...)}`: the dashboard's and the summaries' alike."""
    figures = []
    for label, name, column, definition in HEADLINE:
        columns, rows = tables.get(name, ((), []))
        names = [c.name for c in columns]
        if rows and column in names:
            figures.append((label, rows[-1][names.index(column)], definition))
    return figures
