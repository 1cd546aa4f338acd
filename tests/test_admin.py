from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone

from benefits.models import EarningPolicy
from members.models import Member, Tier
from orders.models import Order
from orders.services import order_record
from rules.models import Rule
from tests.factories import rule_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def member_with_history(api, seed) -> Member:
    api.order(external_id="SO-1", amount="2500.00")
    return Member.objects.get(external_id="M-1")


@pytest.mark.parametrize(
    "model",
    [
        "members.tier",
        "members.member",
        "orders.order",
        "rules.rule",
        "rules.rulefiring",
        "benefits.coupontemplate",
        "benefits.coupon",
        "benefits.pointsentry",
        "notifications.notificationtemplate",
        "notifications.notification",
    ],
)
def test_every_page_an_operator_uses_renders(admin_client, member_with_history, model):
    app_label, model_name = model.split(".")
    changelist = admin_client.get(reverse(f"admin:{app_label}_{model_name}_changelist"))
    assert changelist.status_code == 200
    obj = changelist.context["cl"].result_list[0]
    change = admin_client.get(reverse(f"admin:{app_label}_{model_name}_change", args=[obj.pk]))
    assert change.status_code == 200


def test_the_member_page_shows_the_history_and_why(admin_client, member_with_history):
    page = admin_client.get(reverse("admin:members_member_change", args=[member_with_history.pk]))
    text = page.content.decode()
    assert "银卡会员" in text
    assert "silver-at-2000" in text
    assert "lifetime_spend = 2500.00" in text


