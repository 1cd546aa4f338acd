"""Rule history: every change through rule_upsert (the programme loader and the admin) is
a revision with its version, who made it, through what, and the rule before and after in
the programme file's format; saving a rule unchanged records nothing."""

from textwrap import dedent

import pytest
from django import forms
from django.contrib.auth.models import User
from django.urls import reverse

from rules.models import Rule, RuleRevision
from rules.programme.dump import rule_as_data
from rules.programme.load import programme_load
from rules.services.authoring import rule_upsert
from tests.factories import rule_form

pytestmark = pytest.mark.django_db

PROGRAMME = dedent(
    """\
    tiers:
      - {code: regular, name: Regular, rank: 0, discount_percent: 0}
      - {code: silver, name: Silver, rank: 1, discount_percent: 5}
    rules:
      - code: silver-at-2000
        name: Silver at 2000
        trigger: order_paid
        priority: 20
        conditions:
          all:
            - {fact: lifetime_spend, op: gte, value: 2000}
            - {fact: tier_rank, op: lt, value: 1}
        actions:
          - {type: set_tier, tier: silver}
          - {type: award_points, points: 500}
    """
)


def after_of(rule: Rule) -> dict:
    fresh = Rule.objects.prefetch_related("conditions__event_kind", "actions").get(pk=rule.pk)
    return rule_as_data(fresh)


def upsert(**overrides):
    """A small rule through the service, as the admin saves one."""
    values = {
        "code": "points-at-100",
        "name": "Points at 100",
        "trigger": "order_paid",
        "conditions": [
            {"position": 1, "fact": "lifetime_spend", "op": "gte", "value": "100", "days": None}
        ],
        "actions": [{"position": 1, "kind": "award_points", "points": 10}],
        "is_active": True,
        **overrides,
    }
    return rule_upsert(**values)


def test_loading_a_programme_records_the_first_revision():
    # when
    programme_load(PROGRAMME)

    # then
    rule = Rule.objects.get(code="silver-at-2000")
    revision = rule.revisions.get()
    assert (rule.version, revision.version) == (1, 1)
    assert (revision.source, revision.changed_by, revision.before) == ("programme", None, None)
    assert revision.after == after_of(rule)
    assert revision.after["conditions"] == {
        "all": [
            {"fact": "lifetime_spend", "op": "gte", "value": 2000},
            {"fact": "tier_rank", "op": "lt", "value": 1},
        ]
    }
    assert revision.after["actions"] == [
        {"type": "set_tier", "tier": "silver"},
        {"type": "award_points", "points": 500},
    ]


def test_loading_a_changed_programme_records_what_changed():
    # given
    programme_load(PROGRAMME)
    first = RuleRevision.objects.get()

    # when
    programme_load(
        PROGRAMME.replace("value: 2000", "value: 3000").replace("priority: 20", "priority: 5")
    )

    # then
    rule = Rule.objects.get(code="silver-at-2000")
    latest = rule.revisions.first()
    assert (rule.version, latest.version, rule.revisions.count()) == (2, 2, 2)
    assert latest.source == "programme"
    assert latest.before == first.after
    assert latest.after == after_of(rule)
    changed = {field: (before, after) for field, before, after in latest.changes()}
    assert set(changed) == {"priority", "conditions"}
    assert changed["priority"] == (20, 5)
    assert changed["conditions"][1]["all"][0]["value"] == 3000


def test_loading_the_same_programme_again_records_nothing():
    # given
    programme_load(PROGRAMME)

    # when
    report = programme_load(PROGRAMME)

    # then
    assert not report.changed
    assert Rule.objects.get(code="silver-at-2000").version == 1
    assert RuleRevision.objects.count() == 1


def test_a_change_records_who_made_it_and_through_what():
    # given
    operator = User.objects.create_user("operator", is_staff=True)
    rule, _ = upsert()

    # when
    rule, changed = upsert(name="Points at 100 (v2)", changed_by=operator, source="admin")

    # then
    assert changed
    latest = rule.revisions.first()
    assert (rule.version, latest.version, latest.changed_by, latest.source) == (
        2,
        2,
        operator,
        "admin",
    )
    assert latest.changes() == [("name", "Points at 100", "Points at 100 (v2)")]


