from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from core.admin import CodeKeyedAdmin, ReadOnlyAdmin

from .models import Coupon, CouponTemplate, EarningPolicy, GrowthEntry, PointsEntry
from .services import coupons as coupon_services
from .services import points as points_services


@admin.register(EarningPolicy)
class EarningPolicyAdmin(admin.ModelAdmin):
    """One policy per programme: the list goes straight to it."""

    def changelist_view(self, request, extra_context=None):
        policy = EarningPolicy.current()
        return HttpResponseRedirect(
            reverse("admin:benefits_earningpolicy_change", args=[policy.pk])
        )

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        points_services.earning_policy_update(**form.cleaned_data)


@admin.register(CouponTemplate)
class CouponTemplateAdmin(CodeKeyedAdmin):
    upsert = staticmethod(coupon_services.coupon_template_upsert)
    list_display = ["code", "name", "min_spend", "amount_off", "valid_days"]
    search_fields = ["code", "name"]


@admin.register(Coupon)
class CouponAdmin(ReadOnlyAdmin):
    list_display = [
        "code",
        "name",
        "member",
        "amount_off",
        "min_spend",
        "issued_at",
        "expires_at",
        "state",
    ]
    list_filter = ["status", "template", "issued_at"]
    list_select_related = ["member"]
    search_fields = ["=code", "=member__external_id"]
    date_hierarchy = "issued_at"

    @admin.display(description=_("status"))
    def state(self, coupon: Coupon) -> str:
        return coupon.display_status()


@admin.register(PointsEntry)
class PointsEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "member", "kind", "points", "expires_at", "reason", "firing"]
    list_filter = ["kind", "created_at"]
    list_select_related = ["member", "firing__rule"]
    search_fields = ["=member__external_id"]
    date_hierarchy = "created_at"


@admin.register(GrowthEntry)
class GrowthEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "member", "kind", "points", "reason", "firing"]
    list_filter = ["kind", "created_at"]
    list_select_related = ["member", "firing__rule"]
    search_fields = ["=member__external_id"]
    date_hierarchy = "created_at"
