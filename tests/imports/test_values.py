"""Cell values as people type them (TIME_ZONE is Asia/Shanghai)."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from imports import values

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("1,234.50", Decimal("1234.50")),
        ("¥1234.5", Decimal("1234.50")),
        ("￥１，２３４．５", Decimal("1234.50")),
        (" 300 ", Decimal("300.00")),
        (1234.5, Decimal("1234.50")),
        (12, Decimal("12.00")),
        (59.97000000000001, Decimal("59.97")),  # a formula's float in an XLSX cell
        ("1.500", Decimal("1.50")),
        ("", None),
        (None, None),
    ],
)
def test_amounts(cell, expected):
    assert values.money_amount(cell) == expected


@pytest.mark.parametrize("cell", ["-5", "-0.00", "abc", "1.234", "1e15", True])
def test_bad_amounts(cell):
    with pytest.raises(ValueError):
        values.money_amount(cell)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("138 0013 8000", "+8613800138000"),
        ("138-0013-8000", "+8613800138000"),
        ("+86 138 0013 8000", "+8613800138000"),
        ("0086 13800138000", "+8613800138000"),
        ("１３８００１３８０００", "+8613800138000"),
        (13800138000, "+8613800138000"),
        (13800138000.0, "+8613800138000"),
    ],
)
def test_phones(cell, expected):
    assert values.phone(cell) == expected


def test_a_bad_phone():
    with pytest.raises(ValueError, match="not a phone number"):
        values.phone("12")


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("true", True), ("1", True), ("是", True), ("Y", True), ("否", False), ("0", False),
     ("n", False), ("FALSE", False), (True, True), (None, None)],
)  # fmt: skip
def test_booleans(cell, expected):
    assert values.boolean(cell) is expected


def test_a_bad_boolean():
    with pytest.raises(ValueError, match="true/false"):
        values.boolean("maybe")


def test_dates_and_times():
    assert values.day("1990-05-01") == date(1990, 5, 1)
    assert values.day("1990/5/1") == date(1990, 5, 1)
    assert values.day("1990年5月1日") == date(1990, 5, 1)
    assert values.day(datetime(1990, 5, 1, 0, 0)) == date(1990, 5, 1)  # an Excel date cell
    assert values.day(32994) == date(1990, 5, 1)  # its serial number
    # YYYYMMDD typed into a numeric cell is that day, not a serial number.
    assert values.day(20240105) == date(2024, 1, 5)
    assert values.moment(20240105.0) == datetime(2024, 1, 5, tzinfo=SHANGHAI)
    with pytest.raises(ValueError, match="“20241305” is not a date"):
        values.day(20241305)
    # A serial date-time, rounded to the second (45000.588194444 is 14:07:00).
    assert values.moment(45000.588194444) == datetime(2023, 3, 15, 14, 7, tzinfo=SHANGHAI)
    assert values.moment("2025-03-02") == datetime(2025, 3, 2, tzinfo=SHANGHAI)
    assert values.moment("2025-03-02 10:30") == datetime(2025, 3, 2, 10, 30, tzinfo=SHANGHAI)
    assert values.moment("2025/03/02 10:30:15") == datetime(2025, 3, 2, 10, 30, 15, tzinfo=SHANGHAI)
    moment = values.moment("2025-03-02T10:00:00+00:00")
    assert moment == datetime(2025, 3, 2, 18, tzinfo=SHANGHAI)
    assert values.moment(datetime(2025, 3, 2, 10)) == datetime(2025, 3, 2, 10, tzinfo=SHANGHAI)
    for bad in ("2025-13-01", "yesterday", "2025-03-02 25:00"):
        with pytest.raises(ValueError):
            values.moment(bad)


def test_texts_and_tags():
    assert values.plain_text("  张三 ", max_length=10) == "张三"
    with pytest.raises(ValueError, match="control or direction"):
        values.plain_text("abc\u202edef", max_length=10)
    with pytest.raises(ValueError, match="longer than 3"):
        values.plain_text("abcd", max_length=3)
    assert values.tags("vip; north；vip;") == ["vip", "north"]
    with pytest.raises(ValueError, match="not an e-mail address"):
        values.email("a" * 250 + "@example.com")
    assert values.whole_number("1,500") == 1500
    with pytest.raises(ValueError, match="whole number"):
        values.whole_number("1.5")
