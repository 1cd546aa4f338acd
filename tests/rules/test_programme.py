from decimal import Decimal
from io import StringIO
from textwrap import dedent

import pytest
from django.core.management import CommandError, call_command

from benefits.models import CouponTemplate
from members.models import Tier, TierChange
from members.services import members_assign_base_tier
from notifications.models import NotificationTemplate
from rules.models import Rule
from rules.programme.dump import programme_dump
from rules.programme.load import ProgrammeInvalid, programme_load
from tests.factories import MemberFactory, TierFactory
from tests.helpers import SEED_PROGRAMME

pytestmark = pytest.mark.django_db

SEED = SEED_PROGRAMME.read_text(encoding="utf-8")


def counts() -> tuple[int, int, int, int]:
    return (
        Tier.objects.count(),
        CouponTemplate.objects.count(),
        NotificationTemplate.objects.count(),
        Rule.objects.count(),
    )


def test_the_seed_programme_loads():
    # when
    report = programme_load(SEED)

    # then
    assert report.changed
    assert counts() == (3, 3, 5, 6)
    assert list(Tier.objects.values_list("code", "rank", "discount_percent")) == [
        ("regular", 0, Decimal("2.00")),
        ("silver", 1, Decimal("5.00")),
        ("gold", 2, Decimal("10.00")),
    ]
    silver = Rule.objects.get(code="silver-at-2000")
    assert silver.is_active
    assert [(c.fact, c.op, c.value) for c in silver.conditions.all()] == [
        ("lifetime_spend", "gte", "2000"),
        ("growth_points", "gte", "500"),
        ("tier_rank", "lt", "1"),
    ]
    assert silver.logic == "(1 or 2) and 3"
    assert [a.kind for a in silver.actions.all()] == [
        "set_tier",
        "issue_coupon",
        "award_points",
        "notify",
    ]
    gift = CouponTemplate.objects.get(code="silver-gift")
    assert (gift.min_spend, gift.amount_off, gift.valid_days) == (Decimal(300), Decimal(50), 15)


def test_loading_the_same_file_twice_changes_nothing():
    # given
    programme_load(SEED)
    versions = dict(Rule.objects.values_list("code", "version"))
    updated = list(Tier.objects.values_list("updated_at", flat=True))

    # when
    report = programme_load(SEED)

    # then
    assert not report.changed
    assert dict(Rule.objects.values_list("code", "version")) == versions
    assert list(Tier.objects.values_list("updated_at", flat=True)) == updated


def test_a_changed_file_updates_in_place_by_code():
    # given
    programme_load(SEED)
    silver = Rule.objects.get(code="silver-at-2000")
    changed = SEED.replace(
        "{fact: lifetime_spend, op: gte, value: 2000}",
        "{fact: lifetime_spend, op: gte, value: 3000}",
    ).replace("discount_percent: 5,", "discount_percent: 6,")

    # when
    report = programme_load(changed)

    # then
    assert report.counts["rules"] == {"created": 0, "updated": 1, "unchanged": 5}
    assert report.counts["tiers"] == {"created": 0, "updated": 1, "unchanged": 2}
    silver.refresh_from_db()
    assert silver.version == 2
    assert silver.conditions.get(position=1).value == "3000"
    assert Tier.objects.get(code="silver").discount_percent == Decimal(6)
    assert counts() == (3, 3, 5, 6)


def test_tiers_can_swap_ranks():
    # given
    programme_load(SEED)
    swapped = (
        SEED.replace("rank: 1,", "rank: 9,")
        .replace("rank: 2,", "rank: 1,")
        .replace("rank: 9,", "rank: 2,")
    )

    # when
    programme_load(swapped)

    # then
    assert dict(Tier.objects.values_list("code", "rank")) == {"regular": 0, "silver": 2, "gold": 1}


def test_members_without_a_tier_get_the_base_tier_when_it_appears():
    # given
    member = MemberFactory(tier=None)

    # when
    programme_load(SEED)

    # then
    member.refresh_from_db()
    assert member.tier.code == "regular"


def test_members_recorded_before_a_programme_get_the_base_tier_with_history():
    # given: a base tier, and a member recorded before there was one
    TierFactory(code="base", rank=0)
    member = MemberFactory(tier=None)

    # when
    assigned = members_assign_base_tier()

    # then
    assert assigned == 1
    member.refresh_from_db()
    assert member.tier.code == "base"
    assert TierChange.objects.get(member=member).reason == "base tier"


def test_an_invalid_file_loads_nothing_and_reports_every_error_with_its_line():
    # given: four mistakes in one file
    text = dedent(
        """\
        tiers:
          - {code: regular, name: Regular, rank: 0}
          - {code: silver, name: Silver, rank: one}
        coupon_templates:
          - {code: gift, name: Gift, amount_off: 50}
        rules:
          - code: up
            name: Up
            trigger: order_paid
            conditions:
              all:
                - {fact: lifetime_spend, op: greater, value: 2000}
            actions:
              - {type: set_tier, tier: platinum}
        """
    )

    # when
    with pytest.raises(ProgrammeInvalid) as raised:
        programme_load(text)

    # then
    errors = {(error.line, error.path) for error in raised.value.errors}
    assert errors == {
        (3, "tiers[1].rank"),
        (5, "coupon_templates[0].valid_days"),
        (12, "rules[0].conditions.all[0].op"),
    }
    assert counts() == (0, 0, 0, 0)


