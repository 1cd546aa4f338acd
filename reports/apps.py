from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = _("Reports")

    def ready(self) -> None:
        from . import definitions  # noqa: F401  (each report registers itself)
        from .services import analysts_group_ensure

        # Once per migrate, after this app's: the apps it reads come before it in
        # INSTALLED_APPS, so their permissions exist by then.
        post_migrate.connect(analysts_group_ensure, sender=self, dispatch_uid="reports.analysts")
