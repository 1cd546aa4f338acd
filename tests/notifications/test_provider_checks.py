"""The system check for the configured providers' settings (notifications.E002-E006)."""

import json

import pytest

from notifications.providers.checks import provider_settings


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
    assert (message.id, "EMAIL_USE_SSL are both set" in message.msg) == ("notifications.E006", True)
