"""System checks of the rules' settings.

A rule's webhook action may post to a URL of its own; without TIERFLOW_WEBHOOK_SECRET
every such post fails. Like Django's own database checks, this one reads the database
only when asked to: `migrate`, or `check --database default`.
"""

from django.core.checks import CheckMessage
from django.db import DatabaseError

from notifications.checks import webhook_secret_error, webhooks_unsigned

from .models import ActionKind, RuleAction


def rule_webhooks_signed(app_configs, databases=None, **kwargs) -> list[CheckMessage]:
    if not databases or not webhooks_unsigned():
        return []
    try:
        posting = any(
            RuleAction.objects.using(alias)
            .filter(kind=ActionKind.WEBHOOK)
            .exclude(webhook_url="")
            .exists()
            for alias in databases
        )
    except DatabaseError:
        # Not migrated yet (migrate checks first) or not reachable: the first post still
        # fails, with the reason.
        return []
    if not posting:
        return []
    return [webhook_secret_error(" A rule's webhook action posts to a URL of its own.")]
