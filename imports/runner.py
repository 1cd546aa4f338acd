"""Running an import: the file read once, a batch of rows at a time, each row checked
(every problem by row and column, what is created, updated or left unchanged, possible
duplicates) and the valid ones written. A dry run writes nothing; a real run is one
transaction, rolled back if any row has a problem, so a run killed half way has written
nothing and is done whole by running it again; with skip_invalid each batch commits on
its own, and is written so that writing it again changes nothing, so such a run killed
half way is finished by running it again."""

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from django.db import transaction
from django.utils.translation import gettext as _

from .columns import Columns, Row
from .files import open_table
from .seen import SeenKeys

BATCH = 2_000
MAX_LISTED = 1_000  # problems and duplicates listed in a report; all are counted

Progress = Callable[[str, int, int], None]  # (phase, bytes read, file size)
Beat = Callable[[int, int], None]  # (done, total) of the work after the rows

CREATE, UPDATE, UNCHANGED = "create", "update", "unchanged"


class ImportRefused(Exception):
    """The import cannot run as asked (a first load into a database with orders)."""


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

    def begin(self, *, one_transaction: bool) -> None:
        """Before a run that writes: all of it in one transaction, or a batch each."""

    def write(self, plan: Any) -> None: ...

    def finish(self, beat: Beat) -> list[str]:
        """Work after every batch is written, calling beat(done, total) as it goes (a
        running job's sign of life); the summary's lines."""


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
    """Check the file (dry_run) or import it: all or nothing, in one transaction rolled
    back if any row has a problem; or (skip_invalid) the valid rows, a batch per
    transaction, the others written to NAME.rejected.csv beside the file."""
    report = ImportReport(importer.kind, str(path), dry_run)
    if dry_run:
        _pass(importer, path, report, ignore_columns, progress, write=False)
        return report
    if skip_invalid:
        rejected_path = Path(path).with_name(Path(path).stem + ".rejected.csv")
        importer.begin(one_transaction=False)
        with _RejectedFile(rejected_path) as rejected:
            _pass(importer, path, report, ignore_columns, progress, write=True, rejected=rejected)
        report.rejected_file = str(rejected_path) if report.rejected else ""
        report.written = True
        report.summary = importer.finish(_beat(progress))
        return report
    with transaction.atomic():
        importer.begin(one_transaction=True)
        _pass(importer, path, report, ignore_columns, progress, write=True)
        if report.rejected:
            transaction.set_rollback(True)
            return report
        report.summary = importer.finish(_beat(progress))
        report.written = True
    return report


def _beat(progress: Progress | None) -> Beat:
    phase = _("finishing")
    return (lambda done, total: progress(phase, done, total)) if progress else _quiet


def _quiet(done: int, total: int) -> None:
    pass


def _pass(importer, path, report, ignore_columns, progress, *, write, rejected=None) -> None:
    """Read the file once, checking each batch and, if `write`, writing its valid rows:
    all of them with `rejected` (the file for the others); else until a row has a
    problem (the transaction is rolled back; the rest is still checked, for the report)."""
    table = open_table(path)
    positions = importer.columns.positions(table.header, ignore_unknown=ignore_columns)
    importer.start()
    seen = SeenKeys()  # each external id, and the row it was first on
    phase = _("importing") if write else _("checking")
    for rows in _batches(table.rows, importer.columns, positions):
        _repeated_ids(rows, seen)
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
                    rejected.add(table.header, row)
            else:
                report.count(outcomes[row.number])
        if write and (rejected is not None or not report.rejected):
            with transaction.atomic():
                importer.write(plan)
        if progress:
            progress(phase, table.position(), table.size)
    report.duplicates = importer.duplicates()[:MAX_LISTED]


def _repeated_ids(rows: list[Row], seen: SeenKeys) -> None:
    """The same external id on a later row is a problem of that row."""
    keys = [(row.values["external_id"], row.number) for row in rows if "external_id" in row.values]
    firsts = seen.first_rows(keys)
    for row in rows:
        first = firsts.get(row.values.get("external_id"), row.number)
        if first != row.number:
            row.error("external_id", _("also on row %(row)d") % {"row": first})


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
    beside the input (UTF-8 with a BOM, for Excel), written once there is one."""

    def __init__(self, path: Path) -> None:
        self.path, self.handle, self.writer = path, None, None

    def __enter__(self) -> "_RejectedFile":
        return self

    def add(self, header: list[str], row: Row) -> None:
        if self.writer is None:
            self.handle = self.path.open("w", encoding="utf-8-sig", newline="")
            self.writer = csv.writer(self.handle)
            self.writer.writerow([*header, "errors"])
        reasons = "; ".join(f"{column}: {message}" for column, message in row.errors)
        self.writer.writerow([*("" if cell is None else cell for cell in row.cells), reasons])

    def __exit__(self, *exc_info) -> None:
        if self.handle:
            self.handle.close()
