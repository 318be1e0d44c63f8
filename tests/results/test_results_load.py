"""load() / list_runs(): filters, and reading while a run is writing in another process."""

import subprocess
import sys
import time

import pytest

from runfixtures import make_run, suite_dict
from vla_eval.errors import ConfigError
from vla_eval.results import list_runs, load


@pytest.fixture
def root(runs_root):
    make_run(runs_root, "a", {("pick", "in_domain"): (8, 10), ("pick", "lighting"): (5, 10)}, policy="vla_r1",
             checkpoint="abc123", created_at="2025-05-01T10:00:00+00:00")
    make_run(runs_root, "nested/b", {("pick", "in_domain"): (3, 10), ("open", "in_domain"): (6, 10)}, policy="openvla",
             checkpoint="def456", created_at="2025-06-15T10:00:00+00:00",
             suite=suite_dict("libero_spatial", tasks=("pick", "open"), ood=()))
    return runs_root


def test_load_all_and_columns(root):
    df = load(root)
    assert len(df) == 40
    assert {"policy", "checkpoint", "suite", "task", "split", "success", "in_domain", "out_of_domain", "protocol_hash", "completion_order"} <= set(df.columns)
    assert df.groupby("run_id")["success"].sum().to_dict() == {"a": 13, "nested/b": 9}
    assert df[df["split"] == "lighting"]["out_of_domain"].all() and df[df["split"] == "in_domain"]["in_domain"].all()


def test_load_filters(root):
    assert set(load(root, policy="openvla")["run_id"]) == {"nested/b"}
    assert set(load(root, checkpoint="abc")["run_id"]) == {"a"}  # prefix of the hash
    assert set(load(root, suite=["libero_spatial"])["task"]) == {"pick", "open"}
    assert len(load(root, split="lighting")) == 10
    assert len(load(root, task="open")) == 10
    assert set(load(root, date="2025-06")["run_id"]) == {"nested/b"}
    assert set(load(root, since="2025-06-01")["run_id"]) == {"nested/b"}
    assert set(load(root, until="2025-05-31")["run_id"]) == {"a"}
    assert load(root, policy="nobody").empty
    assert set(load(root, policy=lambda p: p.startswith("vla"))["run_id"]) == {"a"}


def test_list_runs(root):
    runs = list_runs(root)
    assert [(r.run_id, r.suite, r.policy, r.checkpoint, r.n_episodes) for r in runs] == [
        ("nested/b", "libero_spatial", "openvla", "def456", 20),
        ("a", "tabletop_basic", "vla_r1", "abc123", 20),
    ]
    assert runs[1].created_at == "2025-05-01T10:00:00+00:00"
    assert runs[1].protocol["max_steps"] == 220 and runs[1].protocol["protocol_hash"]
    assert runs[1].ood_splits == ["lighting"]


def test_missing_root_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ConfigError):
        load(tmp_path / "file.txt")


_WRITER = """
import sys
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from runfixtures import make_run
from vla_eval.record import EpisodeRecord
from vla_eval.store import RunStore
run = make_run(Path(sys.argv[1]), "live", {("pick", "in_domain"): (1, 1)})
store = RunStore(run)
for i in range(1, 100000):
    store.add(EpisodeRecord(run_id="live", suite="tabletop_basic", task="pick", split="in_domain", episode_index=i,
                            init_state_id=i, seed=i, success=i % 2 == 0, steps=5, termination="timeout"))
    print(i, flush=True)
"""


def test_load_while_another_process_writes(runs_root):
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(runs_root), str(__import__("pathlib").Path(__file__).parent)],
                            stdout=subprocess.PIPE, text=True)
    try:
        acked = 0
        deadline = time.time() + 60
        while acked < 50 and time.time() < deadline:
            acked = int(proc.stdout.readline())
        seen = []
        for _ in range(5):  # several reads while episodes keep arriving
            df = load(runs_root)
            seen.append(len(df))
            assert df["episode_index"].is_unique  # a consistent snapshot, never a half-written row
            assert list_runs(runs_root)[0].n_episodes >= len(df)
            time.sleep(0.05)
        assert seen[0] >= 51 and seen[-1] > seen[0]  # reads see the writer's progress
        assert proc.poll() is None  # and the writer was never blocked out
    finally:
        proc.kill()
        proc.wait()


