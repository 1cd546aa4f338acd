"""Cell values as people type them into spreadsheets, read into Python values: each parser
takes the cell (text from CSV, text, number or date from XLSX) and returns the value, or
raises ValueError with a message for the row's report. Empty cells are None."""

import re
import unicodedata
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.translation import gettext as _

from core.text import HOSTILE_TEXT
from members.phones import phone_normalised, phone_validator

# What a cell may hold besides text: XLSX gives numbers, dates and date-times.
Cell = str | int | float | Decimal | date | datetime | bool | None

TRUE = {"true", "1", "yes", "y", "是", "t", "on"}
FALSE = {"false", "0", "no", "n", "否", "f", "off"}
CURRENCY_SIGNS = str.maketrans("", "", "¥￥$€£ \u00a0,")
# Excel counts days from 1899-12-30 (its 1900 leap-year bug included).
EXCEL_EPOCH = datetime(1899, 12, 30)
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%Y年%m月%d日")
TIME_FORMATS = ("%H:%M:%S", "%H:%M")


def text(cell: Cell) -> str | None:
    """The cell as text, width-normalised (full-width letters and digits become ASCII),
    trimmed; None when empty."""
    if cell is None:
        return None
    if isinstance(cell, str) and cell.isascii():
        return cell.strip() or None  # NFKC changes nothing in ASCII, and costs
    if isinstance(cell, float) and cell.is_integer():
        cell = int(cell)  # a code typed as a number: 1001, not 1001.0
    value = unicodedata.normalize("NFKC", str(cell)).strip()
    return value or None


def plain_text(cell: Cell, *, max_length: int) -> str | None:
    value = text(cell)
    if value is None:
        return None
    if HOSTILE_TEXT.search(value):
        raise ValueError(_("contains control or direction characters"))
    if len(value) > max_length:
        raise ValueError(_("longer than %(max)d characters") % {"max": max_length})
    return value


def decimal(cell: Cell) -> Decimal | None:
    """1,234.50, ¥1234.5, ￥１２３４ and numeric cells alike."""
    if isinstance(cell, bool):
        raise ValueError(_("not an amount"))
    if isinstance(cell, int | Decimal):
        return Decimal(cell)
    if isinstance(cell, float):
        # A spreadsheet's float (59.97000000000001 from a formula) as the number it shows.
        return Decimal(repr(round(cell, 9)))
    value = text(cell)
    if value is None:
        return None
    try:
        return Decimal(value.translate(CURRENCY_SIGNS))
    except InvalidOperation:
        raise ValueError(_("“%(value)s” is not an amount") % {"value": value}) from None


PLAIN_AMOUNT = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,2})?")  # 1234.50: nothing to check
CENT = Decimal("0.01")


def money_amount(cell: Cell, *, allow_zero: bool = True) -> Decimal | None:
    if isinstance(cell, str) and PLAIN_AMOUNT.fullmatch(cell):
        value = Decimal(cell).quantize(CENT)
        if value or allow_zero:
            return value
    value = decimal(cell)
    if value is None:
        return None
    if not value.is_finite() or value.is_signed():
        raise ValueError(_("must be a positive amount"))
    if value == 0 and not allow_zero:
        raise ValueError(_("must be more than 0"))
    if value != value.quantize(CENT):
        raise ValueError(_("has more than 2 decimal places"))
    if value >= Decimal("1e12"):
        raise ValueError(_("is too large"))
    return value.quantize(CENT)


def whole_number(cell: Cell, *, minimum: int = 0, maximum: int = 2_000_000_000) -> int | None:
    value = decimal(cell)
    if value is None:
        return None
    if not value.is_finite() or value != value.to_integral_value():
        raise ValueError(_("must be a whole number"))
    if not minimum <= value <= maximum:
        raise ValueError(_("must be from %(min)d to %(max)d") % {"min": minimum, "max": maximum})
    return int(value)


