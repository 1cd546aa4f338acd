from pathlib import Path

from django.core.management.base import BaseCommand

from rules.programme.dump import programme_dump


class Command(BaseCommand):
    help = "Write the programme (tiers, templates, rules) as YAML that load_programme reads."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "path", type=Path, nargs="?", help="Output file; standard output if omitted."
        )

    def handle(self, *args, path: Path | None, **options) -> None:
        text = programme_dump()
        if path is None:
            self.stdout.write(text, ending="")
        else:
            path.write_text(text, encoding="utf-8")
            self.stdout.write(f"Wrote {path}.")
