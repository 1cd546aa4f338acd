"""The reports dashboard in the admin ("Reports"): headline figures, a chart and a table
per report, its definition, and CSV/XLSX downloads; for users with `view_reports`."""

from datetime import date, timedelta

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdmin, job_progress, sees_pii
from members.models import Member

from .charts import chart_data
from .export_jobs import export_path, members_export_start
from .exports import file_response
from .links import count_links
from .models import Dashboard, MembersExport
from .periods import Interval, Period, period_parse
from .registry import REPORTS, ReportNotFound, report_get
from .rollup import rollup_mark
from .tables import HEADLINE_REPORTS, headline, json_rows, report_filename, report_table

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
            path("<str:name>/section/", view(self.section_view), name="reports_section"),
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
        """The first screen: the headline figures and a place for each report, whose chart
        and table the page then loads section by section (section_view), so the screen
        does not wait for eleven reports one after the other."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        period, form = self._period(request)
        query = urlencode({"start": period.start, "end": period.end, "interval": period.interval})
        sections = []
        for report in REPORTS.values():
            download = reverse("admin:reports_download", args=[report.name])
            section = reverse("admin:reports_section", args=[report.name])
            sections.append(
                {
                    "report": report,
                    "url": f"{section}?{query}",
                    "csv": f"{download}?{query}&format=csv",
                    "xlsx": f"{download}?{query}&format=xlsx",
                }
            )
        tables = {name: report_table(report_get(name), period) for name in HEADLINE_REPORTS}
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Reports"),
            "form": form,
            "period": period,
            "headline": headline(tables),
            "sections": sections,
            "rolled_up": rollup_mark(),
        }
        return TemplateResponse(request, "admin/reports/dashboard.html", context)

    def section_view(self, request: HttpRequest, name: str) -> HttpResponse:
        """One report's chart, from → to matrix and table for the dashboard's period: the
        part of the page the dashboard loads for it."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            report = report_get(name)
        except ReportNotFound:
            raise Http404(name) from None
        period, _form = self._period(request)
        columns, rows = report_table(report, period)
        names = [column.name for column in columns]
        values = json_rows(columns, rows)
        section = {
            "report": report,
            "columns": names,
            "rows": count_links(report.name, names, values, period),
            "chart": chart_data(report.name, (names, values)),
            "chart_id": f"chart-{report.name}",
            "matrix": _matrix(names, values) if report.name == "tier-movements" else None,
        }
        return TemplateResponse(request, "admin/reports/section.html", {"section": section})

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
        """The members the member list's filters select (its query string), written to a
        file by a background job; the job's page shows its progress, then the download.
        Personal data masked unless the user may see it."""
        members_admin = self.admin_site._registry[Member]
        if not members_admin.has_view_permission(request):
            raise PermissionDenied
        file_format = request.GET.get("format", MembersExport.Format.CSV)
        if file_format not in MembersExport.Format.values:
            return HttpResponseBadRequest("format: choose csv or xlsx.")
        # The member list's own filters, search and ordering, without this view's option.
        filters = request.GET.copy()
        filters.pop("format", None)
        request.GET = filters
        try:
            members_admin.get_changelist_instance(request).get_queryset(request)
        except IncorrectLookupParameters as exc:
            return HttpResponseBadRequest(f"The member list's filters are not valid: {exc}")
        job = members_export_start(
            user=request.user,
            filters=filters.urlencode(),
            file_format=file_format,
            show_pii=sees_pii(request),
        )
        return HttpResponseRedirect(reverse("admin:reports_membersexport_change", args=[job.pk]))


@admin.register(MembersExport)
class MembersExportAdmin(ReadOnlyAdmin):
    """Members exports: each user sees their own (the files hold personal data)."""

    list_display = ["__str__", "created_at", "file_format", "status", "progress", "download"]
    list_filter = ["status", "file_format"]
    fields = ["status", "progress", "download", "file_format", "show_pii", "filters", "error"]
    fields += ["created_at", "finished_at"]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).filter(requested_by=request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return self.admin_site._registry[Member].has_view_permission(request)

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def get_urls(self):
        download = self.admin_site.admin_view(self.download_view)
        return [
            path("<int:pk>/download/", download, name="reports_membersexport_download"),
            *super().get_urls(),
        ]

    @admin.display(description=_("progress"))
    def progress(self, job: MembersExport) -> str:
        return job_progress(job)

    @admin.display(description=_("file"))
    def download(self, job: MembersExport) -> str:
        if job.status != MembersExport.Status.DONE:
            return "-"
        if not job.filename:
            return _("deleted after %(hours)d hours") % {
                "hours": settings.TIERFLOW_EXPORT_KEEP_HOURS
            }
        url = reverse("admin:reports_membersexport_download", args=[job.pk])
        return format_html('<a href="{}">{}</a>', url, job.filename)

    def download_view(self, request: HttpRequest, pk: int):
        job = self.get_queryset(request).filter(pk=pk).first()
        if job is None or not self.has_view_permission(request, job):
            raise Http404
        if job.show_pii and not sees_pii(request):
            raise PermissionDenied  # no longer allowed to see what the file shows
        path_ = export_path(job)
        if path_ is None or not path_.exists():
            raise Http404
        return FileResponse(path_.open("rb"), as_attachment=True, filename=job.filename)


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
