from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written by the engine: operators look, they do not edit."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
