from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.admin import ReadOnlyAdmin

from . import services
from .models import Notification, NotificationTemplate


@admin.register(NotificationTemplate)
class NotificationTemplateAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "channel", "body"]
    list_filter = ["channel"]
    search_fields = ["code", "name", "body"]

    def save_model(self, request, obj, form, change) -> None:
        saved, _ = services.notification_template_upsert(
            code=obj.code, channel=obj.channel, body=obj.body, name=obj.name
        )
        obj.pk = saved.pk


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "created_at",
        "member",
        "channel",
        "template",
        "status",
        "attempts",
        "sent_at",
    ]
    list_filter = ["status", "channel", "template", "created_at"]
    list_select_related = ["member", "template"]
    search_fields = ["=member__external_id"]
    date_hierarchy = "created_at"
    actions = ["send_again"]

    @admin.action(description=_("Send the selected failed messages again"))
    def send_again(self, request, queryset) -> None:
        count = services.notifications_retry(ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request,
            ngettext("%d message queued again.", "%d messages queued again.", count) % count,
            messages.SUCCESS,
        )
