import json

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdmin, job_progress, sees_pii, shortened
from core.pii import redact_person

from ..models import RuleFiring, RuleJob


@admin.register(RuleFiring)
class RuleFiringAdmin(ReadOnlyAdmin):
    # The trigger and the rule's version are on each firing's page; long rule names are
    # cut, and ids wrap (a foreign key column never wraps), so the list fits the window.
    list_display = ["fired_at", "rule_name", "member_external_id", "order_external_id"]
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

    @admin.display(description=_("rule"), ordering="rule__name")
    def rule_name(self, firing: RuleFiring) -> str:
        return shortened(firing.rule.name)

    @admin.display(description=_("member"), ordering="member__external_id")
    def member_external_id(self, firing: RuleFiring) -> str:
        return firing.member.external_id

    @admin.display(description=_("order"), ordering="order__external_id")
    def order_external_id(self, firing: RuleFiring) -> str | None:
        return firing.order.external_id if firing.order else None

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


@admin.register(RuleJob)
class RuleJobAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "rule", "status", "progress", "created_by"]
    list_filter = ["kind", "status"]
    list_select_related = ["rule", "created_by"]
    fields = [
        "kind",
        "rule_link",
        "status",
        "progress",
        "days",
        "send_notifications",
        "outcome",
        "error",
        "created_by",
        "created_at",
        "finished_at",
    ]
    readonly_fields = fields

    def get_fields(self, request, obj=None):
        unused = "send_notifications" if obj and obj.kind == RuleJob.Kind.SIMULATE else "days"
        return [name for name in self.fields if name != unused]

    @admin.display(description=_("rule"))
    def rule_link(self, job: RuleJob) -> str:
        url = reverse("admin:rules_rule_change", args=[job.rule_id])
        return format_html('<a href="{}">{}</a>', url, job.rule)

    @admin.display(description=_("progress"))
    def progress(self, job: RuleJob) -> str:
        return job_progress(job)

    @admin.display(description=_("result"))
    def outcome(self, job: RuleJob) -> str:
        if not job.result:
            return "-"
        labels = {
            "fired": _("fired for members"),
            "occurrences": _("occurrences replayed"),
            "firings": _("would have fired"),
            "members": _("members it would have fired for"),
            "coupons": _("coupons"),
            "coupon_value": _("coupon value"),
            "points": _("points"),
            "growth_points": _("growth points"),
            "tier_changes": _("tier changes"),
            "messages": _("messages"),
            "webhooks": _("webhook calls"),
            "over_budget": _("not fired: over budget"),
        }
        rows = [(labels[key], job.result[key]) for key in labels if key in job.result]
        table = format_html(
            "<table>{}</table>", format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows)
        )
        if job.kind != RuleJob.Kind.SIMULATE:
            return table
        note = _(
            "A simulation replays the past as it happened: a member counts when an order, an "
            "engagement or a day of theirs met the conditions at the time. Preview counts "
            "who meets them today, so the two numbers can differ."
        )
        return format_html('{}<p class="help">{}</p>', table, note)
