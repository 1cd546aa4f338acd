from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from rules.programme.load import ProgrammeInvalid, programme_load


class Command(BaseCommand):
    help = (
        "Load tiers, coupon templates, notification templates and rules from a YAML file. "
        "Idempotent; items are matched by code. An invalid file loads nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path)

    def handle(self, *args, path: Path, **options) -> None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path} is not UTF-8 text; save it as UTF-8.") from exc
        try:
            report = programme_load(text)
        except ProgrammeInvalid as exc:
            for error in exc.errors:
                self.stderr.write(f"{path}:{error}")
            raise CommandError(f"{len(exc.errors)} error(s); nothing was loaded.") from exc
        self.stdout.write(str(report))
        if not report.changed:
            self.stdout.write("Nothing changed.")
