import json

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.forms.models import BaseInlineFormSet
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdmin, sees_pii
from core.pii import redact_person

from . import logic, services
from .models import Rule, RuleAction, RuleCondition, RuleFiring


class RowForm(forms.ModelForm):
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


class ConditionFormSet(NumberedFormSet):
    def clean(self) -> None:
        super().clean()
        # The logic line is on the rule form; the formset sees the raw POST of both.
        problem = logic.check(self.data.get("logic", ""), {row["position"] for row in self.rows()})
        if problem:
            raise ValidationError(problem)


class ConditionInline(admin.TabularInline):
    model = RuleCondition
    form = RowForm
    formset = ConditionFormSet
    fields = ["position", "fact", "op", "value", "days"]
    extra = 1


class ActionInline(admin.TabularInline):
    model = RuleAction
    form = RowForm
    formset = NumberedFormSet
    fields = [
        "position",
        "kind",
        "tier",
        "allow_downgrade",
        "coupon_template",
        "points",
        "notification_template",
    ]
    extra = 1


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    list_display = [
        "priority",
        "code",
        "name",
        "trigger",
        "is_active",
        "firing_limit",
        "version",
        "firing_count",
    ]
    list_display_links = ["code", "name"]
    list_filter = ["is_active", "trigger"]
    search_fields = ["code", "name"]
    readonly_fields = ["version"]
    inlines = [ConditionInline, ActionInline]
    fieldsets = [
        (None, {"fields": ["code", "name", "description", "trigger", "is_active", "version"]}),
        (
            _("When and how often"),
            {
                "fields": [
                    "priority",
                    "firing_limit",
                    "stop_processing",
                    "active_from",
                    "active_until",
                ]
            },
        ),
        (_("Conditions"), {"fields": ["logic"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(firing_count=Count("firings"))

    @admin.display(description=_("firings"), ordering="firing_count")
    def firing_count(self, rule: Rule) -> int:
        return rule.firing_count

    def get_readonly_fields(self, request, obj=None):
        return ["code", "version"] if obj else ["version"]

    def save_model(self, request, obj, form, change) -> None:
        pass  # saved with its conditions and actions in save_related, as one change

    def construct_change_message(self, request, form, formsets, add=False):
        # The rows are replaced as a whole by rule_upsert, not saved form by form.
        return super().construct_change_message(request, form, [], add)

    def save_related(self, request, form, formsets, change) -> None:
        rows = {formset.model: formset.rows() for formset in formsets}
        rule, _ = services.rule_upsert(
            code=form.instance.code,
            conditions=[
                {f: row[f] for f in services.CONDITION_FIELDS} for row in rows[RuleCondition]
            ],
            actions=[{f: row[f] for f in services.ACTION_FIELDS} for row in rows[RuleAction]],
            **{f: form.cleaned_data[f] for f in services.RULE_FIELDS},
        )
        form.instance.pk = rule.pk


@admin.register(RuleFiring)
class RuleFiringAdmin(ReadOnlyAdmin):
    list_display = ["fired_at", "rule", "member", "trigger", "order", "rule_version"]
    list_filter = ["rule", "trigger", "fired_at"]
    list_select_related = ["rule", "member", "order"]
    search_fields = ["=member__external_id", "=rule__code"]
    date_hierarchy = "fired_at"
    fields = [
        "fired_at",
        "rule",
        "rule_version",
        "member",
        "trigger",
        "order",
        "occurrence_key",
        "facts_seen",
        "effects",
    ]
    readonly_fields = [*fields, "masked_effects"]

    def get_fields(self, request, obj=None):
        # Message texts name the member: masked for staff who may not see personal data.
        return self.fields if sees_pii(request) else [*self.fields[:-1], "masked_effects"]

    @admin.display(description=_("facts the rule saw"))
    def facts_seen(self, firing: RuleFiring) -> str:
        return format_html("<pre>{}</pre>", json.dumps(firing.facts, indent=2, ensure_ascii=False))

    @admin.display(description=_("effects"))
    def effects(self, firing: RuleFiring, *, masked: bool = False) -> str:
        lines = [str(change) for change in firing.tier_changes.all()]
        lines += [f"{coupon.code} {coupon.name}" for coupon in firing.coupons.all()]
        lines += [str(entry) for entry in firing.points_entries.all()]
        for message in firing.notifications.all():
            text = redact_person(message.body, name=firing.member.name) if masked else message.body
            lines.append(f"{message.get_channel_display()}: {text} [{message.status}]")
        return format_html("<pre>{}</pre>", "\n".join(lines))

    @admin.display(description=_("effects"))
    def masked_effects(self, firing: RuleFiring) -> str:
        return self.effects(firing, masked=True)