def test_references_are_checked_once_the_shape_is_valid():
    # given
    text = dedent(
        """\
        tiers:
          - {code: regular, name: Regular, rank: 0}
        rules:
          - code: up
            name: Up
            trigger: order_paid
            conditions:
              any:
                - {fact: tier, op: in, value: [regular, platinum]}
                - {fact: spend_in_days, op: gte, value: 10}
            actions:
              - {type: set_tier, tier: platinum}
              - {type: notify, template: nowhere}
        """
    )

    # when
    with pytest.raises(ProgrammeInvalid) as raised:
        programme_load(text)

    # then
    assert [(e.line, e.path, e.message) for e in raised.value.errors] == [
        (9, "rules[0].conditions.any[0].value", "Unknown tier code: platinum."),
        (
            10,
            "rules[0].conditions.any[1].days",
            "'spend in the last N days' needs the number of days to look back.",
        ),
        (12, "rules[0].actions[0].tier", "Unknown tier 'platinum'."),
        (13, "rules[0].actions[1].template", "Unknown notification template 'nowhere'."),
    ]
    assert counts() == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tiers: [\n  {code: a", "YAML syntax error"),
        ("- just\n- a list\n", "Expected a mapping"),
        ("tier:\n  - {code: a}\n", "Unknown section"),
        ("tiers:\n  - {code: a, name: A, rank: 1}\n", "One tier needs rank 0"),
        (
            "tiers:\n  - {code: a, name: A, rank: 0}\n  - {code: a, name: B, rank: 1}\n",
            "Duplicate code",
        ),
        (
            "notification_templates:\n  - {code: m, channel: sms, body: 'Hi {{ member.nmae }}'}\n",
            "Unknown variable 'member.nmae'",
        ),
        (
            "rules:\n  - {code: r, name: R, trigger: order_paid, actions: [{type: award_points}]}\n",
            "'award_points' needs 'points'",
        ),
    ],
)
def test_invalid_files_are_explained(text, expected):
    with pytest.raises(ProgrammeInvalid) as raised:
        programme_load(text)
    assert any(expected in str(error) for error in raised.value.errors), raised.value.errors


def test_dump_writes_what_load_reads_and_loading_it_changes_nothing():
    # given
    programme_load(SEED)
    Rule.objects.filter(code="gold-at-10000").update(logic="")

    # when
    dumped = programme_dump()
    report = programme_load(dumped)

    # then
    assert not report.changed
    assert programme_dump() == dumped
    assert "{fact: lifetime_spend, op: gte, value: 2000}" in dumped


def test_nested_conditions_round_trip_through_the_logic_line():
    # given
    text = dedent(
        """\
        tiers:
          - {code: regular, name: Regular, rank: 0}
          - {code: silver, name: Silver, rank: 1}
        rules:
          - code: up
            name: Up
            trigger: order_paid
            active: false
            fires: every_time
            conditions:
              all:
                - {fact: tier_rank, op: lt, value: 1}
                - any:
                    - {fact: lifetime_spend, op: gte, value: 2000}
                    - {fact: orders_in_days, op: gte, value: 5, days: 365}
            actions:
              - {type: set_tier, tier: silver}
        """
    )

    # when
    programme_load(text)

    # then
    rule = Rule.objects.get(code="up")
    assert rule.logic == "1 and (2 or 3)"
    assert (rule.is_active, rule.firing_limit) == (False, "every_time")
    assert not programme_load(programme_dump()).changed


def test_the_commands_load_and_dump_files(tmp_path):
    # when
    out = StringIO()
    call_command("load_programme", str(SEED_PROGRAMME), stdout=out)
    call_command("dump_programme", str(tmp_path / "out.yaml"), stdout=StringIO())

    # then
    assert "rules: 6 created" in out.getvalue()
    again = StringIO()
    call_command("load_programme", str(tmp_path / "out.yaml"), stdout=again)
    assert "Nothing changed." in again.getvalue()


def test_the_load_command_fails_with_the_errors_on_stderr(tmp_path):
    # given
    bad = tmp_path / "bad.yaml"
    bad.write_text("tiers:\n  - {code: a, name: A, rank: -1}\n", encoding="utf-8")

    # when
    err = StringIO()
    with pytest.raises(CommandError, match="nothing was loaded"):
        call_command("load_programme", str(bad), stderr=err)

    # then
    assert f"{bad}:line 2: tiers[0].rank:" in err.getvalue()


def test_a_file_that_is_not_utf8_is_refused_politely(tmp_path):
    path = tmp_path / "gbk.yaml"
    path.write_bytes("tiers:\n  - {code: a, name: 普通, rank: 0}\n".encode("gbk"))
    with pytest.raises(CommandError, match="not UTF-8"):
        call_command("load_programme", str(path), stderr=StringIO())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 3000 + "]" * 3000, "nests too deeply"),
        ("tiers: {}\n", "Expected a list."),
        ("rules: 0\n", "Expected a list."),
        (
            "rules:\n  - {code: r, name: R, trigger: order_paid, priority: 99999999999}\n",
            "less than or equal to 1000000",
        ),
        (
            "rules:\n  - {code: r, name: R, trigger: order_paid, conditions: {all: [{fact: tier, op: in, value: ["
            + ", ".join(f"tier{i}" for i in range(60))
            + "]}]}}\n",
            "too long",
        ),
    ],
)
def test_odd_files_are_explained_not_crashed_on(text, message):
    with pytest.raises(ProgrammeInvalid) as raised:
        programme_load(text)
    assert any(message in str(error) for error in raised.value.errors), raised.value.errors
