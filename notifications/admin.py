from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.admin import CodeKeyedAdmin, ReadOnlyAdmin, sees_pii
from core.pii import redact_person

from . import services
from .models import Notification, NotificationTemplate


@admin.register(NotificationTemplate)
class NotificationTemplateAdmin(CodeKeyedAdmin):
    upsert = staticmethod(services.notification_template_upsert)
    list_display = ["code", "name", "channel", "body"]
    list_filter = ["channel"]
    search_fields = ["code", "name", "body"]


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

    def get_fields(self, request, obj=None):
        fields = [f.name for f in self.model._meta.fields]
        # The text names the member: masked for staff who may not see personal data.
        return [f if f != "body" or sees_pii(request) else "masked_body" for f in fields]

    @admin.display(description=_("text"))
    def masked_body(self, notification: Notification) -> str:
        return redact_person(notification.body, name=notification.member.name)

    @admin.action(description=_("Send the selected failed messages again"))
    def send_again(self, request, queryset) -> None:
        count = services.notifications_retry(ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request,
            ngettext("%d message queued again.", "%d messages queued again.", count) % count,
            messages.SUCCESS,
        )
