from django.conf import settings
from django.core.checks import Error

from .providers import PROVIDERS


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