def test_runs_cli(root, capsys):
    import json

    from vla_eval.cli.main import main

    assert main(["runs", str(root), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {d["run_id"] for d in data} == {"a", "nested/b"}
    assert main(["runs", str(root), "--policy", "openvla"]) == 0
    out = capsys.readouterr().out
    assert "nested/b" in out and "vla_r1" not in out


def _old_shape_run(root):
    """A run folder as written before run metadata was versioned: no schema_version, limits,
    sim_stack, checkpoint_hash, executor or policy_server keys."""
    run_dir = make_run(root, "old", {("pick", "in_domain"): (2, 4)}, checkpoint="ckpt-old")
    from vla_eval.store import RunStore

    with RunStore(run_dir) as store:
        config = store.get_meta("config")
        assert "schema_version" not in config and "limits" not in config
    return run_dir, config


def test_folder_written_before_schema_version_still_loads(runs_root, capsys):
    import hashlib
    import json

    from vla_eval.cli.main import main
    from vla_eval.results.runs import NON_PROTOCOL_SUITE_KEYS, read_run

    run_dir, config = _old_shape_run(runs_root)
    info, records = read_run(run_dir)
    assert info.meta.schema_version == 0
    assert (info.suite, info.policy, info.checkpoint, info.tasks, info.splits) == (
        "tabletop_basic", "vla_r1", "ckpt-old", ["pick"], ["in_domain"])
    assert info.protocol["sim_stack"] == "mujoco 3.3.2 / numpy 2.1.0"
    core = {k: v for k, v in config["suite"].items() if k not in NON_PROTOCOL_SUITE_KEYS}
    expected = hashlib.sha256(json.dumps(core, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
    assert info.protocol["protocol_hash"] == expected  # comparable with baselines saved before the change
    assert info.config == config  # what report.py reads today, unchanged
    assert main(["table", str(run_dir)]) == 0
    assert "suite tabletop_basic  policy vla_r1" in capsys.readouterr().out


def test_malformed_run_metadata_is_a_one_line_error(runs_root):
    from vla_eval.results.runs import read_run
    from vla_eval.store import RunStore

    run_dir, config = _old_shape_run(runs_root)
    with RunStore(run_dir) as store:
        store.set_meta("config", {**config, "suite": {**config["suite"], "max_steps": "many"}})
    with pytest.raises(ConfigError) as err:
        read_run(run_dir)
    assert "suite.max_steps" in str(err.value) and "\n" not in str(err.value)


def test_new_run_records_versioned_metadata_from_objects(tmp_path):
    """RunRequest takes a SuiteSpec built in memory and a policy object; the folder says schema_version."""
    import json

    from vla_eval.execution.runner import RunRequest, run
    from vla_eval.policies.baselines import NoopPolicy
    from vla_eval.results.runs import read_run
    from vla_eval.run_meta import SCHEMA_VERSION
    from vla_eval.spec import SuiteSpec, load_suite

    data = load_suite("tabletop_basic").model_dump(mode="json")
    data.update(tasks=data["tasks"][:1], splits=data["splits"][:1], episodes_per_task=1, max_steps=3)
    run(RunRequest(suite=SuiteSpec.model_validate(data), policy=NoopPolicy(), workers=1, run_dir=tmp_path / "r",
                   progress=False))
    info, records = read_run(tmp_path / "r")
    assert len(records) == 1 and info.meta.schema_version == SCHEMA_VERSION
    assert json.loads((tmp_path / "r" / "run.json").read_text())["schema_version"] == SCHEMA_VERSION
    assert info.policy == "noop" and info.policy_adapter == "vla_eval.policies.baselines:NoopPolicy"
    assert info.meta.suite.max_steps == 3 and info.meta.limits is not None
