"""The external ids a file has shown so far, to find the same id on two rows: kept in a
temporary SQLite file rather than in memory, so ten million ids take a few hundred MB of
disk, not of the process's memory."""

import sqlite3
import tempfile
from pathlib import Path


class SeenKeys:
    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="tierflow-import-")
        self._db = sqlite3.connect(Path(self._folder.name) / "seen.sqlite3")
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY, value) WITHOUT ROWID")

    def first_rows(self, keys: list[tuple[str, int]]) -> dict[str, int]:
        """Note each (key, value), the value a row number or a text (kept as given: the
        column has no type); return, for the keys seen before with another value (in this
        call or before), the value they were first seen with."""
        first_here: dict[str, int] = {}
        for key, row in keys:
            first_here.setdefault(key, row)
        known = {}
        unique = list(first_here)
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            known.update(
                self._db.execute(f"SELECT key, value FROM seen WHERE key IN ({marks})", chunk)
            )
        self._db.executemany(
            "INSERT INTO seen VALUES (?, ?)",
            [(key, row) for key, row in first_here.items() if key not in known],
        )
        found = {}
        for key, row in keys:
            first = known.get(key, first_here[key])
            if first != row:
                found.setdefault(key, first)
        return found

    def close(self) -> None:
        self._db.close()
        self._folder.cleanup()
