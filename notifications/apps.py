from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Notifications")

    def ready(self) -> None:
        from django.core import checks

        from .checks import provider_settings, providers_exist, webhook_secret

        checks.register(providers_exist)
        checks.register(provider_settings)
        checks.register(webhook_secret)
