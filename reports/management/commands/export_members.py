"""python manage.py export_members [--format csv|xlsx] [--output FILE] [--show-personal-data]:
every member with tier, totals, balances and tags; personal data masked unless asked."""

import sys
import time

from django.core.management.base import BaseCommand, CommandError

from members.selectors import member_count
from reports.exports import csv_lines, table_write
from reports.members_export import COLUMNS, member_rows


class Command(BaseCommand):
    help = "Write every member to a CSV or XLSX file (CSV to standard output without --output)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--format", default="csv", choices=["csv", "xlsx"])
        parser.add_argument("--output", help="The file to write.")
        parser.add_argument(
            "--show-personal-data",
            action="store_true",
            help="Names, phones and e-mails in clear (default: masked).",
        )

    def handle(self, format, output, show_personal_data, **options) -> None:
        if format == "xlsx" and not output:
            raise CommandError("--format xlsx needs --output FILE.")
        total = member_count()
        began = time.monotonic()

        def progress(done: int) -> None:
            self.stderr.write(f"\r{done:,} / {total:,} members", ending="")

        rows = member_rows(show_pii=show_personal_data, progress=progress)
        if output:
            with open(output, "wb") as out:
                table_write(out, file_format=format, sheet="members", columns=COLUMNS, rows=rows)
        else:
            sys.stdout.writelines(csv_lines(COLUMNS, rows))
        self.stderr.write(
            f"\n{total:,} members written to {output or 'standard output'} "
            f"in {time.monotonic() - began:.1f} s."
        )
