from django.contrib import admin
from django.http import HttpRequest

PII_PERMISSION = "members.view_member_pii"


def sees_pii(request: HttpRequest) -> bool:
    return request.user.has_perm(PII_PERMISSION)


class CodeKeyedAdmin(admin.ModelAdmin):
    """Programme items are saved by code through their service's upsert, so a code cannot
    change once created (programme files refer to items by it)."""

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        return [*readonly, "code"] if obj else readonly


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written by the engine: operators look, they do not edit."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
