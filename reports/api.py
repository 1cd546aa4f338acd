"""The reports API, for BI tools and the ERP:

GET /api/v1/reports/                       the reports and their columns
GET /api/v1/reports/{name}/?from=&to=&interval=day|week|month[&format=csv|xlsx]
"""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .exports import file_response
from .periods import period_parse
from .registry import REPORTS, report_get
from .tables import json_rows, report_filename, report_table

FORMATS = ("json", "csv", "xlsx")


class ReportListView(APIView):
    @extend_schema(
        operation_id="reports_list",
        responses=inline_serializer(
            "ReportList",
            {"results": serializers.ListField(child=serializers.DictField())},
        ),
    )
    def get(self, request: Request) -> Response:
        """Every report: its name, title, definition and columns (name and kind)."""
        return Response(
            {
                "results": [
                    {
                        "name": report.name,
                        "title": str(report.title),
                        "definition": str(report.definition),
                        "columns": [
                            {"name": column.name, "kind": column.kind}
                            for column in report.columns()
                        ],
                    }
                    for report in REPORTS.values()
                ]
            }
        )


class ReportView(APIView):
    def perform_content_negotiation(self, request: Request, force: bool = False):
        # `format=csv|xlsx` names the file this view writes itself, not a DRF renderer.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        operation_id="reports_retrieve",
        parameters=[
            OpenApiParameter("from", str, required=True, description="First day, YYYY-MM-DD."),
            OpenApiParameter("to", str, required=True, description="Last day, YYYY-MM-DD."),
            OpenApiParameter("interval", str, enum=["day", "week", "month"]),
            OpenApiParameter("format", str, enum=list(FORMATS)),
        ],
        responses=inline_serializer(
            "Report",
            {
                "report": serializers.CharField(),
                "interval": serializers.CharField(),
                "from": serializers.DateField(),
                "to": serializers.DateField(),
                "columns": serializers.ListField(child=serializers.CharField()),
                "rows": serializers.ListField(child=serializers.ListField()),
            },
        ),
    )
    def get(self, request: Request, name: str):
        """A report for a period in buckets (README, Reports)."""
        report = report_get(name)
        params = request.query_params
        file_format = params.get("format") or "json"
        if file_format not in FORMATS:
            raise ValidationError(
                {"format": gettext("Choose one of: %(choices)s.") % {"choices": ", ".join(FORMATS)}}
            )
        period = period_parse(params)
        columns, rows = report_table(report, period)
        if file_format != "json":
            return file_response(
                filename=report_filename(report, period),
                sheet=report.name,
                columns=columns,
                rows=rows,
                file_format=file_format,
            )
        return Response(
            {
                "report": report.name,
                "interval": period.interval,
                "from": period.start.isoformat(),
                "to": period.end.isoformat(),
                "columns": [column.name for column in columns],
                "rows": json_rows(columns, rows),
            }
        )
