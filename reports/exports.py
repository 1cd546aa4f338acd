"""CSV and XLSX files of a report's table.

Both are safe to open in a spreadsheet: a text cell that starts like a formula (`=`, `+`,
`-`, `@`, or a tab or carriage return) gets a leading apostrophe, so it is shown, never
run (OWASP's CSV injection advice). Numbers we computed are written as numbers. CSV is
UTF-8 with a byte-order mark, which Excel needs to read Chinese text; XLSX puts money in
numeric cells with two decimals. Both are written row by row: a million rows are never
held in memory."""

import csv
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

import xlsxwriter
from django.http import FileResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from .registry import Column, Kind

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def cell_safe(value: Any) -> Any:
    """A cell as a spreadsheet should show it: text that would run as a formula escaped."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


class _Line:
    """A file-like object that hands back what csv.writer writes (Django's streaming
    CSV recipe)."""

    def write(self, text: str) -> str:
        return text


def csv_lines(columns: Sequence[Column], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """The CSV file line by line, for a streaming response or a file."""
    writer = csv.writer(_Line())
    yield BOM + writer.writerow([column.name for column in columns])
    for row in rows:
        yield writer.writerow([_text(cell_safe(value)) for value in row])


def _text(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def xlsx_write(
    out: IO[bytes],
    *,
    sheets: Iterable[tuple[str, Sequence[Column], Iterable[Sequence[Any]]]],
) -> None:
    """An XLSX workbook with a sheet per (title, columns, rows), written to `out`."""
    # constant_memory flushes each row as it is written; the workbook goes to a temporary
    # file first because the zip container is assembled at the end.
    with tempfile.NamedTemporaryFile(suffix=".xlsx") as spool:
        book = xlsxwriter.Workbook(
            spool.name, {"constant_memory": True, "strings_to_formulas": False}
        )
        header = book.add_format({"bold": True})
        formats = {
            Kind.MONEY: book.add_format({"num_format": "0.00"}),
            Kind.RATE: book.add_format({"num_format": "0.0000"}),
            Kind.DATE: book.add_format({"num_format": "yyyy-mm-dd"}),
        }
        for title, columns, rows in sheets:
            sheet = book.add_worksheet(_sheet_title(title))
            sheet.write_row(0, 0, [column.name for column in columns], header)
            cell_formats = [formats.get(column.kind) for column in columns]
            for r, row in enumerate(rows, start=1):
                for c, value in enumerate(row):
                    _xlsx_cell(sheet, r, c, value, cell_formats[c])
        book.close()
        spool.seek(0)
        while chunk := spool.read(1 << 16):
            out.write(chunk)


def _xlsx_cell(sheet, row: int, col: int, value: Any, cell_format) -> None:
    if value is None:
        sheet.write_blank(row, col, None)
    elif isinstance(value, bool):
        sheet.write_boolean(row, col, value)
    elif isinstance(value, (int, float, Decimal)):
        sheet.write_number(row, col, float(value), cell_format)
    elif isinstance(value, datetime):
        sheet.write_string(row, col, value.isoformat())
    elif isinstance(value, date):
        sheet.write_datetime(row, col, datetime(value.year, value.month, value.day), cell_format)
    else:
        sheet.write_string(row, col, str(cell_safe(str(value))))


def _sheet_title(title: str) -> str:
    # Excel's limits: 31 characters, none of []:*?/\
    cleaned = "".join("_" if ch in "[]:*?/\\" else ch for ch in title)
    return cleaned[:31] or "Sheet"


def table_write(
    out: IO[bytes],
    *,
    file_format: str,
    sheet: str,
    columns: Sequence[Column],
    rows: Iterable[Sequence[Any]],
) -> None:
    """The table written to a binary file as CSV (UTF-8 with BOM) or XLSX, a row at a time."""
    if file_format == "xlsx":
        xlsx_write(out, sheets=[(sheet, columns, rows)])
        return
    for line in csv_lines(columns, rows):
        out.write(line.encode("utf-8"))


def file_response(
    *,
    filename: str,
    sheet: str,
    columns: Sequence[Column],
    rows: Iterable[Sequence[Any]],
    file_format: str,
) -> HttpResponseBase:
    """The table as a download named `filename` (without its extension): CSV streamed line
    by line, XLSX spooled to a temporary file, so neither is held in memory."""
    if file_format == "xlsx":
        out = tempfile.TemporaryFile()  # noqa: SIM115 (FileResponse closes it when sent)
        xlsx_write(out, sheets=[(sheet, columns, rows)])
        out.seek(0)
        return FileResponse(out, as_attachment=True, filename=f"{filename}.xlsx", content_type=XLSX)
    response = StreamingHttpResponse(
        csv_lines(columns, rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response
