"""What import_members and import_orders share: their options, a progress bar on stderr
and the report at the end (exit status 1 when any row has a problem)."""

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from .files import FileError
from .runner import ImportRefused, import_run

BAR = 30


class ImportCommand(BaseCommand):
    importer = None  # the importer class

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="a CSV (UTF-8, UTF-8 with BOM or GB18030) or XLSX file")
        parser.add_argument(
            "--dry-run", action="store_true", help="check every row and write nothing"
        )
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="import the valid rows; write the others, with their reasons, to a CSV "
            "beside the file",
        )
        parser.add_argument(
            "--ignore-columns", action="store_true", help="ignore columns this does not know"
        )
        parser.add_argument(
            "--tiers",
            choices=["file", "from-rules"],
            default="file",
            help="from-rules: after the import, place members whose tier the file does not "
            "give where the upgrade rules would (default: file)",
        )

    def importer_options(self, options: dict) -> dict:
        return {"tiers_from_rules": options["tiers"] == "from-rules"}

    def handle(self, *args, **options) -> None:
        importer = self.importer(**self.importer_options(options))
        self._last, self._phase = 0.0, ""
        try:
            report = import_run(
                importer,
                options["file"],
                dry_run=options["dry_run"],
                skip_invalid=options["skip_invalid"],
                ignore_columns=options["ignore_columns"],
                progress=self._progress,
            )
        except (FileError, ImportRefused) as exc:
            raise CommandError(str(exc)) from exc
        finally:
            if self._last:
                self.stderr.write("")
        for line in report.lines():
            self.stdout.write(line)
        if report.rejected:
            if report.written:
                outcome = "they were left out"
            elif options["dry_run"]:
                outcome = "nothing would be written"
            else:
                outcome = "nothing was written"
            raise CommandError(f"{report.rejected} rows have problems: {outcome}.")

    def _progress(self, phase: str, done: int, size: int) -> None:
        now = time.monotonic()
        if phase == self._phase and now - self._last < 0.5 and done < size:
            return
        if self._phase and phase != self._phase:
            self.stderr.write("")
        self._last, self._phase = now, phase
        share = min(1.0, done / size) if size else 1.0
        bar = "#" * int(BAR * share)
        self.stderr.write(f"\r{phase:<9} [{bar:<{BAR}}] {share:6.1%}", ending="")
        self.stderr.flush()
