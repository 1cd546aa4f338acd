"""python manage.py reports_rollup [--rebuild] [--lag SECONDS]: bring the reports'
per-bucket figures up to date now (Celery beat runs it every five minutes)."""

import time
from datetime import timedelta

from django.core.management.base import BaseCommand

from reports.rollup import reports_rollup


class Command(BaseCommand):
    help = "Bring the reports' per-bucket figures up to what has been recorded."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--rebuild", action="store_true", help="Recount every figure from the raw rows."
        )
        parser.add_argument(
            "--lag",
            type=int,
            help="Cover rows recorded until this many seconds ago "
            "(default TIERFLOW_REPORTS_ROLLUP_LAG_SECONDS); 0 when nothing is being written.",
        )

    def handle(self, rebuild, lag, **options) -> None:
        began = time.monotonic()

        def say(message: str) -> None:
            self.stderr.write(f"[{time.monotonic() - began:6.1f} s] {message}")

        mark = reports_rollup(
            rebuild=rebuild, lag=None if lag is None else timedelta(seconds=lag), say=say
        )
        self.stdout.write(
            f"Reports rolled up: rows recorded before {mark.recorded_before.isoformat()} "
            f"are in the figures ({time.monotonic() - began:.1f} s)."
        )
