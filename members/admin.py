from django.contrib import admin
from django.db.models import Count
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from core.admin import CodeKeyedAdmin, ReadOnlyAdmin

from . import services
from .models import EngagementEvent, EngagementKind, Tag, Tier


@admin.register(Tier)
class TierAdmin(CodeKeyedAdmin):
    upsert = staticmethod(services.tier_upsert)
    list_display = [
        "rank",
        "code",
        "name",
        "discount_percent",
        "discount_label",
        "points_multiplier",
        "validity",
        "member_count",
    ]
    list_display_links = ["code"]
    ordering = ["rank"]
    fieldsets = [
        (None, {"fields": ["code", "name", "rank", "discount_percent", "points_multiplier"]}),
        (
            _("Validity and keeping the tier"),
            {
                "fields": [
                    "validity",
                    "validity_days",
                    "keep_metric",
                    "keep_threshold",
                    "remind_days_before",
                    "lapse_to",
                    "refund_policy",
                ]
            },
        ),
    ]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).annotate(member_count=Count("members"))

    @admin.display(description=_("members"), ordering="member_count")
    def member_count(self, tier: Tier) -> int:
        return tier.member_count

    @admin.display(description=_("reads as"))
    def discount_label(self, tier: Tier) -> str:
        return tier.discount_label


@admin.register(Tag)
class TagAdmin(CodeKeyedAdmin):
    upsert = staticmethod(services.tag_upsert)
    list_display = ["code", "name", "member_count"]
    search_fields = ["code", "name"]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).annotate(member_count=Count("members"))

    @admin.display(description=_("members"), ordering="member_count")
    def member_count(self, tag: Tag) -> int:
        return tag.member_count


@admin.register(EngagementKind)
class EngagementKindAdmin(CodeKeyedAdmin):
    upsert = staticmethod(services.engagement_kind_upsert)
    list_display = ["code", "name", "growth_points", "daily_cap", "is_active"]
    list_filter = ["is_active"]


@admin.register(EngagementEvent)
class EngagementEventAdmin(ReadOnlyAdmin):
    list_display = ["external_id", "member", "kind", "occurred_at", "evaluated"]
    list_filter = ["kind", "occurred_at"]
    list_select_related = ["member", "kind"]
    search_fields = ["=external_id", "=member__external_id"]
    raw_id_fields = ["member"]
    date_hierarchy = "occurred_at"

    @admin.display(description=_("evaluated"), boolean=True)
    def evaluated(self, event: EngagementEvent) -> bool:
        return event.is_evaluated
