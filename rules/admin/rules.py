"""Rules in the admin: conditions and actions as numbered rows with dropdowns, saved as
one change (versioned, with history) through rule_upsert; and on each rule's page the
tools to preview, test, simulate and apply it."""

import contextlib

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import Count
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _

from core.admin import sees_pii
from core.pii import mask_name
from members import selectors as member_selectors
from members.models import MemberNotFound

from ..engine import logic_line
from ..models import Rule, RuleAction, RuleCondition, RuleJob, RuleRevision
from ..selectors.explain import rule_explain
from ..selectors.preview import members_matching
from ..services.authoring import ACTION_FIELDS, CONDITION_FIELDS, RULE_FIELDS, rule_upsert
from ..services.jobs import rule_job_start

PREVIEW_SAMPLE = 20


class RowForm(forms.ModelForm):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["position"].required = False
        self.fields["position"].help_text = _("Empty: the next number.")

    def validate_unique(self) -> None:
        pass  # the rule is saved as a whole; the formset checks numbers are unique among rows

    def validate_constraints(self, exclude=None) -> None:
        pass


class NumberedFormSet(BaseInlineFormSet):
    def rows(self) -> list[dict]:
        return [
            form.cleaned_data
            for form in self.forms
            if form.is_valid() and form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]

    def clean(self) -> None:
        super().clean()
        # Rows left without a number take the next ones, in the order they are shown.
        rows = self.rows()
        given = [row["position"] for row in rows if row.get("position")]
        following = max(given, default=0) + 1
        for row in rows:
            if not row.get("position"):
                row["position"] = following
                following += 1


class ConditionFormSet(NumberedFormSet):
    def clean(self) -> None:
        super().clean()  # numbers the rows first
        # The logic line is on the rule form; the formset sees the raw POST of both.
        problem = logic_line.check(
            self.data.get("logic", ""), {row["position"] for row in self.rows()}
        )
        if problem:
            raise ValidationError(problem)


class ActionFormSet(NumberedFormSet):
    def clean(self) -> None:
        super().clean()
        # The rule's own form is on the same page; the formset sees the raw POST of both.
        if self.data.get("is_active") and not self.rows():
            raise ValidationError(_("An active rule needs at least one action."))


class ConditionInline(admin.TabularInline):
    model = RuleCondition
    form = RowForm
    formset = ConditionFormSet
    fields = CONDITION_FIELDS
    extra = 1


class ActionInline(admin.TabularInline):
    model = RuleAction
    form = RowForm
    formset = ActionFormSet
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    fields = ACTION_FIELDS
    extra = 1

    class Media:
        js = ["rules/rule_actions.js"]


class RevisionInline(admin.TabularInline):
    model = RuleRevision
    fields = ["version", "changed_at", "changed_by", "source", "changes"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("history: every change to this rule")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("what changed"))
    def changes(self, revision: RuleRevision) -> str:
        if revision.before is None:
            return _("created")
        return format_html_join(
            "", "<div><b>{}</b>: {} → {}</div>", ((k, b, a) for k, b, a in revision.changes())
        )


class SimulateForm(forms.Form):
    days = forms.IntegerField(
        label=_("Replay the last N days"), min_value=1, max_value=3660, initial=30
    )


