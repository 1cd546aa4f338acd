"""Import files in every form a business's ERP or Excel writes them."""

from datetime import datetime

import pytest
from openpyxl import Workbook

from imports.files import FileError, detect_encoding, open_table

ROWS = [["external_id", "name", "joined_at"], ["M1", "张三", "2024-01-02"], ["M2", "李四", ""]]


def _csv(path, encoding: str) -> None:
    text = "\r\n".join(",".join(row) for row in ROWS) + "\r\n"
    path.write_bytes(text.encode(encoding))


@pytest.mark.parametrize(
    ("encoding", "found"), [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gb18030", "gb18030")]
)
def test_csv_in_each_encoding(tmp_path, encoding, found):
    path = tmp_path / "members.csv"
    _csv(path, encoding)
    table = open_table(path)
    assert table.encoding == found
    assert table.header == ["external_id", "name", "joined_at"]
    assert list(table.rows) == [(2, ["M1", "张三", "2024-01-02"]), (3, ["M2", "李四", ""])]


def test_xlsx_first_sheet_with_date_cells(tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(["External ID", "Name", "joined_at"])
    sheet.append(["M1", "张三", datetime(2024, 1, 2, 9, 30)])
    sheet.append([None, None, None])  # an empty row is skipped
    sheet.append([1001, "李四", None])
    book.create_sheet("other").append(["ignored"])
    path = tmp_path / "members.xlsx"
    book.save(path)
    table = open_table(path)
    assert table.encoding == "xlsx"
    assert table.header == ["external_id", "name", "joined_at"]
    assert list(table.rows) == [
        (2, ["M1", "张三", datetime(2024, 1, 2, 9, 30)]),
        (4, [1001, "李四", None]),
    ]


def test_a_utf8_sample_cut_mid_character_is_still_utf8():
    assert detect_encoding("张三".encode()[:-1]) == "utf-8"
    assert detect_encoding("张三".encode("gb18030")) == "gb18030"


def test_files_that_cannot_be_read(tmp_path):
    with pytest.raises(FileError, match="Cannot open"):
        open_table(tmp_path / "missing.csv")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(FileError, match="empty"):
        open_table(empty)
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(FileError, match="not a workbook"):
        open_table(broken)