def boolean(cell: Cell) -> bool | None:
    if isinstance(cell, bool):
        return cell
    value = text(cell)
    if value is None:
        return None
    if value.lower() in TRUE:
        return True
    if value.lower() in FALSE:
        return False
    raise ValueError(_("“%(value)s” is not one of true/false, 1/0, 是/否, y/n") % {"value": value})


def _excel_serial(number: float) -> datetime:
    """A number in a date column: Excel's serial day (45296.5), or YYYYMMDD typed into a
    numeric cell (20240105; no serial day is that large)."""
    if number.is_integer() and 10_000_000 <= number <= 99_991_231:
        try:
            return datetime.strptime(str(int(number)), "%Y%m%d")
        except ValueError:
            raise ValueError(_("“%(value)s” is not a date") % {"value": int(number)}) from None
    if not 1 <= number < 2958466:  # 1900-01-01 .. 9999-12-31
        raise ValueError(_("“%(value)s” is not a date") % {"value": number})
    return EXCEL_EPOCH + timedelta(seconds=round(number * 86400))  # to the second


def day(cell: Cell) -> date | None:
    """A date: YYYY-MM-DD (or with / or .), an Excel date cell or its serial number."""
    if isinstance(cell, datetime):
        return cell.date()
    if isinstance(cell, date):
        return cell
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        return _excel_serial(float(cell)).date()
    value = text(cell)
    if value is None:
        return None
    for pattern in DATE_FORMATS:
        try:
            return datetime.strptime(value, pattern).date()
        except ValueError:
            continue
    raise ValueError(_("“%(value)s” is not a date as YYYY-MM-DD") % {"value": value})


def moment(cell: Cell) -> datetime | None:
    """A date-time, aware: ISO 8601 with or without an offset (without: TIME_ZONE), a
    date alone (its midnight in TIME_ZONE), "YYYY-MM-DD HH:MM[:SS]", an Excel date cell
    or serial number."""
    if isinstance(cell, datetime):
        found = cell
    elif isinstance(cell, date):
        found = datetime.combine(cell, time())
    elif isinstance(cell, int | float) and not isinstance(cell, bool):
        found = _excel_serial(float(cell))
    else:
        value = text(cell)
        if value is None:
            return None
        found = _parse_moment(value)
    if found.utcoffset() is None:
        found = found.replace(tzinfo=timezone.get_default_timezone())
    return found


def _parse_moment(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value.replace("/", "-"))
    except ValueError:
        pass
    found_day, _sep, clock = value.partition(" ")
    try:
        on = day(found_day)
    except ValueError:
        on = None
    if on is not None:
        for pattern in TIME_FORMATS if clock else ():
            try:
                return datetime.combine(on, datetime.strptime(clock.strip(), pattern).time())
            except ValueError:
                continue
        if not clock:
            return datetime.combine(on, time())
    raise ValueError(_("“%(value)s” is not a date or a date and time") % {"value": value})


def phone(cell: Cell) -> str | None:
    """A phone in E.164: spaces, dashes, brackets, +86 or 0086 and full-width digits are
    accepted; a number typed into a numeric cell too."""
    value = text(cell)
    if value is None:
        return None
    normalised = phone_normalised(value)
    try:
        phone_validator(normalised)
    except ValidationError:
        raise ValueError(_("“%(value)s” is not a phone number") % {"value": value}) from None
    return normalised


def email(cell: Cell) -> str | None:
    value = text(cell)
    if value is None:
        return None
    try:
        if len(value) > 254:
            raise ValidationError("too long")
        validate_email(value)
    except ValidationError:
        raise ValueError(_("“%(value)s” is not an e-mail address") % {"value": value}) from None
    return value


def tags(cell: Cell) -> list[str]:
    """Tag codes separated by ';' (or the full-width '；')."""
    value = text(cell)
    if value is None:
        return []
    codes = [code.strip() for code in value.replace("；", ";").split(";")]
    found = [code for code in codes if code]
    for code in found:
        if HOSTILE_TEXT.search(code) or len(code) > 50:
            raise ValueError(_("“%(value)s” is not a tag code") % {"value": code})
    return list(dict.fromkeys(found))
