"""CSV and XLSX files: formulas escaped, Chinese text readable by Excel, numbers numeric."""

import io
import zipfile
from datetime import date
from decimal import Decimal
from xml.etree import ElementTree

from reports.exports import cell_safe, csv_lines, xlsx_write
from reports.registry import Column, Kind

COLUMNS = [Column("bucket", Kind.DATE), Column("name", Kind.TEXT), Column("spend", Kind.MONEY)]
NS = {"x": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def test_text_that_a_spreadsheet_would_run_is_escaped():
    assert [cell_safe(v) for v in ["=1+1", "+86", "-2", "@SUM(A1)", "\tx", "王先生"]] == [
        "'=1+1",
        "'+86",
        "'-2",
        "'@SUM(A1)",
        "'\tx",
        "王先生",
    ]
    assert cell_safe(Decimal("-5.00")) == Decimal("-5.00")  # our own numbers stay numbers


def test_csv_starts_with_a_byte_order_mark_and_escapes_cells():
    rows = [
        [date(2026, 4, 1), '=HYPERLINK("x")', Decimal("-12.50")],
        [date(2026, 4, 2), "王先生", None],
    ]

    text = "".join(csv_lines(COLUMNS, rows))

    assert text.startswith("\ufeffbucket,name,spend\r\n")
    assert text.splitlines()[1:] == [
        '2026-04-01,"\'=HYPERLINK(""x"")",-12.50',
        "2026-04-02,王先生,",
    ]


def _cells(book: bytes) -> dict[str, ElementTree.Element]:
    with zipfile.ZipFile(io.BytesIO(book)) as archive:
        sheet = ElementTree.fromstring(archive.read("xl/worksheets/sheet1.xml"))
    return {cell.get("r"): cell for cell in sheet.iterfind(".//x:c", NS)}


def _text(cell: ElementTree.Element) -> str:
    return "".join(cell.itertext())


def test_xlsx_has_numbers_in_numeric_cells_and_text_escaped():
    out = io.BytesIO()

    xlsx_write(
        out,
        sheets=[("spend", COLUMNS, [[date(2026, 4, 1), "=cmd|' /C calc'!A0", Decimal("1234.50")]])],
    )

    cells = _cells(out.getvalue())
    assert _text(cells["A1"]) == "bucket"
    assert cells["C2"].get("t") is None  # a number, not a string
    assert _text(cells["C2"]) == "1234.5"
    assert cells["A2"].get("t") is None  # a date is a number with a date format
    assert _text(cells["B2"]) == "'=cmd|' /C calc'!A0"
    assert cells["B2"].find("x:f", NS) is None  # never a formula
