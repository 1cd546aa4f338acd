"""Saving a rule (rules/services/authoring.py, and the admin's rule form that calls it):
conditions are stored in one canonical form, numbered from 1, that a dump loads back
unchanged; saving the same rule again changes nothing."""

import pytest
from django.urls import reverse

from rules.models import Rule
from rules.programme.dump import programme_dump
from rules.programme.load import programme_load
from rules.services.authoring import rule_upsert
from tests.factories import TierFactory, rule_form

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("number", ["x", "-1"])
def test_a_bad_condition_number_in_the_rule_form_is_an_error_not_a_crash(admin_client, number):
    response = admin_client.post(
        reverse("admin:rules_rule_add"), rule_form(**{"conditions-0-position": number})
    )
    assert response.status_code == 200
    assert not Rule.objects.filter(code="big-spender").exists()


@pytest.mark.parametrize(
    ("positions", "logic", "stored_logic"),
    [
        ([1], "", ""),
        ([1, 2], "1 and 2", ""),
        ([10, 20], "", ""),
        ([1, 2], "2 or 1", "1 or 2"),
        ([1, 2, 3], "3 or (1 and 2)", "1 or (2 and 3)"),
    ],
)
def test_conditions_are_stored_in_one_canonical_form_that_round_trips(
    positions, logic, stored_logic
):
    # given
    facts = ["lifetime_spend", "order_count", "points_balance"]
    rows = [
        {"position": p, "fact": facts[i], "op": "gte", "value": str(i + 1), "days": None}
        for i, p in enumerate(positions)
    ]
    rule, _ = rule_upsert(
        code="r", name="R", trigger="order_paid", logic=logic, conditions=rows, actions=[]
    )

    # then: the stored form, and a dump that loads back unchanged
    assert rule.logic == stored_logic
    assert list(rule.conditions.values_list("position", flat=True)) == list(
        range(1, len(positions) + 1)
    )
    assert not programme_load(programme_dump()).changed
    assert Rule.objects.get(code="r").version == 1
    if logic == "2 or 1":
        assert rule.conditions.get(position=1).fact == "order_count"


def test_saving_the_same_rule_again_keeps_its_version():
    # given: a rule on two tiers, their codes typed without a space
    TierFactory(code="silver")
    TierFactory(code="gold")
    rows = [{"position": 1, "fact": "tier", "op": "in", "value": "silver,gold", "days": None}]
    rule, _ = rule_upsert(code="r", name="R", trigger="order_paid", conditions=rows, actions=[])

    # when
    _, changed = rule_upsert(code="r", name="R", trigger="order_paid", conditions=rows, actions=[])

    # then
    assert not changed
    assert rule.conditions.get().value == "silver, gold"
