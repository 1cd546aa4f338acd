from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q

ANALYSTS = "Analysts"
# Analysts read everything of the programme, members masked, and change nothing.
READ_APPS = ("members", "orders", "benefits", "notifications", "rules")


@transaction.atomic
def analysts_group_ensure(**kwargs) -> Group:
    """The Analysts group with `view reports` and every `view_…` permission of the
    programme's apps (not `view_member_pii`): run after every migrate, so new models'
    view permissions join it."""
    group, _ = Group.objects.get_or_create(name=ANALYSTS)
    permissions = Permission.objects.filter(
        Q(content_type__app_label="reports", codename="view_reports")
        | Q(content_type__app_label__in=READ_APPS, codename__startswith="view_")
    ).exclude(codename="view_member_pii")
    group.permissions.add(*permissions)
    return group
