import logging

import pytest

from core.pii import RedactPiiFilter, mask_email, mask_name, mask_phone


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13800138000", "138****8000"),
        ("+8613800138000", "138****8000"),  # the default country's, as read there
        ("+85291234567", "+852 912*4567"),
        ("12345", "***45"),
        ("", ""),
    ],
)
def test_mask_phone(phone, masked):
    assert mask_phone(phone) == masked


def test_mask_email_and_name():
    assert mask_email("wang@example.com") == "w***@example.com"
    assert mask_name("王小明") == "王**"


def test_the_log_filter_masks_phone_numbers_and_emails_in_any_record():
    # given
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "call %s or mail %s", ("13800138000", "a@b.cn"), None
    )

    # when
    RedactPiiFilter().filter(record)

    # then
    assert record.getMessage() == "call 138****8000 or mail a***@b.cn"
