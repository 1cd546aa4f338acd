from decimal import Decimal

import pytest

from rules.engine import conditions
from tests.factories import TierFactory


@pytest.mark.parametrize(
    ("actual", "op", "value", "expected"),
    [
        (Decimal("2000"), "gte", Decimal("2000"), True),
        (Decimal("1999.99"), "gte", Decimal("2000"), False),
        (5, "gt", 5, False),
        (5, "lte", 5, True),
        (4, "lt", 5, True),
        ("gold", "eq", "gold", True),
        ("gold", "ne", "gold", False),
        ("silver", "in", ("silver", "gold"), True),
        ("silver", "not_in", ("silver", "gold"), False),
        (Decimal("150"), "between", (Decimal(100), Decimal(200)), True),
        (Decimal("250"), "between", (Decimal(100), Decimal(200)), False),
        (None, "lt", 5, False),
    ],
)
def test_operators(actual, op, value, expected):
    assert conditions.evaluate(actual, op, value) is expected


@pytest.mark.parametrize(
    ("kind", "op", "text", "parsed"),
    [
        ("money", "gte", " 2000.50 ", Decimal("2000.50")),
        ("count", "lt", "3", 3),
        ("tier", "in", "silver，gold, ", ("silver", "gold")),
        ("money", "between", "100, 500", (Decimal(100), Decimal(500))),
    ],
)
def test_values_are_parsed_by_the_facts_kind(kind, op, text, parsed):
    assert conditions.parse_value(kind, op, text) == parsed


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fact", "op", "value", "days", "field"),
    [
        ("nope", "gte", "1", None, "fact"),
        ("lifetime_spend", "like", "1", None, "op"),
        ("lifetime_spend", "gte", "lots", None, "value"),
        ("lifetime_spend", "gte", "inf", None, "value"),
        ("order_count", "gte", "1.5", None, "value"),
        ("lifetime_spend", "between", "500, 100", None, "value"),
        ("lifetime_spend", "between", "100", None, "value"),
        ("tier", "gte", "silver", None, "op"),
        ("tier", "eq", "platinum", None, "value"),
        ("spend_in_days", "gte", "100", None, "days"),
        ("lifetime_spend", "gte", "100", 30, "days"),
    ],
)
def test_validation_explains_each_mistake(fact, op, value, days, field):
    TierFactory(code="silver")
    assert field in conditions.validate(fact, op, value, days)


@pytest.mark.django_db
def test_a_valid_condition_has_no_errors():
    TierFactory(code="silver")
    assert conditions.validate("tier", "in", "silver", None) == {}
    assert conditions.validate("spend_in_days", "gte", "100", 30) == {}
