"""python manage.py export_report NAME --from D --to D [--interval I] [--format csv|xlsx]
[--output FILE]: a report's table as a file, the same rows the API gives."""

import sys
import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from reports.exports import csv_lines, table_write
from reports.periods import Interval, period_parse
from reports.registry import REPORTS, ReportNotFound, report_get
from reports.tables import report_table


class Command(BaseCommand):
    help = "Write a report for a period to a CSV or XLSX file (or CSV to standard output)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help=f"One of: {', '.join(REPORTS)}.")
        parser.add_argument("--from", dest="start", required=True, help="First day, YYYY-MM-DD.")
        parser.add_argument("--to", dest="end", required=True, help="Last day, YYYY-MM-DD.")
        parser.add_argument("--interval", default=Interval.DAY, choices=Interval.values)
        parser.add_argument("--format", default="csv", choices=["csv", "xlsx"])
        parser.add_argument("--output", help="The file to write; CSV goes to stdout without.")

    def handle(self, name, start, end, interval, format, output, **options) -> None:
        try:
            report = report_get(name)
            period = period_parse({"from": start, "to": end, "interval": interval})
        except ReportNotFound as exc:
            raise CommandError(f"{exc} Choose one of: {', '.join(REPORTS)}.") from exc
        except ValidationError as exc:
            problems = "; ".join(f"--{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            raise CommandError(problems) from exc
        if format == "xlsx" and not output:
            raise CommandError("--format xlsx needs --output FILE.")
        began = time.monotonic()
        self.stderr.write(f"{report.name}: {len(period.buckets())} {interval} bucket(s)…")
        columns, rows = report_table(report, period)
        if output:
            with open(output, "wb") as out:
                table_write(out, file_format=format, sheet=report.name, columns=columns, rows=rows)
        else:
            sys.stdout.writelines(csv_lines(columns, rows))
        where = output or "standard output"
        self.stderr.write(
            f"{len(rows)} row(s) written to {where} in {time.monotonic() - began:.1f} s."
        )
