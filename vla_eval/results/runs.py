"""Every run under a results root, queryable together as one pandas DataFrame.

A run folder is any directory holding ``episodes.sqlite`` (see :mod:`vla_eval.store`).
Readers open the database read-only (``mode=ro``) and read the run metadata and the
episodes inside one transaction, so a reader sees one consistent snapshot even while
the runner is committing episodes (SQLite WAL allows any number of readers beside the
single writer, and never lets a reader see a half-written episode).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd

from vla_eval.errors import ConfigError
from vla_eval.record import EpisodeRecord
from vla_eval.run_meta import RunMeta
from vla_eval.store import DB_NAME, StoreError, parse_record, store_error

#: Suite-spec keys that do not change what a run measures: the number of episodes and
#: the seed only change the sample, the description is prose. Two runs whose suite specs
#: differ only in these share a protocol (a 20-episode CI run can be checked against a
#: 50-episode baseline).
NON_PROTOCOL_SUITE_KEYS = ("episodes_per_task", "seed", "description")

Filter = str | Iterable[str] | Callable[[Any], bool] | None


@dataclass
class RunInfo:
    """Summary of one run folder (what ``list_runs`` returns)."""

    run_dir: Path
    run_id: str
    suite: str
    policy: str
    policy_adapter: str
    checkpoint: str | None
    created_at: str | None
    protocol: dict[str, Any]
    """Protocol summary (:func:`protocol_summary`): what must match for rates to be comparable."""
    n_episodes: int
    splits: list[str] = field(default_factory=list)
    ood_splits: list[str] = field(default_factory=list)
    split_family: dict[str, str] = field(default_factory=dict)
    """Split -> who defined it (``vla_eval``, ``libero_pro``); OOD means never cross families."""
    tasks: list[str] = field(default_factory=list)
    meta: RunMeta = field(default_factory=RunMeta, repr=False)
    """The run's typed metadata (suite, policy, versions, git, machine, ...)."""

    @property
    def config(self) -> dict[str, Any]:
        """The stored metadata as a plain dict, for readers not yet switched to :attr:`meta`."""
        return self.meta.stored()

    @property
    def in_domain_split(self) -> str | None:
        return self.splits[0] if self.splits else None

    @property
    def render_quality(self) -> str | None:
        return self.protocol.get("render_quality")

    @property
    def is_fast_render(self) -> bool:
        return self.render_quality == "fast"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["run_dir"] = str(self.run_dir)
        d.pop("meta")
        return d


