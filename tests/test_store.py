import os
import signal
import sqlite3
import subprocess
import sys
import time

from vla_eval.record import SCHEMA_VERSION, EpisodeRecord
from vla_eval.store import RunStore


def _record(i, success=True):
    return EpisodeRecord(
        run_id="r",
        suite="s",
        task="t",
        split="in_domain",
        episode_index=i,
        init_state_id=i,
        seed=i,
        success=success,
        steps=10 + i,
        termination="success" if success else "timeout",
    )


def test_roundtrip_and_replace(tmp_path):
    with RunStore(tmp_path) as store:
        store.add(_record(0, False))
        store.add(_record(0, True))
        store.add(_record(1))
        store.set_meta("config", {"a": 1})
    with RunStore(tmp_path, readonly=True) as store:
        recs = list(store.records())
        assert [r.episode_index for r in recs] == [0, 1]
        assert recs[0].success is True
        assert recs[0].schema_version == SCHEMA_VERSION
        assert store.get_meta("config") == {"a": 1}
        assert store.done_keys() == {("t", "in_domain", 0), ("t", "in_domain", 1)}


_WRITER = """
import sys, time
from vla_eval.record import EpisodeRecord
from vla_eval.store import RunStore
store = RunStore(sys.argv[1])
for i in range(100000):
    store.add(EpisodeRecord(run_id="r", suite="s", task="t", split="x", episode_index=i, init_state_id=0,
                            seed=0, success=True, steps=1, termination="success"))
    print(i, flush=True)
"""


def test_kill_9_keeps_every_acknowledged_episode(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    acked = -1
    deadline = time.time() + 30
    while acked < 200 and time.time() < deadline:
        acked = int(proc.stdout.readline())
    # a reader works while the writer is mid-run
    with RunStore(tmp_path, readonly=True) as reader:
        assert reader.count() >= 1
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    conn = sqlite3.connect(tmp_path / "episodes.sqlite")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    count = conn.execute("SELECT COUNT(*) FROM episodes").fetchone()[0]
    assert count >= acked + 1


def test_writer_connection_is_wal_and_fsyncs_every_commit(tmp_path):
    with RunStore(tmp_path) as store:
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # 2 = FULL
        assert store._conn.isolation_level is None  # autocommit: each add() is its own transaction
    # WAL is persistent in the file: a plain reader sees it too
    assert sqlite3.connect(tmp_path / "episodes.sqlite").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_each_add_is_committed_before_it_returns(tmp_path):
    with RunStore(tmp_path) as store:
        store.add(_record(3))
        other = sqlite3.connect(tmp_path / "episodes.sqlite")
        assert other.execute(
            "SELECT task, split, episode_index, success, steps, termination, schema_version FROM episodes"
        ).fetchall() == [("t", "in_domain", 3, 1, 13, "success", SCHEMA_VERSION)]
        store.set_meta("run_id", "abc")
        assert other.execute("SELECT value FROM run_meta WHERE key='run_id'").fetchone() == ('"abc"',)
        other.close()


def test_records_are_ordered_by_task_split_index_and_counted(tmp_path):
    with RunStore(tmp_path) as store:
        for task, split, i in [("b", "x", 1), ("a", "y", 0), ("a", "x", 2), ("a", "x", 0)]:
            store.add(
                EpisodeRecord(
                    run_id="r",
                    suite="s",
                    task=task,
                    split=split,
                    episode_index=i,
                    init_state_id=i,
                    seed=i,
                    success=False,
                    steps=1,
                    termination="timeout",
                )
            )
        assert [r.key for r in store.records()] == [("a", "x", 0), ("a", "x", 2), ("a", "y", 0), ("b", "x", 1)]
        assert store.count() == 4 and store.get_meta("missing") is None


def test_readonly_store_refuses_missing_folder_and_reads_a_store_being_created(tmp_path):
    import pytest

    with pytest.raises(FileNotFoundError, match="no episode store here"):
        RunStore(tmp_path / "nope", readonly=True)
    sqlite3.connect(tmp_path / "episodes.sqlite").close()  # file exists, schema not yet written
    with RunStore(tmp_path, readonly=True) as store:
        assert store.count() == 0 and list(store.records()) == [] and store.done_keys() == set()


def test_store_creates_nested_run_folders_and_readers_cannot_write(tmp_path):
    import pytest

    nested = tmp_path / "results" / "suite" / "run"
    with RunStore(nested) as store:
        store.add(_record(0))
    with RunStore(nested, readonly=True) as reader:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader._conn.execute("DELETE FROM episodes")
        assert reader.count() == 1
    assert not (tmp_path / ":memory:").exists() and not list(tmp_path.glob("*memory*"))
