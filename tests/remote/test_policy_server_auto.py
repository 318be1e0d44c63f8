"""`vla-eval run --policy-server auto`: records equal an in-process run; faults end up where they belong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from vla_eval.cli.main import main
from vla_eval.store import RunStore

pytestmark = pytest.mark.slow


def _suite(tmp_path: Path, **over) -> Path:
    spec = {
        "name": "serve_mini",
        "backend": "tabletop",
        "tasks": ["pick_place_cube", "push_block"],
        "episodes_per_task": 2,
        "max_steps": 60,
        "cameras": [],
        "image_size": [32, 32],
        **over,
    }
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _records(run_dir: Path):
    with RunStore(run_dir, readonly=True) as store:
        return sorted(store.records(), key=lambda r: r.key)


def _run(suite: Path, run_dir: Path, *extra: str) -> int:
    return main(["run", "--suite", str(suite), "--run-dir", str(run_dir), "--no-progress", *extra])


def test_auto_server_records_equal_in_process_records(tmp_path):
    """The privileged-state expert (state travels over the wire) through one server, two workers
    with two envs each (four connections), against the same run in-process."""
    suite = _suite(tmp_path)
    common = ["--policy", "scripted", "--workers", "2", "--batch-envs", "2"]
    assert _run(suite, tmp_path / "inproc", *common) == 0
    assert _run(suite, tmp_path / "served", *common, "--policy-server", "auto") == 0
    inproc, served = _records(tmp_path / "inproc"), _records(tmp_path / "served")
    assert len(served) == 4 and sum(r.success for r in inproc) >= 2  # the expert really solves tasks here
    assert [r.deterministic_view() for r in served] == [r.deterministic_view() for r in inproc]
    assert [r.policy_calls for r in served] == [r.policy_calls for r in inproc]
    config = json.loads((tmp_path / "served" / "run.json").read_text())
    assert config["policy_server"] == "auto" and config["policy"]["name"] == "scripted"  # the served policy is recorded
    log = (tmp_path / "served" / "policy_server.log").read_text()
    assert "serving policy scripted" in log and "mean batch" in log  # stopped cleanly at the end


def test_policy_exception_is_policy_error_on_its_episode_only(tmp_path):
    suite = _suite(tmp_path, tasks=["push_block"], episodes_per_task=3, max_steps=5)
    from vla_eval.execution.plan import build_plan
    from vla_eval.spec import load_suite

    bad_seed = build_plan(load_suite(str(suite)))[1].seed
    assert (
        _run(
            suite,
            tmp_path / "run",
            "--policy",
            "_faulty:BadOutputPolicy",
            "--policy-arg",
            "mode=raise",
            "--policy-arg",
            f"bad_seeds=[{bad_seed}]",
            "--workers",
            "1",
            "--policy-server",
            "auto",
        )
        == 0
    )
    recs = _records(tmp_path / "run")
    assert [r.termination for r in recs] == ["timeout", "policy_error", "timeout"]
    assert "model exploded" in recs[1].error and recs[1].seed == bad_seed


def test_killed_server_is_restarted_and_its_episodes_rerun(tmp_path):
    """The served policy kills its server process (like a segfault or OOM kill) on one episode, once."""
    suite = _suite(tmp_path, tasks=["push_block"], episodes_per_task=3, max_steps=5)
    from vla_eval.execution.plan import build_plan
    from vla_eval.spec import load_suite

    crash_seed = build_plan(load_suite(str(suite)))[1].seed
    marker = tmp_path / "crashed"
    args = ["--policy", "_faulty:CrashingPolicy", "--policy-arg", f"crash_seed={crash_seed}", "--workers", "1"]
    assert _run(suite, tmp_path / "run", *args, "--policy-arg", f"marker={marker}", "--policy-server", "auto") == 0
    assert marker.exists()  # the server really died once
    recs = _records(tmp_path / "run")
    assert [r.termination for r in recs] == ["timeout"] * 3
    assert [r.attempts for r in recs] == [1, 2, 1]  # only the episode in flight was rerun

    # dying on every attempt: the run stops with a clear error instead of looping; done episodes are kept
    assert _run(suite, tmp_path / "again", *args, "--policy-server", "auto") == 2
    recs = _records(tmp_path / "again")
    assert [r.seed for r in recs if r.termination == "timeout"] == [build_plan(load_suite(str(suite)))[0].seed]
