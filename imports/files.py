"""Reading an import file as rows: CSV (UTF-8, UTF-8 with a BOM, or GB18030 as Excel in
China saves it; found from the file's first bytes) or XLSX (its first sheet), a header
row first. Streamed: rows are read as they are needed, whatever the file's size."""

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.utils.translation import gettext as _

from .values import text

SAMPLE_BYTES = 1 << 20
XLSX_MAGIC = b"PK\x03\x04"


class FileError(Exception):
    """The file cannot be read as an import: its message says why."""


@dataclass
class Table:
    """An open import file: its header (names as given) and its data rows, each numbered
    as a spreadsheet numbers it (the header is row 1)."""

    header: list[str]
    rows: Iterator[tuple[int, list[Any]]]
    encoding: str  # "xlsx" for a workbook
    size: int  # bytes, for progress
    position: Any  # () -> bytes read so far (approximate for XLSX)


def detect_encoding(sample: bytes) -> str:
    """utf-8-sig for a BOM, utf-8 when the sample decodes as UTF-8 (a character cut at
    its end allowed), else gb18030."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def open_table(path: str | Path) -> Table:
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        message = _("Cannot open %(path)s: %(error)s") % {"path": path, "error": exc}
        raise FileError(message) from exc
    size = path.stat().st_size
    start = handle.read(SAMPLE_BYTES)
    handle.seek(0)
    if start.startswith(XLSX_MAGIC):
        return _xlsx(handle, size)
    return _csv(handle, size, detect_encoding(start))


def _csv(handle: IO[bytes], size: int, encoding: str) -> Table:
    stream = io.TextIOWrapper(handle, encoding=encoding, newline="")
    reader = csv.reader(stream)
    try:
        header = next(reader, None)
    except (UnicodeDecodeError, csv.Error) as exc:
        message = _("The file is not a CSV file this can read: %(error)s") % {"error": exc}
        raise FileError(message) from exc
    if not header:
        raise FileError(_("The file is empty: it needs a header row."))

    def rows() -> Iterator[tuple[int, list[Any]]]:
        number = 1
        try:
            for row in reader:
                number += 1
                if any(cell.strip() for cell in row):
                    yield number, row
        except UnicodeDecodeError:
            raise FileError(
                _("Row %(row)d is not in the file's encoding (%(encoding)s).")
                % {"row": number + 1, "encoding": encoding}
            ) from None
        except csv.Error as exc:
            message = _("Row %(row)d: %(error)s") % {"row": number + 1, "error": exc}
            raise FileError(message) from exc
        finally:
            stream.close()

    def position() -> int:
        return size if handle.closed else handle.tell()

    return Table(_names(header), rows(), encoding, size, position)


def _xlsx(handle: IO[bytes], size: int) -> Table:
    from openpyxl import load_workbook

    try:
        book = load_workbook(handle, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged workbook
        message = _("The file is not a workbook this can read: %(error)s") % {"error": exc}
        raise FileError(message) from exc
    sheet = book.worksheets[0]
    cells = sheet.iter_rows(values_only=True)
    header = next(cells, None)
    if not header or not any(header):
        book.close()
        raise FileError(_("The first sheet is empty: it needs a header row."))
    read = {"rows": 0}

    def rows() -> Iterator[tuple[int, list[Any]]]:
        number = 1
        try:
            for row in cells:
                number += 1
                read["rows"] = number
                if any(cell is not None and str(cell).strip() for cell in row):
                    yield number, list(row)
        finally:
            book.close()

    dimension = sheet.max_row or 0

    def position() -> int:
        # Rows read against the sheet's stated size, scaled to the file's bytes.
        return size * read["rows"] // dimension if dimension else 0

    return Table(_names(header), rows(), "xlsx", size, position)


def _names(header: list[Any]) -> list[str]:
    return [(text(name) or "").lower().replace(" ", "_") for name in header]
