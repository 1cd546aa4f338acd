from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin import CodeKeyedAdmin, ReadOnlyAdmin

from . import services
from .models import Coupon, CouponTemplate, PointsEntry


@admin.register(CouponTemplate)
class CouponTemplateAdmin(CodeKeyedAdmin):
    list_display = ["code", "name", "min_spend", "amount_off", "valid_days"]
    search_fields = ["code", "name"]

    def save_model(self, request, obj, form, change) -> None:
        saved, _ = services.coupon_template_upsert(
            code=obj.code,
            name=obj.name,
            min_spend=obj.min_spend,
            amount_off=obj.amount_off,
            valid_days=obj.valid_days,
        )
        obj.pk = saved.pk


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
    list_display = ["created_at", "member", "kind", "points", "reason", "firing"]
    list_filter = ["kind", "created_at"]
    list_select_related = ["member", "firing__rule"]
    search_fields = ["=member__external_id"]
    date_hierarchy = "created_at"
