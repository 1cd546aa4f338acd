"""The tools on a rule's admin page: preview, test on a member, simulate and apply, with
the permissions each needs and personal data masked for staff who may not see it."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from benefits.models import PointsEntry
from notifications.models import Notification
from orders.services import order_record
from rules.models import Rule, RuleFiring, RuleJob
from tests.factories import (
    MemberFactory,
    NotificationTemplateFactory,
    RuleFactory,
    TierFactory,
    action,
    condition,
)

pytestmark = pytest.mark.django_db

VIEW = ["view_rule", "view_rulejob", "view_member"]
CHANGE = [*VIEW, "change_rule"]
PII = [*CHANGE, "view_member_pii"]


def staff(username: str, codenames: list[str]) -> Client:
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    client.user = user
    return client


def spender(external_id: str, name: str, amount: str, tier=None):
    member = MemberFactory(external_id=external_id, name=name, tier=tier)
    order_record(
        external_id=f"SO-{external_id}",
        member=external_id,
        amount=Decimal(amount),
        currency="CNY",
        placed_at=timezone.now() - timedelta(days=1),
    )
    return member


@pytest.fixture
def tiers():
    return {
        "regular": TierFactory(code="regular", rank=0),
        "silver": TierFactory(code="silver", rank=1),
    }


@pytest.fixture
def rule(tiers) -> Rule:
    """Silver at 2000, with 500 points and an SMS."""
    rule = RuleFactory(code="silver-at-2000", name="Silver at 2000")
    condition(rule, "lifetime_spend", "gte", 2000)
    condition(rule, "tier_rank", "lt", 1)
    action(rule, "set_tier", tier=tiers["silver"])
    action(rule, "award_points", points=500)
    action(rule, "notify", notification_template=NotificationTemplateFactory())
    return rule


@pytest.fixture
def members(tiers):
    return [
        spender("M-RICH", "王小明", "3000", tiers["regular"]),
        spender("M-ALSO", "李雷", "2500", tiers["regular"]),
        spender("M-POOR", "韩梅梅", "100", tiers["regular"]),
    ]


def url(name: str, rule: Rule) -> str:
    return reverse(f"admin:rules_rule_{name}", args=[rule.pk])


def test_the_rule_page_links_to_its_tools(admin_client, rule):
    page = admin_client.get(reverse("admin:rules_rule_change", args=[rule.pk])).content.decode()
    for tool in ("preview", "test", "simulate", "apply"):
        assert f'href="{url(tool, rule)}"' in page


def test_the_preview_counts_the_matching_members_and_shows_the_biggest_spenders(
    admin_client, rule, members
):
    # given: a third condition, about the order that will trigger the rule
    condition(rule, "order_amount", "gt", 0)

    # when
    response = admin_client.get(url("preview", rule))

    # then
    text = response.content.decode()
    assert response.status_code == 200
    assert "2 members match the conditions now." in text
    assert "Condition(s) 3 are about the triggering event and are counted as met" in text
    assert [member.external_id for member, _ in response.context["sample"]] == [
        "M-RICH",
        "M-ALSO",
    ]
    assert "王小明" in text and "李雷" in text
    assert "韩梅梅" not in text
    assert f"{url('test', rule)}?member=M-RICH" in text


def test_the_preview_masks_names_without_the_personal_data_permission(rule, members):
    # given
    viewer = staff("viewer", VIEW)

    # when
    text = viewer.get(url("preview", rule)).content.decode()

    # then
    assert "2 members match the conditions now." in text
    assert "王小明" not in text and "李雷" not in text
    assert "王**" in text and "李*" in text


def test_the_preview_shows_names_with_the_personal_data_permission(rule, members):
    text = staff("manager", PII).get(url("preview", rule)).content.decode()
    assert "王小明" in text


def test_testing_on_a_member_shows_the_facts_conditions_and_verdict(admin_client, rule, members):
    # when
    response = admin_client.get(url("test", rule), {"member": "M-RICH"})

    # then
    text = response.content.decode()
    assert response.status_code == 200
    assert "The rule would fire for this member." in text
    assert "Triggering order: the latest, SO-M-RICH." in text
    assert "lifetime spend (net of refunds) ≥ 2000" in text
    assert text.count("✔ true") == 2
    assert "award points: 500" in text
    explanation = response.context["explanation"]
    assert dict(explanation.facts)["lifetime_spend"] == Decimal("3000.00")


def test_testing_on_a_member_who_does_not_qualify(admin_client, rule, members):
    text = admin_client.get(url("test", rule), {"member": "M-POOR"}).content.decode()
    assert "The rule would not fire for this member." in text
    assert "✘ false" in text


def test_testing_writes_nothing(admin_client, rule, members):
    # when
    admin_client.get(url("test", rule), {"member": "M-RICH"})

    # then
    assert not RuleFiring.objects.exists()
    assert not PointsEntry.objects.exists()
    assert not Notification.objects.exists()


def test_testing_an_unknown_member_says_so(admin_client, rule):
    text = admin_client.get(url("test", rule), {"member": "NOBODY"}).content.decode()
    assert 'No member with external id "NOBODY".' in text


def test_the_test_page_without_a_member_shows_the_form(admin_client, rule):
    response = admin_client.get(url("test", rule))
    assert response.status_code == 200
    assert response.context["explanation"] is None
    assert 'name="member"' in response.content.decode()


def test_the_test_page_shows_no_names_without_the_personal_data_permission(rule, members):
    text = staff("viewer", VIEW).get(url("test", rule), {"member": "M-RICH"}).content.decode()
    assert "The rule would fire for this member." in text
    assert "王小明" not in text


def test_simulating_starts_a_job_and_shows_its_result(
    admin_client, rule, members, django_capture_on_commit_callbacks
):
    # given
    form = admin_client.get(url("simulate", rule))

    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url("simulate", rule), {"days": "30"})

    # then
    assert form.status_code == 200
    assert 'name="days"' in form.content.decode()
    job = RuleJob.objects.get()
    assert (job.kind, job.days, job.status) == ("simulate", 30, "done")
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:rules_rulejob_change", args=[job.pk])
    page = admin_client.get(response["Location"]).content.decode()
    assert '<progress max="100" value="100"></progress> 100% (3 / 3)' in page
    assert "<tr><th>would have fired</th><td>2</td></tr>" in page
    assert "<tr><th>points</th><td>1000</td></tr>" in page
    assert not RuleFiring.objects.exists()


def test_a_simulation_needs_a_sensible_number_of_days(admin_client, rule):
    response = admin_client.post(url("simulate", rule), {"days": "0"})
    assert response.status_code == 200
    assert response.context["form"].errors["days"]
    assert not RuleJob.objects.exists()


def test_simulating_needs_only_the_view_permission(
    rule, members, django_capture_on_commit_callbacks
):
    # given
    viewer = staff("viewer", VIEW)

    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = viewer.post(url("simulate", rule), {"days": "30"})

    # then
    assert response.status_code == 302
    assert viewer.get(response["Location"]).status_code == 200


def test_applying_starts_a_job_that_fires_the_rule(
    rule, members, django_capture_on_commit_callbacks
):
    # given
    operator = staff("operator", CHANGE)
    form = operator.get(url("apply", rule))

    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = operator.post(url("apply", rule), {"send_notifications": "on"})

    # then
    assert form.status_code == 200
    assert 'name="send_notifications"' in form.content.decode()
    job = RuleJob.objects.get()
    assert (job.kind, job.status, job.result, job.created_by) == (
        "apply",
        "done",
        {"fired": 2},
        operator.user,
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:rules_rulejob_change", args=[job.pk])
    page = operator.get(response["Location"]).content.decode()
    assert "100% (2 / 2)" in page
    assert "<tr><th>fired for members</th><td>2</td></tr>" in page
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}


def test_applying_quietly_records_the_messages_unsent(
    admin_client, rule, members, django_capture_on_commit_callbacks
):
    # when: the box is unticked, so only the CSRF token is posted
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url("apply", rule), {"csrfmiddlewaretoken": "token"})

    # then
    assert RuleJob.objects.get().send_notifications is False
    assert list(Notification.objects.values_list("status", flat=True)) == [
        "suppressed",
        "suppressed",
    ]


def test_applying_needs_the_change_permission(rule, members, django_capture_on_commit_callbacks):
    # given
    viewer = staff("viewer", VIEW)

    # when
    with django_capture_on_commit_callbacks(execute=True):
        posted = viewer.post(url("apply", rule), {"send_notifications": "on"})
    shown = viewer.get(url("apply", rule))

    # then
    assert (shown.status_code, posted.status_code) == (403, 403)
    assert not RuleJob.objects.exists()
    assert not RuleFiring.objects.exists()


def test_applying_an_inactive_rule_is_refused_with_a_message(
    admin_client, rule, members, django_capture_on_commit_callbacks
):
    # given
    Rule.objects.filter(pk=rule.pk).update(is_active=False)

    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url("apply", rule), {"send_notifications": "on"})

    # then
    assert response.status_code == 200
    assert "Only an active rule can be applied to existing members." in response.content.decode()
    assert not RuleJob.objects.exists()


@pytest.mark.parametrize("tool", ["preview", "test", "simulate", "apply"])
def test_staff_without_the_view_permission_are_refused(rule, tool):
    response = staff("stranger", ["view_member"]).get(url(tool, rule))
    assert response.status_code == 403


@pytest.mark.parametrize("tool", ["preview", "test", "simulate", "apply"])
def test_visitors_who_are_not_logged_in_are_sent_to_log_in(client, rule, tool):
    response = client.get(url(tool, rule))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_a_tool_on_a_rule_that_does_not_exist_is_not_found(admin_client):
    assert admin_client.get(reverse("admin:rules_rule_preview", args=[999])).status_code == 404


def test_the_job_page_refreshes_itself_until_the_job_is_done(admin_client, rule):
    # given
    running = RuleJob.objects.create(rule=rule, kind="apply", status="running", total=4)
    RuleJob.objects.filter(pk=running.pk).update(processed=1)
    done = RuleJob.objects.create(rule=rule, kind="apply", status="done", result={"fired": 0})

    # when
    running_page = admin_client.get(reverse("admin:rules_rulejob_change", args=[running.pk]))
    done_page = admin_client.get(reverse("admin:rules_rulejob_change", args=[done.pk]))

    # then
    refresh = '<meta http-equiv="refresh" content="2">'
    assert refresh in running_page.content.decode()
    assert "25% (1 / 4)" in running_page.content.decode()
    assert refresh not in done_page.content.decode()
