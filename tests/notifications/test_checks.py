"""The system checks of the notification settings (notifications.E001-E008, W001-W002)."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from notifications.checks import provider_settings, providers_exist, webhook_secret


@pytest.fixture
def providers(settings):
    def configure(**channels: str) -> None:
        settings.TIERFLOW_NOTIFICATION_PROVIDERS = {
            "sms": "console",
            "push": "console",
            "email": "console",
            "webhook": "http",
            **channels,
        }

    return configure


def ids(messages) -> list[str]:
    return [message.id for message in messages]


def test_the_embedded_default_needs_nothing(providers):
    providers()
    assert provider_settings(None) == []


def test_an_unknown_provider(providers):
    providers(sms="twillio")
    [message] = providers_exist(None)
    assert message.id == "notifications.E001"
    assert "'twillio' for the sms channel" in message.msg


def test_an_unknown_provider_is_left_to_e001(providers):
    providers(sms="twillio")
    assert provider_settings(None) == []


def test_a_provider_on_a_channel_it_does_not_serve(providers):
    providers(email="twilio")
    [message] = provider_settings(None)
    assert message.id == "notifications.E002"
    assert "cannot deliver on the email channel" in message.msg


def test_aliyun_without_its_keys(providers, settings):
    providers(sms="aliyun")
    settings.TIERFLOW_ALIYUN_ACCESS_KEY_ID = "LTAI-test"
    settings.TIERFLOW_ALIYUN_ACCESS_KEY_SECRET = ""
    settings.TIERFLOW_ALIYUN_SMS_SIGN_NAME = "会员中心"
    settings.TIERFLOW_ALIYUN_SMS_TEMPLATE_CODE = ""
    settings.TIERFLOW_CALLBACK_TOKEN = "t"
    [message] = provider_settings(None)
    assert message.id == "notifications.E003"
    assert message.msg.endswith(
        "TIERFLOW_ALIYUN_ACCESS_KEY_SECRET, TIERFLOW_ALIYUN_SMS_TEMPLATE_CODE."
    )


def test_aliyun_without_a_callback_token_warns(providers, settings):
    providers(sms="aliyun")
    settings.TIERFLOW_ALIYUN_ACCESS_KEY_ID = "LTAI-test"
    settings.TIERFLOW_ALIYUN_ACCESS_KEY_SECRET = "s"
    settings.TIERFLOW_ALIYUN_SMS_SIGN_NAME = "会员中心"
    settings.TIERFLOW_ALIYUN_SMS_TEMPLATE_CODE = "SMS_1"
    settings.TIERFLOW_CALLBACK_TOKEN = ""
    assert ids(provider_settings(None)) == ["notifications.W002"]


def test_twilio_without_its_account_and_public_url(providers, settings):
    providers(sms="twilio")
    settings.TIERFLOW_TWILIO_ACCOUNT_SID = ""
    settings.TIERFLOW_TWILIO_AUTH_TOKEN = ""
    settings.TIERFLOW_TWILIO_FROM = "+15005550006"
    settings.TIERFLOW_PUBLIC_URL = ""
    assert ids(provider_settings(None)) == ["notifications.E004", "notifications.W001"]


@pytest.mark.parametrize(
    ("credentials", "problem"),
    [
        ("", "needs settings that are empty: TIERFLOW_FCM_CREDENTIALS"),
        ("/nowhere/key.json", "unreadable (FileNotFoundError)"),
        ("{not json", "unreadable (JSONDecodeError)"),
        (json.dumps({"client_email": "a@b.iam.gserviceaccount.com"}), "private_key, token_uri"),
    ],
)
def test_fcm_without_a_usable_key(providers, settings, credentials, problem):
    providers(push="fcm")
    settings.TIERFLOW_FCM_CREDENTIALS = credentials
    settings.TIERFLOW_FCM_PROJECT_ID = "demo-project"
    [message] = provider_settings(None)
    assert message.id == "notifications.E005"
    assert problem in message.msg


def test_fcm_with_a_key_needs_nothing_more(providers, settings):
    providers(push="fcm")
    settings.TIERFLOW_FCM_CREDENTIALS = json.dumps(
        {
            "client_email": "a@demo-project.iam.gserviceaccount.com",
            "private_key": "(the check does not parse it)",
            "token_uri": "https://oauth2.googleapis.com/token",
            "project_id": "demo-project",
        }
    )
    settings.TIERFLOW_FCM_PROJECT_ID = ""
    assert provider_settings(None) == []


def test_smtp_without_a_host(providers, settings):
    providers(email="smtp")
    settings.EMAIL_HOST = ""
    assert ids(provider_settings(None)) == ["notifications.E006"]


def test_smtp_with_both_tls_and_ssl(providers, settings):
    providers(email="smtp")
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = True
    [message] = provider_settings(None)
    assert (message.id, "EMAIL_USE_SSL are both set" in message.msg) == ("notifications.E007", True)


def test_each_smtp_problem_has_its_own_id(providers, settings):
    # given: both smtp problems at once (they once shared E006)
    providers(email="smtp")
    settings.EMAIL_HOST = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = True

    # when
    messages = provider_settings(None)

    # then
    assert ids(messages) == ["notifications.E006", "notifications.E007"]
    assert "needs settings that are empty: EMAIL_HOST" in messages[0].msg


# --- the webhook secret (E008) ----------------------------------------------------------


@pytest.fixture
def no_secret(providers, settings):
    providers()
    settings.TIERFLOW_WEBHOOK_SECRET = ""
    settings.TIERFLOW_WEBHOOK_URL = ""


def test_without_a_webhook_url_anywhere_no_secret_is_needed(no_secret):
    # nothing can be sent: a webhook without a URL is suppressed
    assert webhook_secret(None) == []


def test_a_default_webhook_url_without_a_secret(no_secret, settings):
    settings.TIERFLOW_WEBHOOK_URL = "https://erp.example.com/hooks"
    [message] = webhook_secret(None)
    assert message.id == "notifications.E008"
    assert "TIERFLOW_WEBHOOK_SECRET" in message.msg


def test_a_webhook_url_with_a_secret_needs_nothing_more(no_secret, settings):
    settings.TIERFLOW_WEBHOOK_URL = "https://erp.example.com/hooks"
    settings.TIERFLOW_WEBHOOK_SECRET = "whsec-test-only"
    assert webhook_secret(None) == []


def test_webhooks_to_the_console_are_not_signed(no_secret, providers, settings):
    providers(webhook="console")
    settings.TIERFLOW_WEBHOOK_URL = "https://erp.example.com/hooks"
    assert webhook_secret(None) == []


def test_manage_py_check_reports_the_missing_secret(no_secret, settings):
    settings.TIERFLOW_WEBHOOK_URL = "https://erp.example.com/hooks"
    with pytest.raises(SystemCheckError, match=r"notifications\.E008"):
        call_command("check")
