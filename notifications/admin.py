from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.admin import CodeKeyedAdmin, ReadOnlyAdmin, sees_pii, shortened
from core.pii import redact_person
from members.models import Member

from . import selectors
from .models import Channel, Consent, Device, Notification, NotificationTemplate
from .rendering import SAMPLE_CONTEXT, render, sms_segments
from .services.delivery import notifications_retry
from .services.templates import notification_template_upsert


class PreviewForm(forms.Form):
    member = forms.CharField(label=_("member (external id)"), max_length=64)

    def clean_member(self) -> Member:
        member = Member.objects.select_related("tier").filter(
            external_id=self.cleaned_data["member"].strip()
        )
        if not member.exists():
            raise forms.ValidationError(_("No member with this external id."))
        return member.get()


@admin.register(NotificationTemplate)
class NotificationTemplateAdmin(CodeKeyedAdmin):
    upsert = staticmethod(notification_template_upsert)
    list_display = ["code", "name", "channel", "purpose", "sample_length", "body"]
    list_filter = ["channel", "purpose"]
    search_fields = ["code", "name", "body"]
    readonly_fields = ["sample_length"]

    @admin.display(description=_("SMS length (with sample values)"))
    def sample_length(self, template: NotificationTemplate) -> str:
        if template.pk is None or template.channel != Channel.SMS:
            return "-"
        parts = []
        for language, body in ((_("Chinese"), template.body), (_("English"), template.body_en)):
            if body:
                length, segments = sms_segments(render(body, SAMPLE_CONTEXT))
                parts.append(
                    _("%(language)s: %(length)s characters, %(segments)s SMS")
                    % {"language": language, "length": length, "segments": segments}
                )
        return "; ".join(str(part) for part in parts)

    def get_urls(self):
        view = self.admin_site.admin_view(self.preview_view)
        return [
            path(
                "<int:template_id>/preview/",
                view,
                name="notifications_notificationtemplate_preview",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request: HttpRequest, template_id: int) -> HttpResponse:
        template = get_object_or_404(NotificationTemplate, pk=template_id)
        if not self.has_view_permission(request, template):
            raise PermissionDenied
        form = PreviewForm(request.GET or None)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": template,
            "title": _("Preview for a member"),
            "form": form,
            "text": None,
        }
        if form.is_valid():
            member = form.cleaned_data["member"]
            text = render(
                template.body_for(member.language), selectors.preview_context(member=member)
            )
            if not sees_pii(request):
                text = redact_person(text, name=member.name)
            length, segments = sms_segments(text)
            context.update(
                text=text,
                language=member.get_language_display(),
                length=length,
                segments=segments if template.channel == Channel.SMS else 0,
            )
        return TemplateResponse(
            request, "admin/notifications/notificationtemplate/preview.html", context
        )


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    # Attempts and times past the creation are on each message's page; ids and template
    # names wrap (a foreign key column never wraps), so the list fits the window.
    list_display = ["id", "created_at", "member_external_id", "channel", "template_name", "status"]
    list_filter = ["status", "channel", "purpose", "template", "created_at"]
    list_select_related = ["member", "template"]
    search_fields = ["=member__external_id"]
    date_hierarchy = "created_at"
    actions = ["send_again"]

    def get_fields(self, request, obj=None):
        fields = [f.name for f in self.model._meta.fields]
        # The text names the member: masked for staff who may not see personal data.
        return [f if f != "body" or sees_pii(request) else "masked_body" for f in fields]

    @admin.display(description=_("member"), ordering="member__external_id")
    def member_external_id(self, notification: Notification) -> str:
        return notification.member.external_id

    @admin.display(description=_("message template"), ordering="template__name")
    def template_name(self, notification: Notification) -> str | None:
        return shortened(notification.template) if notification.template else None

    @admin.display(description=_("text"))
    def masked_body(self, notification: Notification) -> str:
        return redact_person(notification.body, name=notification.member.name)

    @admin.action(description=_("Send the selected failed messages again"))
    def send_again(self, request, queryset) -> None:
        count = notifications_retry(ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request,
            ngettext("%d message queued again.", "%d messages queued again.", count) % count,
            messages.SUCCESS,
        )


@admin.register(Consent)
class ConsentAdmin(ReadOnlyAdmin):
    """The consent history: recorded through the API (the app, the till, opt-out replies)."""

    list_display = ["recorded_at", "member", "channel", "granted", "source"]
    list_filter = ["channel", "granted", "source"]
    list_select_related = ["member"]
    search_fields = ["=member__external_id"]


@admin.register(Device)
class DeviceAdmin(ReadOnlyAdmin):
    list_display = ["member", "platform", "is_active", "registered_at", "last_seen_at"]
    list_filter = ["platform", "is_active"]
    list_select_related = ["member"]
    search_fields = ["=member__external_id"]
    exclude = ["token"]  # a credential for pushing to the member's phone
