"""The member's page in the admin: their details, tier history, coupons, balances and
recent history across the apps, and setting a tier by hand."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from benefits.models import Coupon
from benefits.selectors import growth_balance, points_balance
from core.admin import ReadOnlyAdmin, sees_pii
from core.pii import mask_email, mask_name, mask_phone, redact_person
from members import services
from members.models import Member, Tier, TierChange

from .timeline import member_timeline


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
    fields = [
        "code",
        "name",
        "min_spend",
        "amount_off",
        "percent_off",
        "max_discount",
        "issued_at",
        "expires_at",
        "status",
        "redeemed_order",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class SetTierForm(forms.Form):
    tier = forms.ModelChoiceField(Tier.objects.order_by("rank"), label=_("tier"))
    reason = forms.CharField(label=_("reason"), max_length=150)
    tier_floor = forms.ModelChoiceField(
        Tier.objects.order_by("rank"), required=False, label=_("never below")
    )
    floor_until = forms.DateField(
        required=False, label=_("floor until"), widget=forms.DateInput(attrs={"type": "date"})
    )


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
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
        "tier_period_start",
        "tier_expires_at",
        "tier_floor",
        "tier_floor_until",
        "lifetime_spend",
        "order_count",
        "last_order_at",
        "balances",
        "tag_list",
        "related",
    ]

    PERSONAL_FIELDS = ("name", "phone", "email", "birthday")

    def lookup_allowed(self, lookup: str, value, request=None) -> bool:
        # Filtering on personal data would give away what the list masks, a character
        # at a time (phone__startswith=...), to staff who may not see it.
        if lookup.split("__")[0] in self.PERSONAL_FIELDS and not (
            request is not None and sees_pii(request)
        ):
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_list_display(self, request: HttpRequest) -> list[str]:
        # One rule on every screen: personal data in clear only with the permission.
        if sees_pii(request):
            clear = {"display_name": "name", "display_phone": "phone"}
            return [clear.get(field, field) for field in self.list_display]
        return self.list_display

    def get_fields(self, request, obj=None):
        personal = ["name", "phone", "email", "birthday"]
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

    @admin.display(description=_("balances"))
    def balances(self, member: Member) -> str:
        return _("%(points)s points, %(growth)s growth points") % {
            "points": points_balance(member_id=member.pk),
            "growth": growth_balance(member_id=member.pk),
        }

    @admin.display(description=_("tags"))
    def tag_list(self, member: Member) -> str:
        return ", ".join(str(tag) for tag in member.tags.all()) or "-"

    @admin.display(description=_("records"))
    def related(self, member: Member) -> str:
        links = [
            ("orders", "orders_order_changelist", _("orders")),
            ("engagements", "members_engagementevent_changelist", _("engagements")),
            ("points_entries", "benefits_pointsentry_changelist", _("points ledger")),
            ("growth_entries", "benefits_growthentry_changelist", _("growth points")),
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

    def get_urls(self):
        view = self.admin_site.admin_view(self.set_tier_view)
        return [
            path("<int:member_id>/set-tier/", view, name="members_member_set_tier"),
            *super().get_urls(),
        ]

    def set_tier_view(self, request: HttpRequest, member_id: int) -> HttpResponse:
        member = get_object_or_404(Member.objects.select_related("tier"), pk=member_id)
        if not self.has_change_permission(request, member):
            raise PermissionDenied
        form = SetTierForm(
            request.POST or None,
            initial={
                "tier": member.tier,
                "tier_floor": member.tier_floor,
                "floor_until": member.tier_floor_until,
            },
        )
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                services.member_set_tier_by_hand(
                    member_id=member.pk,
                    tier=data["tier"],
                    reason=data["reason"],
                    changed_by=request.user,
                    floor=data["tier_floor"],
                    floor_until=data["floor_until"],
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                self.message_user(request, _("The tier was set."), messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:members_member_change", args=[member.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": member,
            "title": _("Set the tier of %(member)s") % {"member": member},
            "form": form,
        }
        return TemplateResponse(request, "admin/members/member/set_tier.html", context)

    def save_model(self, request, obj, form, change) -> None:
        details = {
            field: form.cleaned_data[field]
            for field in services.MEMBER_DETAIL_FIELDS
            if field in form.cleaned_data
        }
        saved, _ = services.member_upsert(external_id=obj.external_id, **details)
        obj.pk = saved.pk


@admin.register(TierChange)
class TierChangeAdmin(ReadOnlyAdmin):
    """The tier history of every member: where the tier-movements report's counts lead."""

    list_display = ["member", "created_at", "from_tier", "to_tier", "cause", "rule", "reason"]
    list_filter = ["cause", "from_tier", "to_tier", "created_at"]
    list_select_related = ["member", "from_tier", "to_tier", "firing__rule"]
    search_fields = ["=member__external_id"]
    date_hierarchy = "created_at"
    # The report's links name tiers and rules by code.
    CODE_LOOKUPS = {"from_tier__code__exact", "to_tier__code__exact", "firing__rule__code__exact"}

    def lookup_allowed(self, lookup: str, value: str, request=None) -> bool:
        return lookup in self.CODE_LOOKUPS or super().lookup_allowed(lookup, value, request)

    @admin.display(description=_("rule"), ordering="firing__rule__code")
    def rule(self, change: TierChange) -> str:
        return change.firing.rule.code if change.firing_id else "-"
