from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from rules.services.daily import POINTS_EXPIRY, TIER_LAPSE, clock_triggers_run

DONE = {POINTS_EXPIRY: "members' lapsed points written off", TIER_LAPSE: "tier renewals or moves"}


class Command(BaseCommand):
    help = (
        "Run the daily job for a day (default today, in TIME_ZONE) in this process: points "
        "and tiers that lapsed (write-offs, renewals, moves down), then birthdays, "
        "anniversaries, lapse reminders, inactivity. Use it to catch up a day the scheduler "
        "missed; running a day twice changes nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--date", dest="day", help="YYYY-MM-DD; default today")

    def handle(self, *args, day: str | None = None, **options) -> None:
        try:
            day = date.fromisoformat(day) if day else timezone.localdate()
        except ValueError as exc:
            raise CommandError(f"--date: {exc}") from exc
        if day > timezone.localdate():
            raise CommandError("--date cannot be in the future.")
        self.stdout.write(f"Daily job for {day}:")
        fired = clock_triggers_run(
            day,
            progress=lambda trigger, count: self.stdout.write(
                f"  {trigger}: {count} members checked"
            ),
        )
        for work, count in fired.items():
            what = DONE.get(work, "rule firings")
            self.stdout.write(f"  {work}: {count} {what}")
        self.stdout.write(self.style.SUCCESS("Done."))
