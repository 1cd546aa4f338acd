"""Running an import: the whole file checked first (the dry run: every problem by row and
column, what would be created, updated or left unchanged, possible duplicates), and only
if it is clean (or with skip_invalid) read again and written, a batch of rows per
transaction. Each batch is written so that writing it again changes nothing, so a run
that was killed half way is finished by running it again."""

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from django.utils.translation import gettext as _

from .columns import Columns, Row
from .files import open_table

BATCH = 2_000
MAX_LISTED = 1_000  # problems and duplicates listed in a report; all are counted

Progress = Callable[[str, int, int], None]  # (phase, bytes read, file size)

CREATE, UPDATE, UNCHANGED = "create", "update", "unchanged"


class Importer(Protocol):
    kind: str
    columns: Columns

    def start(self) -> None:
        """Forget what earlier passes saw (each pass reads the file from the top)."""

    def check(self, rows: list[Row]) -> tuple[dict[int, str], Any]:
        """Each valid row's outcome by row number (CREATE, UPDATE, UNCHANGED), problems
        added to the rows, and what write() needs for the valid ones."""

    def duplicates(self) -> list[str]:
        """Possible duplicates seen so far, one line each."""

    def write(self, plan: Any) -> None: ...

    def finish(self) -> list[str]:
        """Work after every batch is written; the summary's lines."""


@dataclass
class ImportReport:
    kind: str
    path: str
    dry_run: bool
    written: bool = False
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    problems: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    rejected_file: str = ""

    def count(self, outcome: str) -> None:
        name = {CREATE: "created", UPDATE: "updated", UNCHANGED: "unchanged"}[outcome]
        setattr(self, name, getattr(self, name) + 1)

    def lines(self) -> list[str]:
        verb = _("would be") if not self.written else _("were")
        lines = [
            _(
                "%(rows)d rows read: %(created)d %(verb)s created, %(updated)d updated, "
                "%(unchanged)d unchanged; %(rejected)d rejected."
            )
            % {**self.__dict__, "verb": verb},
        ]
        lines += self.problems
        if self.rejected > len(self.problems):
            lines.append(
                _("… and %(more)d more rows with problems.")
                % {"more": self.rejected - len(self.problems)}
            )
        if self.duplicates:
            lines.append(_("Possible duplicates:"))
            lines += [f"  {line}" for line in self.duplicates]
        if self.rejected_file:
            lines.append(
                _("Rejected rows, with their reasons: %(file)s") % {"file": self.rejected_file}
            )
        lines += self.summary
        return lines


def import_run(
    importer: Importer,
    path: str | Path,
    *,
    dry_run: bool = False,
    skip_invalid: bool = False,
    ignore_columns: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Check the file, then (not a dry run; no invalid row, or skip_invalid) write it."""
    checked = ImportReport(importer.kind, str(path), dry_run)
    _pass(importer, path, checked, ignore_columns, progress, write=False)
    if dry_run or (checked.rejected and not skip_invalid):
        return checked
    written = ImportReport(importer.kind, str(path), dry_run, written=True)
    rejected_path = Path(path).with_name(Path(path).stem + ".rejected.csv")
    with _RejectedFile(rejected_path if checked.rejected else None) as rejected:
        _pass(importer, path, written, ignore_columns, progress, write=True, rejected=rejected)
    if checked.rejected:
        written.rejected_file = str(rejected_path)
    written.summary = importer.finish()
    return written


def _pass(importer, path, report, ignore_columns, progress, *, write, rejected=None) -> None:
    table = open_table(path)
    positions = importer.columns.positions(table.header, ignore_unknown=ignore_columns)
    importer.start()
    phase = _("writing") if write else _("checking")
    if rejected is not None:
        rejected.header(table.header)
    for rows in _batches(table.rows, importer.columns, positions):
        outcomes, plan = importer.check(rows)
        for row in rows:
            report.rows += 1
            if row.errors:
                report.rejected += 1
                if len(report.problems) < MAX_LISTED:
                    report.problems += [
                        _("row %(row)d, %(column)s: %(message)s")
                        % {"row": row.number, "column": column, "message": message}
                        for column, message in row.errors
                    ]
                if rejected is not None:
                    rejected.add(row)
            else:
                report.count(outcomes[row.number])
        if write:
            importer.write(plan)
        if progress:
            progress(phase, table.position(), table.size)
    report.duplicates = importer.duplicates()[:MAX_LISTED]


def _batches(rows: Iterator, columns: Columns, positions: dict[str, int]) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for number, cells in rows:
        batch.append(columns.read(number, cells, positions))
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


class _RejectedFile:
    """The rows a run with skip_invalid left out, as they were, with their reasons: a CSV
    beside the input (UTF-8 with a BOM, for Excel)."""

    def __init__(self, path: Path | None) -> None:
        self.path, self.handle, self.writer = path, None, None

    def __enter__(self) -> "_RejectedFile":
        if self.path is not None:
            self.handle = self.path.open("w", encoding="utf-8-sig", newline="")
            self.writer = csv.writer(self.handle)
        return self

    def header(self, names: list[str]) -> None:
        if self.writer:
            self.writer.writerow([*names, "errors"])

    def add(self, row: Row) -> None:
        if self.writer:
            reasons = "; ".join(f"{column}: {message}" for column, message in row.errors)
            self.writer.writerow([*("" if cell is None else cell for cell in row.cells), reasons])

    def __exit__(self, *exc_info) -> None:
        if self.handle:
            self.handle.close()
