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
        run_id="r", suite="s", task="t", split="in_domain", episode_index=i, init_state_id=i, seed=i,
        success=success, steps=10 + i, termination="success" if success else "timeout",
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
