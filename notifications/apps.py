from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Notifications")

    def ready(self) -> None:
        from django.core import checks

        from .checks import providers_exist
        from .providers.checks import provider_settings

        checks.register(providers_exist)
        checks.register(provider_settings)