def test_personal_data_is_masked_without_the_permission(client, member_with_history):
    # given: staff who may view members, but not their personal data
    user = User.objects.create_user("clerk", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_member"))
    client.force_login(user)

    # when
    listing = client.get(reverse("admin:members_member_changelist")).content.decode()
    detail = client.get(
        reverse("admin:members_member_change", args=[member_with_history.pk])
    ).content.decode()

    # then
    for page in (listing, detail):
        assert "13800138000" not in page
        assert "138****8000" in page


def test_with_the_permission_the_list_and_the_detail_are_unmasked(client, member_with_history):
    # given
    user = User.objects.create_user("manager", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_member", "change_member", "view_member_pii"])
    )
    client.force_login(user)

    # when
    listing = client.get(reverse("admin:members_member_changelist")).content.decode()
    detail = client.get(
        reverse("admin:members_member_change", args=[member_with_history.pk])
    ).content.decode()

    # then: one rule on every screen, the permission decides
    for page in (listing, detail):
        assert "+8613800138000" in page
        assert "王先生" in page


def test_an_operator_creates_a_rule_with_conditions_and_actions(admin_client, seed):
    # when
    response = admin_client.post(reverse("admin:rules_rule_add"), rule_form())

    # then
    assert response.status_code == 302, response.context and response.context["errors"]
    rule = Rule.objects.get(code="big-spender")
    assert (rule.logic, rule.version, rule.is_active) == ("1 or 2", 1, True)
    assert [(c.fact, c.value, c.days) for c in rule.conditions.all()] == [
        ("lifetime_spend", "5000", None),
        ("orders_in_days", "10", 365),
    ]
    assert [(a.kind, a.points) for a in rule.actions.all()] == [("award_points", 300)]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"logic": "1 or 3"}, "names condition(s) 3"),
        ({"logic": "1 and"}, "ends too early"),
        ({"conditions-1-position": "1"}, "Please correct the duplicate data for position."),
        ({"conditions-0-value": "lots"}, "is not an amount of money"),
        ({"conditions-1-days": ""}, "needs the number of days"),
        ({"actions-0-points": ""}, "needs points"),
    ],
)
def test_the_rule_form_explains_mistakes_and_saves_nothing(admin_client, seed, overrides, message):
    response = admin_client.post(reverse("admin:rules_rule_add"), rule_form(**overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Rule.objects.filter(code="big-spender").exists()


def test_editing_a_rule_bumps_its_version(admin_client, seed):
    # given
    rule = Rule.objects.get(code="silver-at-2000")
    data = rule_form(code="silver-at-2000", name=rule.name, priority="20", logic="")
    data.update({"conditions-TOTAL_FORMS": "1", "actions-TOTAL_FORMS": "1"})

    # when
    response = admin_client.post(reverse("admin:rules_rule_change", args=[rule.pk]), data)

    # then
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.version == 2
    assert rule.conditions.count() == 1


def test_an_operator_records_an_order_by_hand(
    admin_client, member_with_history, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:orders_order_add"),
            {
                "external_id": "SO-HAND",
                "member": member_with_history.pk,
                "amount": "50.00",
                "placed_at_0": "2026-01-02",
                "placed_at_1": "10:00:00",
            },
        )

    # then
    assert response.status_code == 302
    member_with_history.refresh_from_db()
    assert member_with_history.order_count == 2
    assert Order.objects.get(external_id="SO-HAND").is_evaluated


def test_an_operator_has_waiting_orders_evaluated_now(
    admin_client, seed, django_capture_on_commit_callbacks
):
    # given: recorded while no evaluation ran (its task never published)
    order, _ = order_record(
        external_id="SO-LATE",
        member={"external_id": "M-LATE"},
        amount=Decimal("2500.00"),
        currency="CNY",
        placed_at=timezone.now(),
    )
    waiting = Order.objects.get(pk=order.pk).is_evaluated

    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:orders_order_changelist"),
            {"action": "evaluate_now", "_selected_action": [order.pk]},
        )

    # then
    assert response.status_code == 302
    assert waiting is False
    assert Order.objects.get(pk=order.pk).is_evaluated
    assert Member.objects.get(external_id="M-LATE").tier.code == "silver"


def test_orders_cannot_be_deleted(admin_client, member_with_history):
    order = Order.objects.get()
    response = admin_client.post(
        reverse("admin:orders_order_delete", args=[order.pk]), {"post": "yes"}
    )
    assert response.status_code == 403
    assert Order.objects.filter(pk=order.pk).exists()


def test_rows_left_without_a_number_take_the_next_ones(admin_client, seed):
    # when: the second condition and the action have no number
    response = admin_client.post(
        reverse("admin:rules_rule_add"),
        rule_form(**{"conditions-1-position": "", "actions-0-position": "", "logic": ""}),
    )

    # then
    assert response.status_code == 302
    rule = Rule.objects.get(code="big-spender")
    assert list(rule.conditions.values_list("position", "fact")) == [
        (1, "lifetime_spend"),
        (2, "orders_in_days"),
    ]
    assert list(rule.actions.values_list("position", flat=True)) == [1]


def test_a_new_rule_opens_on_its_own_page_where_its_tools_are(admin_client, seed):
    response = admin_client.post(reverse("admin:rules_rule_add"), rule_form())
    rule = Rule.objects.get(code="big-spender")
    assert response["Location"] == reverse("admin:rules_rule_change", args=[rule.pk])


def test_a_tier_may_be_named_by_its_name_in_a_condition(admin_client, seed):
    # when
    response = admin_client.post(
        reverse("admin:rules_rule_add"),
        rule_form(
            **{
                "conditions-0-fact": "tier",
                "conditions-0-op": "in",
                "conditions-0-value": "银卡会员, gold",
            }
        ),
    )

    # then
    assert response.status_code == 302
    assert Rule.objects.get(code="big-spender").conditions.get(position=1).value == "silver, gold"


def test_a_target_another_action_uses_is_refused_not_dropped(admin_client, seed):
    # when: "award points" with a tier picked as well
    tier = Tier.objects.get(code="gold")
    response = admin_client.post(
        reverse("admin:rules_rule_add"), rule_form(**{"actions-0-tier": tier.pk})
    )

    # then
    assert response.status_code == 200
    assert "does not use this; clear it." in response.content.decode()
    assert not Rule.objects.filter(code="big-spender").exists()


def test_an_active_rule_needs_an_action(admin_client, seed):
    response = admin_client.post(
        reverse("admin:rules_rule_add"), rule_form(**{"actions-TOTAL_FORMS": "0"})
    )
    assert response.status_code == 200
    assert "An active rule needs at least one action." in response.content.decode()


def test_the_earning_policy_list_opens_the_policy_or_the_form_that_creates_it(admin_client):
    # given: a database where the policy was never saved
    EarningPolicy.objects.all().delete()

    # when: the operator opens it, and saves it
    first = admin_client.get("/admin/benefits/earningpolicy/")
    saved = admin_client.post(
        "/admin/benefits/earningpolicy/add/",
        {"points_per_unit": "1", "growth_per_unit": "0.1", "points_expiry": "never"},
    )
    again = admin_client.get("/admin/benefits/earningpolicy/")

    # then: the add form first, then the one policy's page; reading it wrote nothing
    assert first.url == "/admin/benefits/earningpolicy/add/"
    assert saved.status_code == 302
    assert EarningPolicy.objects.get().points_per_unit == 1
    assert again.url == "/admin/benefits/earningpolicy/1/change/"
