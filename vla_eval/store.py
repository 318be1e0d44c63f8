"""Durable per-run episode store: SQLite in WAL mode, one transaction per episode.

Verified on these machines: WAL + ``synchronous=FULL`` survives ``kill -9`` with every
acknowledged row intact, and readers may query while a run writes. An episode counts
as finished only once :meth:`RunStore.add` has returned.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Iterator

from vla_eval.record import EpisodeRecord

DB_NAME = "episodes.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS episodes (
    task TEXT NOT NULL,
    split TEXT NOT NULL,
    episode_index INTEGER NOT NULL,
    success INTEGER NOT NULL,
    steps INTEGER NOT NULL,
    termination TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (task, split, episode_index)
);
CREATE TABLE IF NOT EXISTS run_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


class RunStore:
    def __init__(self, run_dir: Path, readonly: bool = False):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / DB_NAME
        if readonly:
            if not self.path.exists():
                raise FileNotFoundError(f"{self.path}: no episode store here (is {self.run_dir} a run folder?)")
            self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
            if not self._conn.execute("SELECT 1 FROM sqlite_master WHERE name='episodes'").fetchone():
                # a run that is still creating its store: read it as empty rather than fail
                self._conn.close()
                self._conn = sqlite3.connect(":memory:")
                self._conn.executescript(_SCHEMA)
        else:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)

    def add(self, record: EpisodeRecord) -> None:
        """Commit one episode durably (replacing an earlier attempt of the same key)."""
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute(
                "INSERT OR REPLACE INTO episodes VALUES (?,?,?,?,?,?,?,?)",
                (
                    record.task,
                    record.split,
                    record.episode_index,
                    int(record.success),
                    record.steps,
                    record.termination,
                    record.schema_version,
                    record.model_dump_json(),
                ),
            )

    def set_meta(self, key: str, value: Any) -> None:
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("INSERT OR REPLACE INTO run_meta VALUES (?,?)", (key, json.dumps(value, sort_keys=True)))

    def get_meta(self, key: str) -> Any:
        row = self._conn.execute("SELECT value FROM run_meta WHERE key=?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def done_keys(self) -> set[tuple[str, str, int]]:
        return {tuple(r) for r in self._conn.execute("SELECT task, split, episode_index FROM episodes")}

    def records(self) -> Iterator[EpisodeRecord]:
        for (raw,) in self._conn.execute("SELECT record FROM episodes ORDER BY task, split, episode_index"):
            yield EpisodeRecord.model_validate_json(raw)

    def records_in_completion_order(self) -> Iterator[EpisodeRecord]:
        """Records in the order they became final (rowid; a retried episode is re-inserted)."""
        for (raw,) in self._conn.execute("SELECT record FROM episodes ORDER BY rowid"):
            yield EpisodeRecord.model_validate_json(raw)

    def count(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM episodes").fetchone()[0]

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