def test_saving_a_rule_unchanged_keeps_its_version_and_records_nothing():
    # given
    rule, _ = upsert()

    # when: the same rule, with the list and spacing an operator might type differently
    again, changed = upsert(
        conditions=[
            {"position": 1, "fact": "lifetime_spend", "op": "gte", "value": " 100 ", "days": None}
        ]
    )

    # then
    assert not changed
    assert again.version == rule.version == 1
    assert RuleRevision.objects.count() == 1


def test_versions_count_up_one_per_change():
    # when
    for points in (10, 20, 30, 30):
        rule, _ = upsert(actions=[{"position": 1, "kind": "award_points", "points": points}])

    # then
    assert rule.version == 3
    assert list(rule.revisions.values_list("version", flat=True)) == [3, 2, 1]
    assert [r.after["actions"][0]["points"] for r in rule.revisions.all()] == [30, 20, 10]
    assert [(r.before or {}).get("actions") for r in rule.revisions.all()] == [
        [{"type": "award_points", "points": 20}],
        [{"type": "award_points", "points": 10}],
        None,
    ]


# --- Through the admin -------------------------------------------------------------------


def change_form_data(response) -> dict:
    """What a browser posts back from a rule's change page when the operator changes
    nothing: every form's initial values, and the formsets' management forms."""
    data = {"_save": "Save"}
    all_forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management[name].value()
        all_forms.extend(formset.forms)
    for form in all_forms:
        for name, field in form.fields.items():
            key, value = form.add_prefix(name), form[name].value()
            if isinstance(field.widget, forms.MultiWidget):
                for index, part in enumerate(field.widget.decompress(value)):
                    data[f"{key}_{index}"] = "" if part is None else str(part)
            elif isinstance(field, forms.BooleanField):
                if value:
                    data[key] = "on"
            elif value is not None:
                data[key] = value
    return data


@pytest.fixture
def operator_client(client):
    operator = User.objects.create_superuser("operator", "op@example.com", "pw")
    client.force_login(operator)
    client.operator = operator
    return client


def test_adding_a_rule_in_the_admin_records_who_added_it(operator_client):
    # when
    response = operator_client.post(reverse("admin:rules_rule_add"), rule_form())

    # then
    assert response.status_code == 302
    rule = Rule.objects.get(code="big-spender")
    revision = rule.revisions.get()
    assert (revision.version, revision.source, revision.changed_by, revision.before) == (
        1,
        "admin",
        operator_client.operator,
        None,
    )
    assert revision.after == after_of(rule)
    assert revision.after["conditions"] == {
        "any": [
            {"fact": "lifetime_spend", "op": "gte", "value": 5000},
            {"fact": "orders_in_days", "op": "gte", "value": 10, "days": 365},
        ]
    }


def test_editing_a_rule_in_the_admin_records_before_and_after(operator_client):
    # given
    programme_load(PROGRAMME)
    rule = Rule.objects.get(code="silver-at-2000")
    url = reverse("admin:rules_rule_change", args=[rule.pk])
    data = change_form_data(operator_client.get(url))
    data["conditions-0-value"] = "2500"
    data["name"] = "Silver at 2500"

    # when
    response = operator_client.post(url, data)

    # then
    assert response.status_code == 302, response.context and response.context["errors"]
    rule.refresh_from_db()
    latest = rule.revisions.first()
    assert (rule.version, latest.version, latest.source) == (2, 2, "admin")
    assert latest.changed_by == operator_client.operator
    assert latest.before == rule.revisions.last().after
    assert latest.after == after_of(rule)
    assert [field for field, _, _ in latest.changes()] == ["name", "conditions"]


def test_saving_the_admin_page_unchanged_records_nothing(operator_client):
    # given
    programme_load(PROGRAMME)
    rule = Rule.objects.get(code="silver-at-2000")
    url = reverse("admin:rules_rule_change", args=[rule.pk])

    # when
    response = operator_client.post(url, change_form_data(operator_client.get(url)))

    # then
    assert response.status_code == 302, response.context and response.context["errors"]
    rule.refresh_from_db()
    assert rule.version == 1
    assert RuleRevision.objects.count() == 1


def test_the_rule_page_shows_its_history(operator_client):
    # given
    programme_load(PROGRAMME)
    programme_load(PROGRAMME.replace("priority: 20", "priority: 7"))
    rule = Rule.objects.get(code="silver-at-2000")

    # when
    page = operator_client.get(reverse("admin:rules_rule_change", args=[rule.pk]))

    # then
    text = page.content.decode()
    assert "History: every change to this rule" in text
    assert "<b>priority</b>: 20 → 7" in text
    assert "created" in text