class ApplyForm(forms.Form):
    send_notifications = forms.BooleanField(
        label=_("Send the rule's messages"),
        required=False,
        initial=True,
        help_text=_("Untick to apply the rule quietly: messages are recorded, not sent."),
    )


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    # The budget and the version are on the rule's page: the list fits the window.
    list_display = [
        "priority",
        "code",
        "name",
        "trigger",
        "is_active",
        "firing_limit",
        "firing_count",
    ]
    list_display_links = ["code", "name"]
    list_filter = ["is_active", "trigger", "firing_limit"]
    search_fields = ["code", "name"]
    inlines = [ConditionInline, ActionInline, RevisionInline]
    fieldsets = [
        (
            None,
            {
                "fields": ["code", "name", "description", "is_active", "version"],
                "description": _(
                    "Save a new rule inactive, then preview, test and simulate it from this "
                    "page before you switch it on."
                ),
            },
        ),
        (
            _("When"),
            {
                "fields": [
                    "trigger",
                    "trigger_days",
                    "engagement_kind",
                    "active_from",
                    "active_until",
                ]
            },
        ),
        (_("How often"), {"fields": ["priority", "firing_limit", "budget", "stop_processing"]}),
        (
            _("Condition logic"),
            {
                "fields": ["logic"],
                "description": _(
                    "The numbered conditions are listed below. Leave the logic empty when "
                    "all must hold; otherwise combine their numbers, e.g. (1 or 2) and 3."
                ),
            },
        ),
    ]

    class Media:
        css = {"all": ["rules/rule_form.css"]}

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(firing_count=Count("firings"))

    @admin.display(description=_("firings"), ordering="firing_count")
    def firing_count(self, rule: Rule) -> int:
        return rule.firing_count

    def get_readonly_fields(self, request, obj=None):
        return ["code", "version"] if obj else ["version"]

    def response_add(self, request, obj, post_url_continue=None):
        # A new rule opens on its own page, where Preview, Test and Simulate are.
        if "_addanother" in request.POST or "_popup" in request.POST:
            return super().response_add(request, obj, post_url_continue)
        self.message_user(
            request,
            _("Saved. Preview, test and simulate it from here, then switch it on."),
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:rules_rule_change", args=[obj.pk]))

    def save_model(self, request, obj, form, change) -> None:
        pass  # saved with its conditions and actions in save_related, as one change

    def construct_change_message(self, request, form, formsets, add=False):
        # The rows are replaced as a whole by rule_upsert, not saved form by form.
        return super().construct_change_message(request, form, [], add)

    def save_related(self, request, form, formsets, change) -> None:
        rows = {formset.model: formset.rows() for formset in formsets if hasattr(formset, "rows")}
        rule, _ = rule_upsert(
            changed_by=request.user,
            source="admin",
            code=form.instance.code,
            conditions=[{f: row[f] for f in CONDITION_FIELDS} for row in rows[RuleCondition]],
            actions=[{f: row[f] for f in ACTION_FIELDS} for row in rows[RuleAction]],
            **{f: form.cleaned_data[f] for f in RULE_FIELDS},
        )
        form.instance.pk = rule.pk

    # --- Tools on a rule's page -------------------------------------------------------

    def get_urls(self):
        tool = self.admin_site.admin_view
        return [
            path("<int:rule_id>/preview/", tool(self.preview_view), name="rules_rule_preview"),
            path("<int:rule_id>/test/", tool(self.test_view), name="rules_rule_test"),
            path("<int:rule_id>/simulate/", tool(self.simulate_view), name="rules_rule_simulate"),
            path("<int:rule_id>/apply/", tool(self.apply_view), name="rules_rule_apply"),
            *super().get_urls(),
        ]

    def _rule(self, request: HttpRequest, rule_id: int, *, change: bool = False) -> Rule:
        rule = get_object_or_404(
            Rule.objects.prefetch_related("conditions__event_kind", "actions"), pk=rule_id
        )
        allowed = self.has_change_permission if change else self.has_view_permission
        if not allowed(request, rule):
            raise PermissionDenied
        return rule

    def _render(
        self, request: HttpRequest, rule: Rule, template: str, title: str, **context
    ) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": rule,
            "rule": rule,
            "title": f"{title}: {rule.name}",
            **context,
        }
        return TemplateResponse(request, f"admin/rules/rule/{template}", context)

    def preview_view(self, request: HttpRequest, rule_id: int) -> HttpResponse:
        rule = self._rule(request, rule_id)
        preview = members_matching(rule)
        members = list(preview.members.order_by("-lifetime_spend", "pk")[:PREVIEW_SAMPLE])
        masked = not sees_pii(request)
        sample = [(member, mask_name(member.name) if masked else member.name) for member in members]
        return self._render(
            request,
            rule,
            "preview.html",
            _("Preview"),
            count=preview.members.count(),
            sample=sample,
            unchecked=preview.unchecked,
        )

    def test_view(self, request: HttpRequest, rule_id: int) -> HttpResponse:
        rule = self._rule(request, rule_id)
        external_id = request.GET.get("member", "").strip()
        member = None
        if external_id:
            with contextlib.suppress(MemberNotFound):
                member = member_selectors.member_get(external_id=external_id)
        explanation = rule_explain(rule, member) if member else None
        return self._render(
            request,
            rule,
            "test.html",
            _("Test on a member"),
            external_id=external_id,
            member=member,
            explanation=explanation,
        )

    def simulate_view(self, request: HttpRequest, rule_id: int) -> HttpResponse:
        return self._job_view(request, rule_id, RuleJob.Kind.SIMULATE, SimulateForm, _("Simulate"))

    def apply_view(self, request: HttpRequest, rule_id: int) -> HttpResponse:
        return self._job_view(
            request, rule_id, RuleJob.Kind.APPLY, ApplyForm, _("Apply to existing members")
        )

    def _job_view(self, request, rule_id, kind, form_class, title) -> HttpResponse:
        rule = self._rule(request, rule_id, change=kind == RuleJob.Kind.APPLY)
        form = form_class(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                job = rule_job_start(
                    rule=rule, kind=kind, created_by=request.user, **form.cleaned_data
                )
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
            else:
                return HttpResponseRedirect(reverse("admin:rules_rulejob_change", args=[job.pk]))
        return self._render(request, rule, "job_form.html", title, form=form, kind=kind)
