from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from core.admin import CodeKeyedAdmin, ReadOnlyAdmin, job_progress, shortened

from .models import (
    Coupon,
    CouponIssueJob,
    CouponTemplate,
    Discount,
    EarningPolicy,
    GrowthEntry,
    PointsEntry,
)
from .selectors import members_for_coupon_issue
from .services import coupon_jobs
from .services import coupons as coupon_services
from .services import points as points_services


@admin.register(EarningPolicy)
class EarningPolicyAdmin(admin.ModelAdmin):
    """One policy per programme: the list goes straight to it (to the form that creates
    it, in a database where it was never saved)."""

    def changelist_view(self, request, extra_context=None):
        if EarningPolicy.objects.filter(pk=1).exists():
            return HttpResponseRedirect(reverse("admin:benefits_earningpolicy_change", args=[1]))
        return HttpResponseRedirect(reverse("admin:benefits_earningpolicy_add"))

    def has_add_permission(self, request) -> bool:
        return not EarningPolicy.objects.filter(pk=1).exists()

    def response_add(self, request, obj, post_url_continue=None):
        obj.pk = 1  # saved by the service, as the programme's one policy
        return super().response_add(request, obj, post_url_continue)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        points_services.earning_policy_update(**form.cleaned_data)


def discount_summary(terms: CouponTemplate | Coupon) -> str:
    """A template's or a coupon's discount in a few words, for lists."""
    if terms.discount == Discount.PERCENT:
        text = _("%(percent)s%% off") % {"percent": f"{terms.percent_off.normalize():f}"}
        if terms.max_discount is not None:
            text += ", " + _("at most %(amount)s") % {"amount": terms.max_discount}
    else:
        text = _("%(amount)s off") % {"amount": terms.amount_off}
    if terms.min_spend:
        text += ", " + _("spend %(amount)s or more") % {"amount": terms.min_spend}
    return text


class CouponIssueForm(forms.ModelForm):
    """The bulk issue's filter: every member matching all the criteria given."""

    class Meta:
        model = CouponIssueJob
        fields = ["tier", "tag", "joined_from", "joined_until", "min_lifetime_spend"]
        widgets = {
            "joined_from": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "joined_until": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        }
        help_texts = {
            "tier": _("Empty: every tier."),
            "tag": _("Empty: with or without tags."),
        }

    def clean(self) -> dict:
        data = super().clean()
        if (
            data.get("joined_from")
            and data.get("joined_until")
            and data["joined_until"] < data["joined_from"]
        ):
            self.add_error("joined_until", _("Must be on or after 'joined on or after'."))
        return data

    def filters(self) -> dict:
        return {name: self.cleaned_data.get(name) for name in self.Meta.fields}


@admin.register(CouponTemplate)
class CouponTemplateAdmin(CodeKeyedAdmin):
    upsert = staticmethod(coupon_services.coupon_template_upsert)
    list_display = ["code", "name", "terms", "validity", "per_member_limit", "budget_used"]
    list_filter = ["discount", "stacking"]
    search_fields = ["code", "name"]
    fieldsets = [
        (None, {"fields": ["code", "name"]}),
        (
            _("Discount"),
            {
                "fields": ["discount", "amount_off", "percent_off", "max_discount", "min_spend"],
                "description": _(
                    "An amount off (give the amount), or a percentage off the amount after "
                    "the member's tier discount (give the percentage, and optionally a cap)."
                ),
            },
        ),
        (
            _("Validity"),
            {
                "fields": ["valid_days", "valid_from", "valid_until"],
                "description": _(
                    "Either a number of days from when each coupon is issued, or fixed dates "
                    "for every coupon ('valid from' is optional)."
                ),
            },
        ),
        (
            _("Limits and combining"),
            {
                "fields": ["per_member_limit", "budget", "stacking"],
                "description": _(
                    "Void coupons do not count towards the limits. A coupon over a limit is "
                    "not issued; the rest of the rule still takes effect."
                ),
            },
        ),
    ]

    def get_queryset(self, request):
        live = Q(coupons__status__in=[Coupon.Status.ISSUED, Coupon.Status.REDEEMED])
        return super().get_queryset(request).annotate(coupons_held=Count("coupons", filter=live))

    @admin.display(description=_("discount"))
    def terms(self, template: CouponTemplate) -> str:
        return discount_summary(template)

    @admin.display(description=_("valid"))
    def validity(self, template: CouponTemplate) -> str:
        if template.valid_days:
            return _("%(days)s days from issue") % {"days": template.valid_days}
        until = formats.date_format(timezone.localtime(template.valid_until), "SHORT_DATE_FORMAT")
        return _("until %(date)s") % {"date": until}

    @admin.display(description=_("coupons held / budget"), ordering="coupons_held")
    def budget_used(self, template: CouponTemplate) -> str:
        return f"{template.coupons_held} / {template.budget or '∞'}"

    # --- Bulk issue ---------------------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "<int:template_id>/issue/",
                self.admin_site.admin_view(self.issue_view),
                name="benefits_coupontemplate_issue",
            ),
            *super().get_urls(),
        ]

    def issue_view(self, request: HttpRequest, template_id: int) -> HttpResponse:
        """The filter form: "Count" shows how many members it selects, "Issue" starts
        the job and opens its progress page."""
        template = get_object_or_404(CouponTemplate, pk=template_id)
        if not self.has_change_permission(request, template):
            raise PermissionDenied
        form = CouponIssueForm(request.POST if request.method == "POST" else None)
        count = None
        if form.is_valid():
            if "_issue" in request.POST:
                try:
                    job = coupon_jobs.coupon_issue_job_start(
                        template=template, created_by=request.user, **form.filters()
                    )
                except ValidationError as exc:
                    self.message_user(request, " ".join(exc.messages), messages.ERROR)
                else:
                    return HttpResponseRedirect(
                        reverse("admin:benefits_couponissuejob_change", args=[job.pk])
                    )
            count = members_for_coupon_issue(**form.filters()).count()
        elif not form.is_bound:
            count = members_for_coupon_issue().count()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": template,
            "template": template,
            "terms": discount_summary(template),
            "title": _("Issue to members: %(name)s") % {"name": template.name},
            "form": form,
            "count": count,
        }
        return TemplateResponse(request, "admin/benefits/coupontemplate/issue.html", context)


