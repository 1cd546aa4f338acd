"""python manage.py reports_verify [--from D] [--to D]: recount the reports' per-bucket
figures from the raw rows and report every difference (exit status 1 if any)."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from reports.verify import reports_verify


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"“{text}” is not a date as YYYY-MM-DD.") from None


class Command(BaseCommand):
    help = "Recount the reports' roll-up from the raw rows and report any difference."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--from", dest="start", type=_day, help="First day, YYYY-MM-DD.")
        parser.add_argument("--to", dest="end", type=_day, help="Last day, YYYY-MM-DD.")

    def handle(self, start, end, **options) -> None:
        if start and end and start > end:
            raise CommandError("--to is before --from.")
        verdict = reports_verify(start=start, end=end)
        if verdict.mark is None:
            self.stdout.write("Nothing to verify: the reports have not been rolled up yet.")
            return
        for difference in verdict.differences:
            self.stdout.write(difference)
        left = (
            f"; {verdict.skipped} changed since the roll-up, left to its next run"
            if verdict.skipped
            else ""
        )
        if verdict.differences:
            raise CommandError(
                f"{len(verdict.differences)} of {verdict.compared} figures differ from the "
                f"raw rows{left}. `reports_rollup --rebuild` recounts them."
            )
        self.stdout.write(f"No differences: {verdict.compared} figures match the raw rows{left}.")
