from django.contrib import admin
from django.db.models import Count
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from benefits.models import Coupon
from core.admin import CodeKeyedAdmin, sees_pii
from core.pii import mask_email, mask_name, mask_phone, redact_person

from . import services
from .models import Member, Tier, TierChange
from .timeline import member_timeline


@admin.register(Tier)
class TierAdmin(CodeKeyedAdmin):
    list_display = ["rank", "code", "name", "discount_percent", "discount_label", "member_count"]
    list_display_links = ["code"]
    ordering = ["rank"]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).annotate(member_count=Count("members"))

    @admin.display(description=_("members"), ordering="member_count")
    def member_count(self, tier: Tier) -> int:
        return tier.member_count

    @admin.display(description=_("reads as"))
    def discount_label(self, tier: Tier) -> str:
        return tier.discount_label

    def save_model(self, request, obj, form, change) -> None:
        saved, _ = services.tier_upsert(
            code=obj.code, name=obj.name, rank=obj.rank, discount_percent=obj.discount_percent
        )
        obj.pk = saved.pk


class TierChangeInline(admin.TabularInline):
    model = TierChange
    fk_name = "member"
    fields = ["created_at", "from_tier", "to_tier", "reason", "firing", "changed_by"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("tier history")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class CouponInline(admin.TabularInline):
    model = Coupon
    fields = ["code", "name", "min_spend", "amount_off", "issued_at", "expires_at", "status"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    # The list shows masked data to everyone: it is the screen most often shared.
    list_display = [
        "external_id",
        "display_name",
        "display_phone",
        "tier",
        "lifetime_spend",
        "order_count",
        "joined_at",
    ]
    list_filter = ["tier"]
    list_select_related = ["tier"]
    search_fields = ["=external_id", "=phone", "=email"]
    date_hierarchy = "joined_at"
    inlines = [TierChangeInline, CouponInline]
    summary_fields = [
        "tier",
        "tier_since",
        "lifetime_spend",
        "order_count",
        "last_order_at",
        "related",
    ]

    def get_fields(self, request, obj=None):
        personal = ["name", "phone", "email"]
        if obj is not None and not sees_pii(request):
            personal = ["display_name", "display_phone", "display_email"]
        head = ["external_id", *personal, "joined_at"]
        return head if obj is None else [*head, *self.summary_fields, self._history(request)]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        readonly = ["external_id", "joined_at", *self.summary_fields, self._history(request)]
        if not sees_pii(request):
            readonly += ["display_name", "display_phone", "display_email"]
        return readonly

    def _history(self, request: HttpRequest) -> str:
        return "history" if sees_pii(request) else "masked_history"

    @admin.display(description=_("name"))
    def display_name(self, member: Member) -> str:
        return mask_name(member.name)

    @admin.display(description=_("phone"))
    def display_phone(self, member: Member) -> str:
        return mask_phone(member.phone)

    @admin.display(description=_("e-mail"))
    def display_email(self, member: Member) -> str:
        return mask_email(member.email)

    @admin.display(description=_("records"))
    def related(self, member: Member) -> str:
        links = [
            ("orders", "orders_order_changelist", _("orders")),
            ("points_entries", "benefits_pointsentry_changelist", _("points ledger")),
            ("notifications", "notifications_notification_changelist", _("messages")),
            ("firings", "rules_rulefiring_changelist", _("rule firings")),
        ]
        parts = []
        for related_name, url_name, label in links:
            count = getattr(member, related_name).count()
            url = f"{reverse(f'admin:{url_name}')}?member__id__exact={member.pk}"
            parts.append(format_html('<a href="{}">{} ({})</a>', url, label, count))
        return format_html(" · ".join(["{}"] * len(parts)), *parts)

    @admin.display(description=_("recent history"))
    def history(self, member: Member, *, masked: bool = False) -> str:
        entries, _ = member_timeline(member_id=member.pk, limit=20)
        if masked:
            for entry in entries:
                if "text" in entry:
                    entry["text"] = redact_person(entry["text"], name=member.name)
        return render_to_string("admin/members/timeline.html", {"entries": entries})

    @admin.display(description=_("recent history"))
    def masked_history(self, member: Member) -> str:
        return self.history(member, masked=True)

    def save_model(self, request, obj, form, change) -> None:
        details = {
            field: form.cleaned_data[field]
            for field in ("name", "phone", "email")
            if field in form.cleaned_data
        }
        saved, _ = services.member_upsert(external_id=obj.external_id, **details)
        obj.pk = saved.pk
