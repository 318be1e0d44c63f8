"""Durable per-run episode store: SQLite in WAL mode, one transaction per episode.

Verified on these machines: WAL + ``synchronous=FULL`` survives ``kill -9`` with every
acknowledged row intact, and readers may query while a run writes. An episode counts
as finished only once :meth:`RunStore.add` has returned.
"""

from __future__ import annotations

import errno
import functools
import json
import sqlite3
from pathlib import Path
from typing import Any, Iterator

import pydantic

from vla_eval.errors import ConfigError
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


class StoreError(ConfigError):
    """The episode store cannot be read or written: a damaged file, a bad row, a full disk.

    Raised instead of a raw :mod:`sqlite3` error so that every command (``table``, ``check``,
    ``run --resume``, ...) says the same thing about the same file, with exit 2."""


def _disk_full(exc: BaseException) -> bool:
    return getattr(exc, "errno", None) == errno.ENOSPC or "disk is full" in str(exc) or "disk I/O error" in str(exc)


def store_error(path: Path, exc: BaseException) -> StoreError:
    """One line naming the store and what is wrong with it; finished episodes stay where they are."""
    if _disk_full(exc):
        return StoreError(
            f"{path}: the disk is full ({exc}); every episode committed before this point is kept; "
            "free some space and continue with --run-dir RUN_DIR --resume"
        )
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return StoreError(f"{path}: the episode store is locked by another process ({exc})")
    return StoreError(
        f"{path}: not a readable episode store ({exc}); the file is damaged (truncated, overwritten or "
        "not SQLite); restore it from a copy, or start a new run folder"
    )


def parse_record(raw: Any, path: Path, rowid: int, key: tuple[Any, ...] = ()) -> EpisodeRecord:
    """Validate one stored row; a bad one is named by its rowid and key, with the first field at fault."""
    try:
        return EpisodeRecord.model_validate_json(raw)
    except (pydantic.ValidationError, ValueError, TypeError) as exc:
        where = f"row {rowid}" + (f" ({'/'.join(str(k) for k in key)})" if key else "")
        if isinstance(exc, pydantic.ValidationError) and exc.errors():
            e = exc.errors()[0]
            loc = ".".join(str(x) for x in e.get("loc", ())) or "record"
            what = f"field {loc!r}: {e.get('msg')}" if e.get("type") != "json_invalid" else "record is not valid JSON"
        else:
            what = f"record is not a valid episode record ({str(exc)[:200]})"
        raise StoreError(
            f"{path}: {where} of table 'episodes' is malformed: {what}; "
            "delete that row (or restore the file) to use this run"
        ) from None


def _guarded(method):
    """Turn a raw sqlite error of a store method into a :class:`StoreError` naming the file."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            raise store_error(self.path, exc) from None

    return wrapper


class RunStore:
    def __init__(self, run_dir: Path, readonly: bool = False):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / DB_NAME
        self._conn: sqlite3.Connection | None = None
        try:
            self._open(readonly)
        except sqlite3.DatabaseError as exc:
            if self._conn is not None:
                self._conn.close()
            raise store_error(self.path, exc) from None

    def _open(self, readonly: bool) -> None:
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

    @_guarded
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

    @_guarded
    def set_meta(self, key: str, value: Any) -> None:
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("INSERT OR REPLACE INTO run_meta VALUES (?,?)", (key, json.dumps(value, sort_keys=True)))

    @_guarded
    def get_meta(self, key: str) -> Any:
        row = self._conn.execute("SELECT value FROM run_meta WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        try:
            return json.loads(row[0])
        except (ValueError, TypeError, RecursionError):
            raise StoreError(
                f"{self.path}: run_meta row {key!r} is not valid JSON; restore the file from a copy, "
                "or start a new run folder"
            ) from None

    @_guarded
    def done_keys(self) -> set[tuple[str, str, int]]:
        return {tuple(r) for r in self._conn.execute("SELECT task, split, episode_index FROM episodes")}

    @_guarded
    def _rows(self, order: str) -> list[tuple]:
        return self._conn.execute(
            f"SELECT rowid, task, split, episode_index, record FROM episodes ORDER BY {order}"
        ).fetchall()

    def records(self) -> Iterator[EpisodeRecord]:
        for rowid, task, split, index, raw in self._rows("task, split, episode_index"):
            yield parse_record(raw, self.path, rowid, (task, split, index))

    def records_in_completion_order(self) -> Iterator[EpisodeRecord]:
        """Records in the order they became final (rowid; a retried episode is re-inserted)."""
        for rowid, task, split, index, raw in self._rows("rowid"):
            yield parse_record(raw, self.path, rowid, (task, split, index))

    def validate(self) -> None:
        """Parse every stored row, so a resumed run refuses a damaged store (naming the row)
        before it spends time on new episodes it could not tabulate."""
        for _ in self.records():
            pass

    @_guarded
    def count(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM episodes").fetchone()[0]

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
