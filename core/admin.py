from collections.abc import Callable

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.text import Truncator

PII_PERMISSION = "members.view_member_pii"


def sees_pii(request: HttpRequest) -> bool:
    return request.user.has_perm(PII_PERMISSION)


class CodeKeyedAdmin(admin.ModelAdmin):
    """Programme items (tiers, templates, tags…) are saved by code through their app's
    upsert service, as the programme loader saves them; a code cannot change once created
    (programme files refer to items by it)."""

    upsert: Callable[..., tuple[Model, bool]]  # e.g. staticmethod(services.tier_upsert)

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        return [*readonly, "code"] if obj else readonly

    def save_model(self, request, obj, form, change) -> None:
        values = {name: value for name, value in form.cleaned_data.items() if name != "code"}
        saved, _ = self.upsert(code=obj.code, **values)
        obj.pk = saved.pk


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written by the engine: operators look, they do not edit."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def job_progress(job) -> str:
    """A background job's progress bar for its admin page: `percent_done`, `processed`
    of `total`."""
    return format_html(
        '<progress max="100" value="{}"></progress> {}% ({} / {})',
        job.percent_done,
        job.percent_done,
        job.processed,
        job.total,
    )


def shortened(text: object, length: int = 60) -> str:
    """Long text (a rule's name, a ledger reason) cut to `length` characters for a list
    column, whole on hover: lists stay within the window."""
    text = str(text)
    if len(text) <= length:
        return text
    return format_html('<span title="{}">{}</span>', text, Truncator(text).chars(length))
