"""What readers of ``episodes.sqlite`` rely on beyond durability (``tests/test_store.py``): the order
in which episodes became final, a reader never leaving files behind, and a writer that waits out
another process's lock instead of losing an episode."""

from __future__ import annotations

import os
import sqlite3
import threading
import time

from vla_eval.record import EpisodeRecord
from vla_eval.store import RunStore


def _record(task: str, i: int, success: bool = True) -> EpisodeRecord:
    return EpisodeRecord(
        run_id="r",
        suite="s",
        task=task,
        split="in_domain",
        episode_index=i,
        init_state_id=i,
        seed=i,
        success=success,
        steps=5,
        termination="success" if success else "timeout",
    )


def test_completion_order_puts_a_retried_episode_where_it_became_final(tmp_path):
    """The gate replays episodes in the order they finished: a retried episode counts at its retry."""
    with RunStore(tmp_path) as store:
        for task, i in [("b", 0), ("a", 1), ("a", 0)]:
            store.add(_record(task, i, success=False))
        store.add(_record("b", 0, success=True))  # the retry of b/0 replaces it and is now the latest
    with RunStore(tmp_path, readonly=True) as reader:
        done = [(r.task, r.episode_index, r.success) for r in reader.records_in_completion_order()]
        by_key = [(r.task, r.episode_index) for r in reader.records()]
    assert done == [("a", 1, False), ("a", 0, False), ("b", 0, True)]
    assert by_key == [("a", 0), ("a", 1), ("b", 0)]


def test_reading_a_store_being_created_leaves_no_file_behind(tmp_path, monkeypatch):
    """`vla-eval table` on a run whose schema is not written yet reads it as empty, in memory, and
    creates nothing in the folder it is started from."""
    run_dir, cwd = tmp_path / "run", tmp_path / "cwd"
    run_dir.mkdir()
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    sqlite3.connect(run_dir / "episodes.sqlite").close()
    with RunStore(run_dir, readonly=True) as reader:
        assert reader.count() == 0 and reader.get_meta("config") is None
    assert os.listdir(cwd) == []
    assert os.listdir(run_dir) == ["episodes.sqlite"]


def test_a_writer_waits_for_another_processs_lock_instead_of_failing(tmp_path):
    """A reader's or a resumed run's transaction holding the lock for a few seconds must not turn a
    finished episode into 'database is locked' (sqlite3's default wait is 5 s)."""
    with RunStore(tmp_path) as store:
        store.add(_record("a", 0))
        other = sqlite3.connect(tmp_path / "episodes.sqlite", isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        release = threading.Timer(6.0, lambda: other.execute("COMMIT"))
        release.start()
        t0 = time.monotonic()
        try:
            store.add(_record("a", 1))
        finally:
            release.join()
            other.close()
        assert time.monotonic() - t0 >= 5.5
        assert store.count() == 2
