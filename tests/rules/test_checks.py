"""The rules' system check: a rule's webhook posts to its own URL, unsigned."""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from rules.checks import rule_webhooks_signed
from tests.factories import RuleFactory, action


@pytest.fixture
def no_secret(settings):
    settings.TIERFLOW_NOTIFICATION_PROVIDERS = {
        **settings.TIERFLOW_NOTIFICATION_PROVIDERS,
        "webhook": "http",
    }
    settings.TIERFLOW_WEBHOOK_SECRET = ""
    settings.TIERFLOW_WEBHOOK_URL = ""


@pytest.mark.django_db
def test_a_rules_webhook_without_a_secret_is_reported_when_the_database_is_checked(no_secret):
    # given: a rule that calls the ERP at its own URL
    action(RuleFactory(), "webhook", webhook_url="https://erp.example.com/hooks")

    # when: as migrate and `check --database default` run it, and as a plain check does
    with_database = rule_webhooks_signed(None, databases=["default"])
    without = rule_webhooks_signed(None)

    # then
    assert [m.id for m in with_database] == ["notifications.E008"]
    assert "URL of its own" in with_database[0].hint
    assert without == []


@pytest.mark.django_db
def test_a_rules_webhook_without_any_url_needs_no_secret(no_secret):
    # given: no URL of its own and no default: it is suppressed, never signed
    action(RuleFactory(), "webhook", webhook_url="")

    # then
    assert rule_webhooks_signed(None, databases=["default"]) == []


@pytest.mark.django_db
def test_a_rules_webhook_with_a_secret_passes(no_secret, settings):
    settings.TIERFLOW_WEBHOOK_SECRET = "whsec-test-only"
    action(RuleFactory(), "webhook", webhook_url="https://erp.example.com/hooks")
    assert rule_webhooks_signed(None, databases=["default"]) == []


@pytest.mark.django_db
def test_check_with_the_database_reports_it(no_secret):
    action(RuleFactory(), "webhook", webhook_url="https://erp.example.com/hooks")
    with pytest.raises(SystemCheckError, match=r"notifications\.E008"):
        call_command("check", databases=["default"])
