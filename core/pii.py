"""Masking of personal data for lists, exports and logs (design invariant 6)."""

import logging
import re

import phonenumbers
from django.conf import settings

PHONE_RE = re.compile(r"(?<![\d+])(?:\+\d{8,15}|1[3-9]\d{9})(?!\d)")
EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def mask_phone(phone: str) -> str:
    """'+8613800138000' -> '138****8000' (a number of the default country as it is read
    there), '+85291234567' -> '+852 912*4567'; short numbers keep only their last two
    digits."""
    if not phone:
        return ""
    if phone.startswith("+"):
        try:
            number = phonenumbers.parse(phone)
        except phonenumbers.NumberParseException:
            number = None
        if number is not None:
            national = mask_phone(phonenumbers.national_significant_number(number))
            if str(number.country_code) == settings.TIERFLOW_SMS_DEFAULT_COUNTRY_CODE:
                return national
            return f"+{number.country_code} {national}"
    if len(phone) >= 8:
        return f"{phone[:3]}{'*' * (len(phone) - 7)}{phone[-4:]}"
    return f"{'*' * (len(phone) - 2)}{phone[-2:]}"


def mask_email(email: str) -> str:
    if not email or "@" not in email:
        return ""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_name(name: str) -> str:
    """'王小明' -> '王**', 'Wang Lei' -> 'W*******': the first character only."""
    if not name:
        return ""
    return name[0] + "*" * (len(name) - 1)


def redact_person(text: str, *, name: str) -> str:
    """Message text shown to staff who may not see personal data: the member's name and
    any phone number or e-mail address in it are masked."""
    if name:
        text = text.replace(name, mask_name(name))
    return redact(text)


def redact(text: str) -> str:
    text = PHONE_RE.sub(lambda match: mask_phone(match.group()), text)
    return EMAIL_RE.sub(lambda match: mask_email(match.group()), text)


class RedactPiiFilter(logging.Filter):
    """Masks phone numbers and e-mail addresses in every log record that passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # Exception messages can quote input; the formatter reuses exc_text as given.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True
