from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RulesConfig(AppConfig):
    name = "rules"
    verbose_name = _("Rules")

    def ready(self) -> None:
        from django.core import checks

        from . import signals
        from .checks import rule_webhooks_signed

        signals.connect()
        checks.register(rule_webhooks_signed, checks.Tags.database)
