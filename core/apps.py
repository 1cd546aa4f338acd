from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = _("Core")

    def ready(self) -> None:
        from . import (  # noqa: F401  (registering)
            checks,  # the deployment's start-up checks
            lookups,  # __any_of
            schema,  # the API key's OpenAPI scheme
        )
