"""Report periods: buckets of days, ISO weeks and months, and the input errors."""

from datetime import date

import pytest
from django.core.exceptions import ValidationError

from reports.periods import MAX_BUCKETS, Period, period_parse


def test_weeks_start_on_monday_and_the_first_is_labelled_by_its_monday():
    period = Period(date(2026, 4, 1), date(2026, 4, 14), "week")  # a Wednesday to a Tuesday

    assert period.buckets() == [date(2026, 3, 30), date(2026, 4, 6), date(2026, 4, 13)]
    assert period.last_day(date(2026, 4, 13)) == date(2026, 4, 14)  # cut at the period's end


def test_months_cross_the_year_and_february():
    period = Period(date(2025, 12, 15), date(2026, 3, 1), "month")

    assert period.buckets() == [
        date(2025, 12, 1),
        date(2026, 1, 1),
        date(2026, 2, 1),
        date(2026, 3, 1),
    ]
    assert period.last_day(date(2026, 2, 1)) == date(2026, 2, 28)


def test_one_day_is_one_bucket():
    assert Period(date(2026, 4, 1), date(2026, 4, 1)).buckets() == [date(2026, 4, 1)]


def test_a_period_is_read_from_the_query():
    period = period_parse({"from": "2026-04-01", "to": "2026-04-30", "interval": "month"})

    assert (period.start, period.end, period.interval) == (
        date(2026, 4, 1),
        date(2026, 4, 30),
        "month",
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"to": "2026-04-30"}, "from"),
        ({"from": "2026-04-31", "to": "2026-05-01"}, "from"),
        ({"from": "2026-04-01", "to": "30/04/2026"}, "to"),
        ({"from": "2026-04-02", "to": "2026-04-01"}, "to"),
        ({"from": "2026-04-01", "to": "2026-04-30", "interval": "quarter"}, "interval"),
    ],
)
def test_bad_periods_are_field_errors(params, field):
    with pytest.raises(ValidationError) as error:
        period_parse(params)

    assert list(error.value.message_dict) == [field]


def test_more_than_the_most_buckets_is_refused_but_the_most_is_not():
    start = date(2020, 1, 1)
    last_allowed = date.fromordinal(start.toordinal() + MAX_BUCKETS - 1)
    too_far = date.fromordinal(start.toordinal() + MAX_BUCKETS)

    assert len(period_parse({"from": str(start), "to": str(last_allowed)}).buckets()) == MAX_BUCKETS
    with pytest.raises(ValidationError) as error:
        period_parse({"from": str(start), "to": str(too_far)})
    assert list(error.value.message_dict) == ["interval"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "9999-12-01", "to": "9999-12-31", "interval": "month"}, "from"),
        ({"from": "0001-01-01", "to": "0001-01-02", "interval": "week"}, "from"),
        ({"from": "2026-01-01", "to": "9999-12-31"}, "to"),
    ],
)
def test_dates_at_the_calendars_ends_are_field_errors(params, field):
    with pytest.raises(ValidationError) as error:
        period_parse(params)

    assert field in error.value.message_dict


def test_the_buckets_are_counted_without_listing_them():
    assert Period(date(2026, 1, 1), date(2026, 12, 31), "week").bucket_count() == 53
    assert Period(date(2025, 12, 15), date(2026, 3, 1), "month").bucket_count() == 4
    for start, end in [
        (date(2025, 12, 31), date(2027, 1, 3)),
        (date(2026, 2, 28), date(2026, 3, 1)),
    ]:
        for interval in ("day", "week", "month"):
            period = Period(start, end, interval)
            assert period.bucket_count() == len(period.buckets())