@admin.register(CouponIssueJob)
class CouponIssueJobAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "template", "status", "progress", "issued", "skipped"]
    list_filter = ["status"]
    list_select_related = ["template", "created_by"]
    fields = [
        "template_link",
        "member_filter",
        "status",
        "progress",
        "issued",
        "skipped",
        "coupons_link",
        "error",
        "created_by",
        "created_at",
        "finished_at",
    ]
    readonly_fields = fields

    @admin.display(description=_("coupon template"))
    def template_link(self, job: CouponIssueJob) -> str:
        url = reverse("admin:benefits_coupontemplate_change", args=[job.template_id])
        return format_html('<a href="{}">{}</a>', url, job.template)

    @admin.display(description=_("members"))
    def member_filter(self, job: CouponIssueJob) -> str:
        criteria = [
            (CouponIssueJob._meta.get_field(name).verbose_name, getattr(job, name))
            for name in CouponIssueForm.Meta.fields
            if getattr(job, name) is not None
        ]
        if not criteria:
            return _("all members")
        return "; ".join(f"{label}: {value}" for label, value in criteria)

    @admin.display(description=_("progress"))
    def progress(self, job: CouponIssueJob) -> str:
        return job_progress(job)

    @admin.display(description=_("coupons"))
    def coupons_link(self, job: CouponIssueJob) -> str:
        url = reverse("admin:benefits_coupon_changelist") + f"?job__id__exact={job.pk}"
        return format_html('<a href="{}">{}</a>', url, _("the coupons this job issued"))


@admin.register(Coupon)
class CouponAdmin(ReadOnlyAdmin):
    list_display = [
        "code",
        "name",
        "member",
        "terms",
        "issued_at",
        "expires_at",
        "state",
        "redeemed_order",
    ]
    list_filter = ["status", "discount", "template", "issued_at"]
    list_select_related = ["member"]
    search_fields = ["=code", "=member__external_id", "=redeemed_order"]
    date_hierarchy = "issued_at"

    @admin.display(description=_("status"))
    def state(self, coupon: Coupon) -> str:
        return coupon.display_status()

    @admin.display(description=_("discount"))
    def terms(self, coupon: Coupon) -> str:
        return discount_summary(coupon)


class LedgerAdmin(ReadOnlyAdmin):
    """A ledger's entries: the firing that made an entry is on its page (its reason names
    the rule); ids wrap and long reasons are cut, so the list fits the window."""

    list_filter = ["kind", "created_at"]
    list_select_related = ["member"]
    search_fields = ["=member__external_id"]
    date_hierarchy = "created_at"

    @admin.display(description=_("member"), ordering="member__external_id")
    def member_external_id(self, entry: PointsEntry | GrowthEntry) -> str:
        return entry.member.external_id

    @admin.display(description=_("reason"), ordering="reason")
    def short_reason(self, entry: PointsEntry | GrowthEntry) -> str:
        return shortened(entry.reason)


@admin.register(PointsEntry)
class PointsEntryAdmin(LedgerAdmin):
    list_display = [
        "created_at",
        "member_external_id",
        "kind",
        "points",
        "expires_at",
        "short_reason",
    ]


@admin.register(GrowthEntry)
class GrowthEntryAdmin(LedgerAdmin):
    list_display = ["created_at", "member_external_id", "kind", "points", "short_reason"]
