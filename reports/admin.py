"""The reports dashboard in the admin ("Reports"): headline figures, a chart and a table
per report, its definition, and CSV/XLSX downloads; for users with `view_reports`."""

from datetime import date, timedelta

from django import forms
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from core.admin import sees_pii
from members.models import Member

from .charts import chart_data
from .exports import file_response
from .links import count_links
from .members_export import COLUMNS as MEMBER_COLUMNS
from .members_export import member_rows
from .models import Dashboard
from .periods import Interval, Period, period_parse
from .registry import REPORTS, ReportNotFound, report_get
from .tables import headline, json_rows, report_filename, report_table

PERMISSION = "reports.view_reports"


class PeriodForm(forms.Form):
    start = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_("To"), widget=forms.DateInput(attrs={"type": "date"}))
    interval = forms.ChoiceField(label=_("Interval"), choices=Interval.choices)


def _default_period(today: date) -> Period:
    """The last twelve months, by month."""
    first = today.replace(day=1)
    for _month in range(11):
        first = (first - timedelta(days=1)).replace(day=1)
    return Period(first, today, Interval.MONTH)


@admin.register(Dashboard)
class DashboardAdmin(admin.ModelAdmin):
    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(PERMISSION)

    def has_module_permission(self, request) -> bool:
        return request.user.has_perm(PERMISSION)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("", view(self.dashboard_view), name="reports_dashboard_changelist"),
            path("<str:name>/download/", view(self.download_view), name="reports_download"),
            path("members/export/", view(self.members_export_view), name="reports_members_export"),
        ]

    def _period(self, request: HttpRequest) -> tuple[Period, PeriodForm]:
        default = _default_period(timezone.localdate())
        params = {
            "from": request.GET.get("start") or default.start.isoformat(),
            "to": request.GET.get("end") or default.end.isoformat(),
            "interval": request.GET.get("interval") or default.interval,
        }
        form = PeriodForm(
            {"start": params["from"], "end": params["to"], "interval": params["interval"]}
        )
        try:
            return period_parse(params), form
        except ValidationError as exc:
            names = {"from": "start", "to": "end", "interval": "interval"}
            form.is_valid()
            for field, messages in exc.message_dict.items():
                form.add_error(names.get(field), messages)
            return default, form

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        period, form = self._period(request)
        query = urlencode({"start": period.start, "end": period.end, "interval": period.interval})
        sections = []
        tables = {}
        for report in REPORTS.values():
            columns, rows = tables[report.name] = report_table(report, period)
            names = [column.name for column in columns]
            download = reverse("admin:reports_download", args=[report.name])
            values = json_rows(columns, rows)
            sections.append(
                {
                    "report": report,
                    "columns": names,
                    "rows": count_links(report.name, names, values, period),
                    "chart": chart_data(report.name, (names, values)),
                    "chart_id": f"chart-{report.name}",
                    "matrix": _matrix(names, values) if report.name == "tier-movements" else None,
                    "csv": f"{download}?{query}&format=csv",
                    "xlsx": f"{download}?{query}&format=xlsx",
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Reports"),
            "form": form,
            "period": period,
            "headline": headline(tables),
            "sections": sections,
        }
        return TemplateResponse(request, "admin/reports/dashboard.html", context)

    def download_view(self, request: HttpRequest, name: str):
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            report = report_get(name)
        except ReportNotFound as exc:
            raise Http404(str(exc)) from exc
        period, form = self._period(request)
        if form.errors:
            return HttpResponse(form.errors.as_text(), status=400, content_type="text/plain")
        columns, rows = report_table(report, period)
        return file_response(
            filename=report_filename(report, period),
            sheet=report.name,
            columns=columns,
            rows=rows,
            file_format=request.GET.get("format", "csv"),
        )

    def members_export_view(self, request: HttpRequest):
        """The members the member list's filters select (its query string), as a file;
        personal data masked unless the user may see it."""
        members_admin = self.admin_site._registry[Member]
        if not members_admin.has_view_permission(request):
            raise PermissionDenied
        file_format = request.GET.get("format", "csv")
        # The member list's own filters, search and ordering, without this view's option.
        filters = request.GET.copy()
        filters.pop("format", None)
        request.GET = filters
        try:
            queryset = members_admin.get_changelist_instance(request).get_queryset(request)
        except IncorrectLookupParameters as exc:
            return HttpResponseBadRequest(f"The member list's filters are not valid: {exc}")
        rows = member_rows(queryset, show_pii=sees_pii(request))
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        return file_response(
            filename=f"members_{stamp}",
            sheet="members",
            columns=MEMBER_COLUMNS,
            rows=rows,
            file_format=file_format,
        )


def _matrix(columns: list[str], rows: list[list]) -> dict:
    """The period's tier movements as a from → to table of members."""
    index = {name: i for i, name in enumerate(columns)}
    cells: dict[tuple[str, str], int] = {}
    tiers: list[str] = []
    for row in rows:
        source, target = row[index["from_tier"]], row[index["to_tier"]]
        for tier in (source, target):
            if tier not in tiers:
                tiers.append(tier)
        cells[source, target] = cells.get((source, target), 0) + row[index["members"]]
    return {
        "tiers": tiers,
        "rows": [
            [source, [cells.get((source, target), "") for target in tiers]] for source in tiers
        ],
    }