def protocol_hash(suite: dict[str, Any]) -> str | None:
    """Hash of the suite spec without the keys that do not change what is measured."""
    if not suite:
        return None
    from vla_eval.spec import without_unset_protocol_fields

    core = {k: v for k, v in without_unset_protocol_fields(suite).items() if k not in NON_PROTOCOL_SUITE_KEYS}
    text = json.dumps(core, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def protocol_summary(meta: RunMeta | dict[str, Any] | None) -> dict[str, Any]:
    """The protocol facts of a run's metadata that change success rates (docs/architecture.md §7)."""
    if not isinstance(meta, RunMeta):
        meta = RunMeta.from_stored(meta or {})
    suite = meta.suite
    return {
        "suite": suite.name,
        "backend": suite.backend,
        "suite_hash": meta.suite_hash,
        "protocol_hash": protocol_hash(suite.stored()),
        "max_steps": suite.max_steps,
        "task_max_steps": suite.task_max_steps(),
        "settle_steps": suite.settle_steps,
        "image_size": suite.image_size,
        "render_quality": suite.render_quality,
        "episodes_per_task": suite.episodes_per_task,
        "sim_stack": meta.stack(),
    }


#: Keys of :func:`protocol_summary` that must be equal for two runs to be compared.
PROTOCOL_KEYS = ("protocol_hash", "suite", "backend", "max_steps", "task_max_steps", "settle_steps", "image_size", "render_quality", "sim_stack")


def protocol_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Human-readable list of protocol differences (empty when comparable)."""
    out = []
    for key in PROTOCOL_KEYS:
        if a.get(key) != b.get(key):
            if key == "task_max_steps":
                ta, tb = a.get(key) or {}, b.get(key) or {}
                diff = {t: (ta.get(t), tb.get(t)) for t in sorted(set(ta) | set(tb)) if ta.get(t) != tb.get(t)}
                out.append(f"task_max_steps: {diff}")
            else:
                out.append(f"{key}: {a.get(key)!r} != {b.get(key)!r}")
    return out


def checkpoint_of(config: RunMeta | dict[str, Any]) -> str | None:
    """The checkpoint identity recorded for a run, if any (see :attr:`RunMeta.checkpoint`)."""
    meta = config if isinstance(config, RunMeta) else RunMeta.from_stored(config)
    return meta.checkpoint


def find_run_dirs(root_or_runs: str | Path | Iterable[str | Path]) -> list[Path]:
    """Run folders under a results root (recursively), or the given run folders."""
    items = [root_or_runs] if isinstance(root_or_runs, (str, Path)) else list(root_or_runs)
    found: list[Path] = []
    for item in items:
        path = Path(item)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such results root or run folder")
        if (path / DB_NAME).is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(sorted(p.parent for p in path.rglob(DB_NAME)))
        else:
            raise ConfigError(f"{path}: not a run folder (no {DB_NAME}) nor a results root")
    return list(dict.fromkeys(found))


def _connect_ro(db: Path) -> sqlite3.Connection:
    """Read-only connection; falls back to ``immutable=1`` where the folder is read-only.

    A WAL reader needs the ``-shm`` file; in a read-only checkout (committed results,
    a mounted archive) SQLite cannot create it, and nobody can be writing there either,
    so opening the file as immutable is then both possible and safe.
    """
    base = "file:" + urllib.parse.quote(str(db.resolve()))
    conn = sqlite3.connect(base + "?mode=ro", uri=True, timeout=30)
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        return conn
    except sqlite3.OperationalError:
        conn.close()
        return sqlite3.connect(base + "?mode=ro&immutable=1", uri=True, timeout=30)


def read_run(run_dir: str | Path, with_records: bool = True) -> tuple[RunInfo, list[tuple[int, EpisodeRecord]]]:
    """Read one run's metadata and (optionally) its records in completion order.

    Returns ``(info, [(completion_order, record), ...])``. Completion order is the SQLite
    rowid: the store commits one row per finished episode, and a retried episode is
    re-inserted, so rowid order is the order in which results became final.
    """
    run_dir = Path(run_dir)
    db = run_dir / DB_NAME
    if not db.is_file():
        raise FileNotFoundError(f"{db}: no episode store here (is {run_dir} a run folder?)")
    conn = None
    try:
        conn = _connect_ro(db)
        conn.execute("BEGIN")  # one read snapshot for meta + episodes
        meta_rows = conn.execute("SELECT key, value FROM run_meta").fetchall()
        n = conn.execute("SELECT COUNT(*) FROM episodes").fetchone()[0]
        rows = (conn.execute("SELECT rowid, task, split, episode_index, record FROM episodes ORDER BY rowid").fetchall()
                if with_records else [])
        conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        raise store_error(db, exc) from None
    finally:
        if conn is not None:
            conn.close()
    meta = {}
    for key, value in meta_rows:
        try:
            meta[key] = json.loads(value)
        except (ValueError, TypeError, RecursionError):
            raise StoreError(f"{db}: run_meta row {key!r} is not valid JSON; restore the file from a copy") from None
    records = [(i, parse_record(raw, db, rowid, (task, split, index)))
               for i, (rowid, task, split, index, raw) in enumerate(rows)]
    run_meta = RunMeta.from_stored(meta.get("config"), str(db))
    suite = run_meta.suite
    splits, tasks = suite.split_names, suite.task_names
    if not splits and records:
        splits = sorted({r.split for _, r in records})
    if not tasks and records:
        tasks = sorted({r.task for _, r in records})
    info = RunInfo(
        run_dir=run_dir,
        run_id=str(meta.get("run_id") or run_meta.run_id or run_dir.name),
        suite=str(suite.name or (records[0][1].suite if records else "?")),
        policy=str(run_meta.policy.name or "?"),
        policy_adapter=str(run_meta.policy.adapter or "?"),
        checkpoint=run_meta.checkpoint,
        created_at=run_meta.created_at,
        protocol=protocol_summary(run_meta),
        n_episodes=int(n),
        splits=splits,
        ood_splits=suite.ood_splits,
        split_family=suite.split_family,
        tasks=tasks,
        meta=run_meta,
    )
    return info, records


def readable(run_dirs: Iterable[Path], with_records: bool = False) -> Iterable[tuple[Path, RunInfo, list]]:
    """``read_run`` over many folders; an unreadable one (corrupt or empty store) is skipped
    with a warning naming it, so one broken file cannot hide every other run of a results root."""
    for run_dir in run_dirs:
        try:
            info, records = read_run(run_dir, with_records=with_records)
        except (ConfigError, FileNotFoundError) as exc:
            print(f"warning: skipping {Path(run_dir) / DB_NAME}: {exc}", file=sys.stderr)
            continue
        yield run_dir, info, records


def _matches(value: Any, flt: Filter, prefix: bool = False) -> bool:
    if flt is None:
        return True
    if callable(flt):
        return bool(flt(value))
    options = [flt] if isinstance(flt, str) else list(flt)
    if value is None:
        return False
    value = str(value)
    return any(value.startswith(o) if prefix else value == o for o in options)


def _timestamp(text: str | None) -> pd.Timestamp | None:
    if not text:
        return None
    ts = pd.Timestamp(text)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _run_selected(info: RunInfo, policy: Filter, checkpoint: Filter, suite: Filter, run_id: Filter, date: Filter, since, until) -> bool:
    if not (_matches(info.policy, policy) and _matches(info.suite, suite) and _matches(info.run_id, run_id)):
        return False
    if not _matches(info.checkpoint, checkpoint, prefix=True):
        return False
    if date is not None and not _matches(info.created_at, date, prefix=True):
        return False
    created = _timestamp(info.created_at)
    if since is not None and (created is None or created < _timestamp(str(since))):
        return False
    if until is not None and (created is None or created > _timestamp(str(until))):
        return False
    return True


def list_runs(
    root_or_runs: str | Path | Iterable[str | Path],
    *,
    policy: Filter = None,
    checkpoint: Filter = None,
    suite: Filter = None,
    run_id: Filter = None,
    date: Filter = None,
    since: str | None = None,
    until: str | None = None,
) -> list[RunInfo]:
    """Summaries of the runs under a results root (run id, suite, policy, checkpoint, created_at, protocol)."""
    out = []
    for _, info, _ in readable(find_run_dirs(root_or_runs)):
        if _run_selected(info, policy, checkpoint, suite, run_id, date, since, until):
            out.append(info)
    return sorted(out, key=lambda r: (r.suite, r.policy, r.created_at or "", str(r.run_dir)))


RUN_COLUMNS = (
    "run_dir",
    "policy",
    "policy_adapter",
    "checkpoint",
    "created_at",
    "suite_hash",
    "protocol_hash",
    "render_quality",
    "in_domain",
    "out_of_domain",
    "completion_order",
)


def records_to_frame(info: RunInfo, records: list[tuple[int, EpisodeRecord]]) -> pd.DataFrame:
    rows = []
    in_domain = info.in_domain_split
    for order, rec in records:
        row = rec.model_dump()
        row.update(
            run_dir=str(info.run_dir),
            policy=info.policy,
            policy_adapter=info.policy_adapter,
            checkpoint=info.checkpoint,
            created_at=info.created_at,
            suite_hash=info.protocol.get("suite_hash"),
            protocol_hash=info.protocol.get("protocol_hash"),
            render_quality=info.render_quality,
            in_domain=rec.split == in_domain,
            out_of_domain=rec.split in info.ood_splits,
            completion_order=order,
        )
        rows.append(row)
    columns = list(EpisodeRecord.model_fields) + list(RUN_COLUMNS)
    return pd.DataFrame(rows, columns=columns)


def load(
    root_or_runs: str | Path | Iterable[str | Path],
    *,
    policy: Filter = None,
    checkpoint: Filter = None,
    suite: Filter = None,
    split: Filter = None,
    task: Filter = None,
    run_id: Filter = None,
    date: Filter = None,
    since: str | None = None,
    until: str | None = None,
) -> pd.DataFrame:
    """All episode records under a results root (or given run folders) as one DataFrame.

    One row per episode: every :class:`~vla_eval.record.EpisodeRecord` field plus the run's
    policy, checkpoint, created_at, suite/protocol hashes, render quality, whether the
    split is in-domain or out-of-domain, and the completion order within its run.

    Filters take a string, a list of strings, or a predicate. ``checkpoint`` matches by
    prefix (a short hash works); ``date`` matches a prefix of the ISO ``created_at``
    (``"2025-06"``); ``since`` / ``until`` bound ``created_at`` (inclusive). Safe to call
    while runs are still writing: each run is read from one consistent snapshot.
    """
    frames = []
    for run_dir, info, _ in readable(find_run_dirs(root_or_runs)):
        if not _run_selected(info, policy, checkpoint, suite, run_id, date, since, until):
            continue
        info, records = read_run(run_dir)
        records = [(o, r) for o, r in records if _matches(r.split, split) and _matches(r.task, task)]
        frames.append(records_to_frame(info, records))
    if not frames:
        return records_to_frame(RunInfo(Path("."), "", "", "", "", None, None, {}, 0), [])
    frames = [f for f in frames if not f.empty] or frames[:1]
    return pd.concat(frames, ignore_index=True)
