"""System checks of the notification settings: a misspelt provider, a missing key or
webhook secret would fail every message at send time (permanently); report it when the
process starts (`manage.py check`, migrate, runserver) instead.

| id | problem |
| --- | --- |
| E001 | a channel names a provider that does not exist |
| E002 | a provider is configured on a channel it cannot deliver on |
| E003 | aliyun: required settings are empty |
| E004 | twilio: required settings are empty |
| E005 | fcm: required settings are empty, or the service-account key is unusable |
| E006 | smtp: required settings are empty |
| E007 | smtp: EMAIL_USE_TLS and EMAIL_USE_SSL are both set |
| E008 | webhooks can be sent but TIERFLOW_WEBHOOK_SECRET, which signs them, is empty |
| W001 | twilio: no TIERFLOW_PUBLIC_URL, so no delivery reports |
| W002 | aliyun: no TIERFLOW_CALLBACK_TOKEN, so delivery receipts are refused |
"""

from django.conf import settings
from django.core import checks
from django.core.checks import CheckMessage, Error

from .models import Channel
from .providers import PROVIDER_CHANNELS, PROVIDERS

REQUIRED = {
    "aliyun": (
        "notifications.E003",
        [
            "TIERFLOW_ALIYUN_ACCESS_KEY_ID",
            "TIERFLOW_ALIYUN_ACCESS_KEY_SECRET",
            "TIERFLOW_ALIYUN_SMS_SIGN_NAME",
            "TIERFLOW_ALIYUN_SMS_TEMPLATE_CODE",
            "TIERFLOW_ALIYUN_SMS_TEMPLATE_PARAM",
            "TIERFLOW_ALIYUN_SMS_ENDPOINT",
        ],
    ),
    "twilio": (
        "notifications.E004",
        [
            "TIERFLOW_TWILIO_ACCOUNT_SID",
            "TIERFLOW_TWILIO_AUTH_TOKEN",
            "TIERFLOW_TWILIO_FROM",
            "TIERFLOW_TWILIO_API_BASE",
        ],
    ),
    "fcm": ("notifications.E005", ["TIERFLOW_FCM_CREDENTIALS", "TIERFLOW_FCM_API_BASE"]),
    "smtp": ("notifications.E006", ["EMAIL_HOST", "EMAIL_PORT", "DEFAULT_FROM_EMAIL"]),
}
# The provider that signs webhooks (with TIERFLOW_WEBHOOK_SECRET); "console" only logs them.
SIGNING_PROVIDER = "http"


def providers_exist(app_configs, **kwargs) -> list[Error]:
    """A misspelt provider would fail every message at send time; fail at start instead."""
    return [
        Error(
            f"Unknown notification provider '{name}' for the {channel} channel.",
            hint=f"Choose one of: {', '.join(sorted(PROVIDERS))}.",
            id="notifications.E001",
        )
        for channel, name in settings.TIERFLOW_NOTIFICATION_PROVIDERS.items()
        if name not in PROVIDERS
    ]


def provider_settings(app_configs, **kwargs) -> list[CheckMessage]:
    """Each configured provider is on a channel it serves and has its settings. (An
    unknown provider name is notifications.E001's to report.)"""
    messages: list[CheckMessage] = []
    for channel, name in settings.TIERFLOW_NOTIFICATION_PROVIDERS.items():
        if name not in PROVIDERS:
            continue
        served = PROVIDER_CHANNELS.get(name)
        if served is not None and channel not in served:
            messages.append(
                Error(
                    f"The '{name}' provider cannot deliver on the {channel} channel.",
                    hint=f"It serves: {', '.join(sorted(served))}.",
                    id="notifications.E002",
                )
            )
            continue
        messages += _missing(name, channel)
        messages += _extra_checks(name)
    return messages


def webhooks_unsigned() -> bool:
    """Whether a webhook sent now would fail for want of its signing secret."""
    provider = settings.TIERFLOW_NOTIFICATION_PROVIDERS.get(Channel.WEBHOOK, "console")
    return provider == SIGNING_PROVIDER and not settings.TIERFLOW_WEBHOOK_SECRET


def webhook_secret_error(hint_more: str = "") -> Error:
    return Error(
        "Webhooks will fail: TIERFLOW_WEBHOOK_SECRET, which signs them, is not set.",
        hint="Set it to a long random secret and give it to the receivers, who check "
        "X-Tierflow-Signature with it." + hint_more,
        id="notifications.E008",
    )


def webhook_secret(app_configs, **kwargs) -> list[CheckMessage]:
    """The http provider fails every webhook, permanently, without the secret it signs
    them with: report that at start when templates post to TIERFLOW_WEBHOOK_URL. (Rules
    that post to their own URL are rules' check to report.)"""
    if settings.TIERFLOW_WEBHOOK_URL and webhooks_unsigned():
        return [webhook_secret_error()]
    return []


def _missing(name: str, channel: str) -> list[CheckMessage]:
    if name not in REQUIRED:
        return []
    check_id, required = REQUIRED[name]
    missing = [setting for setting in required if not getattr(settings, setting, "")]
    if not missing:
        return []
    return [
        Error(
            f"The {channel} provider '{name}' needs settings that are empty: {', '.join(missing)}.",
            hint="Set them in the environment (see the README, Providers).",
            id=check_id,
        )
    ]


def _extra_checks(name: str) -> list[CheckMessage]:
    if name == "fcm" and settings.TIERFLOW_FCM_CREDENTIALS:
        return _fcm_credentials()
    if name == "smtp" and settings.EMAIL_USE_TLS and settings.EMAIL_USE_SSL:
        return [
            Error(
                "EMAIL_USE_TLS and EMAIL_USE_SSL are both set; Django takes only one.",
                hint="STARTTLS (usually port 587): EMAIL_USE_TLS. TLS from the start "
                "(usually port 465): EMAIL_USE_SSL.",
                id="notifications.E007",
            )
        ]
    if name == "twilio" and not settings.TIERFLOW_PUBLIC_URL:
        return [
            checks.Warning(
                "Twilio will send no delivery reports: TIERFLOW_PUBLIC_URL is not set.",
                hint="Set it to the public https address of this deployment.",
                id="notifications.W001",
            )
        ]
    if name == "aliyun" and not settings.TIERFLOW_CALLBACK_TOKEN:
        return [
            checks.Warning(
                "Aliyun delivery receipts will be refused: TIERFLOW_CALLBACK_TOKEN is not set.",
                hint="Set a long random token and put it in the receipt URL (?token=...).",
                id="notifications.W002",
            )
        ]
    return []


def _fcm_credentials() -> list[CheckMessage]:
    from .providers.fcm import project_id, service_account_info

    try:
        info = service_account_info()
        problems = [
            key for key in ("client_email", "private_key", "token_uri") if not info.get(key)
        ]
        if not project_id():
            problems.append("project_id (or TIERFLOW_FCM_PROJECT_ID)")
    except (OSError, ValueError, AttributeError) as exc:
        problems = [f"unreadable ({type(exc).__name__})"]
    if not problems:
        return []
    return [
        Error(
            f"TIERFLOW_FCM_CREDENTIALS is not a usable service-account key: {', '.join(problems)}.",
            hint="Give the key's JSON, or the path of its file, as downloaded from Firebase.",
            id="notifications.E005",
        )
    ]
