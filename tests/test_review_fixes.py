"""Regression tests for defects found in review, one per finding."""

import logging
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from benefits.models import CouponTemplate
from config.celery import app as celery_app
from core.pii import RedactPiiFilter
from members.models import Member, Tier, TierChange
from members.services import members_assign_base_tier
from notifications.models import Notification
from notifications.services.delivery import notifications_requeue_stuck
from orders.models import Order
from rules.models import Rule
from rules.programme.dump import programme_dump
from rules.programme.load import ProgrammeInvalid, programme_load
from rules.services.authoring import rule_upsert
from tests.factories import MemberFactory
from tests.test_admin import rule_form

pytestmark = pytest.mark.django_db


def test_an_unexpected_provider_error_fails_the_message_instead_of_leaving_it_sending(
    api, seed, monkeypatch
):
    # given
    def explode(self, message):
        raise RuntimeError("bug in an adapter")

    monkeypatch.setattr("notifications.providers.console.ConsoleProvider.send", explode)

    # when
    api.order(amount="2500.00")

    # then
    notification = Notification.objects.get()
    assert (notification.status, notification.status_reason) == (
        "failed",
        "Unexpected error: RuntimeError",
    )


def test_a_message_left_sending_by_a_dead_worker_is_requeued_and_sent(api, seed, settings):
    # given: claimed long ago by a worker that died
    api.order(amount="2500.00")
    notification = Notification.objects.get()
    Notification.objects.filter(pk=notification.pk).update(
        status="sending", created_at=timezone.now() - timedelta(hours=1)
    )
    settings.TIERFLOW_PENDING_GRACE_SECONDS = 0

    # when
    notifications_requeue_stuck()

    # then
    notification.refresh_from_db()
    assert notification.status == "sent"


def test_codes_cannot_be_changed_in_the_admin(admin_client, seed):
    # given
    gift = CouponTemplate.objects.get(code="silver-gift")

    # when
    response = admin_client.post(
        reverse("admin:benefits_coupontemplate_change", args=[gift.pk]),
        {
            "code": "renamed",
            "name": "New name",
            "discount": "amount",
            "min_spend": "300",
            "amount_off": "60",
            "valid_days": "15",
            "stacking": "exclusive",
        },
    )

    # then
    assert response.status_code == 302
    gift.refresh_from_db()
    assert (gift.code, gift.name, gift.amount_off) == ("silver-gift", "New name", 60)
    assert not CouponTemplate.objects.filter(code="renamed").exists()


def test_a_tier_rank_clash_in_the_admin_is_a_form_error(admin_client, seed):
    silver = Tier.objects.get(code="silver")
    response = admin_client.post(
        reverse("admin:members_tier_change", args=[silver.pk]),
        {"name": "银卡会员", "rank": "2", "discount_percent": "5"},
    )
    assert response.status_code == 200
    assert "Tier with this Rank already exists." in response.content.decode()


@pytest.mark.parametrize("number", ["x", "-1"])
def test_a_bad_condition_number_in_the_rule_form_is_an_error_not_a_crash(
    admin_client,
    seed,
    number,
):
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
    seed, positions, logic, stored_logic
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


def test_saving_the_same_rule_again_keeps_its_version(seed):
    rows = [{"position": 1, "fact": "tier", "op": "in", "value": "silver,gold", "days": None}]
    rule, _ = rule_upsert(code="r", name="R", trigger="order_paid", conditions=rows, actions=[])
    _, changed = rule_upsert(code="r", name="R", trigger="order_paid", conditions=rows, actions=[])
    assert not changed
    assert rule.conditions.get().value == "silver, gold"


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


def test_exception_text_in_logs_is_redacted_too():
    # given
    try:
        raise ValueError("bad phone 13800138000")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), None)
        record.exc_info = __import__("sys").exc_info()

    # when
    RedactPiiFilter().filter(record)

    # then
    assert "13800138000" not in logging.Formatter().format(record)
    assert "138****8000" in logging.Formatter().format(record)


def test_workers_keep_the_projects_logging_and_its_filter():
    assert celery_app.conf.worker_hijack_root_logger is False


@pytest.mark.parametrize("phone", ["１３８００１３８０００", "١٣٨٠٠١٣٨٠٠٠"])
def test_full_width_and_other_digits_in_a_phone_number_are_stored_as_ascii(api, seed, phone):
    api.order(member={"external_id": "M-1", "phone": phone})
    assert Member.objects.get().phone == "+8613800138000"


@pytest.mark.parametrize("phone", ["+86 abc", "12ab"])
def test_other_digits_are_not_a_phone_number(api, seed, phone):
    response = api.order(member={"external_id": "M-1", "phone": phone})
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "member.phone"


def test_a_long_email_is_reported_at_its_path(api, seed):
    response = api.order(member={"external_id": "M-1", "email": "a" * 250 + "@example.com"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "member.email"


def test_message_text_is_masked_for_staff_without_the_permission(client, api, seed):
    # given
    api.order(amount="2500.00")
    user = User.objects.create_user("clerk", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_member", "view_notification", "view_rulefiring"]
        )
    )
    client.force_login(user)
    notification = Notification.objects.get()
    member = Member.objects.get()

    # when
    pages = [
        client.get(reverse("admin:members_member_change", args=[member.pk])),
        client.get(reverse("admin:notifications_notification_change", args=[notification.pk])),
        client.get(reverse("admin:rules_rulefiring_change", args=[notification.firing_id])),
    ]

    # then
    for page in pages:
        assert page.status_code == 200
        text = page.content.decode()
        assert "王先生" not in text
        assert "王**" in text


def test_the_admin_refuses_an_order_placed_in_the_future(admin_client, seed):
    member = MemberFactory()
    response = admin_client.post(
        reverse("admin:orders_order_add"),
        {
            "external_id": "SO-F",
            "member": member.pk,
            "amount": "5",
            "placed_at_0": "2999-01-01",
            "placed_at_1": "10:00",
        },
    )
    assert response.status_code == 200
    assert "cannot be placed in the future" in response.content.decode()
    assert not Order.objects.exists()


def test_members_recorded_before_a_programme_get_the_base_tier_with_history(seed):
    member = MemberFactory(tier=None)
    programme_load("tiers:\n  - {code: base, name: Base, rank: 0}\n") if not Tier.objects.filter(
        rank=0
    ) else None

    assert members_assign_base_tier() == 1
    member.refresh_from_db()
    assert member.tier.rank == 0
    assert TierChange.objects.get(member=member).reason == "base tier"
