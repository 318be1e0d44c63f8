"""Run integrity through the real CLI: resume across several splits, refusal to mix
policies / checkpoints in one run folder, chunk execution options reaching the rollout,
and the store's durability settings on the run's own connection."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest
import yaml

from vla_eval.cli.main import main
from vla_eval.execution.plan import build_plan
from vla_eval.spec import load_suite
from vla_eval.store import DB_NAME, RunStore


def _suite(tmp_path: Path, **overrides) -> Path:
    data = {
        "name": "integrity",
        "backend": "tabletop",
        "tasks": ["pick_place_cube", "push_block"],
        "episodes_per_task": 3,
        "max_steps": 90,
        "cameras": ["agentview"],
        "image_size": [64, 64],
        "splits": [
            {"name": "in_domain"},
            {"name": "ood_light", "out_of_domain": True, "perturbations": [{"type": "lighting", "scale": 0.35}]},
            {
                "name": "ood_layout",
                "out_of_domain": True,
                "perturbations": [{"type": "lighting", "scale": 0.8}],
                "task_perturbations": {
                    "pick_place_cube": [{"type": "object_layout", "objects": {"red_cube": {"x": [0.09, 0.12]}}}],
                    "push_block": [{"type": "object_layout", "objects": {"blue_block": {"x": [0.08, 0.11]}}}],
                },
            },
        ],
    }
    data.update(overrides)
    path = tmp_path / "integrity.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _records(run_dir: Path):
    with RunStore(run_dir, readonly=True) as store:
        return list(store.records())


def _run(suite, run_dir, *extra, policy="scripted"):
    return main(
        [
            "run",
            "--suite",
            str(suite),
            "--policy",
            policy,
            "--workers",
            "1",
            "--run-dir",
            str(run_dir),
            "--no-progress",
            *extra,
        ]
    )


@pytest.mark.slow
def test_resume_across_splits_equals_an_uninterrupted_run(tmp_path, capsys):
    # step limits at the scripted expert's typical episode length: some episodes succeed, some time out
    suite = _suite(
        tmp_path, tasks=[{"name": "pick_place_cube", "max_steps": 29}, {"name": "push_block", "max_steps": 21}]
    )
    fresh, resumed = tmp_path / "fresh", tmp_path / "resumed"
    assert _run(suite, fresh) == 0
    assert _run(suite, resumed) == 0
    full = {r.key: r for r in _records(resumed)}
    assert len(full) == 2 * 3 * 3
    # an interrupted run: some episodes of every split and both tasks never got stored
    lost = {
        ("pick_place_cube", "in_domain", 2),
        ("push_block", "in_domain", 0),
        ("pick_place_cube", "ood_light", 1),
        ("push_block", "ood_light", 1),
        ("push_block", "ood_light", 2),
        ("pick_place_cube", "ood_layout", 0),
        ("push_block", "ood_layout", 2),
    }
    assert lost <= set(full)
    conn = sqlite3.connect(resumed / DB_NAME)
    conn.executemany("DELETE FROM episodes WHERE task=? AND split=? AND episode_index=?", sorted(lost))
    conn.commit()
    conn.close()
    capsys.readouterr()
    assert _run(suite, resumed, "--resume") == 0
    out = capsys.readouterr().out
    assert f"episodes run now: {len(lost)}, already done before: {len(full) - len(lost)}" in out
    final = _records(resumed)
    assert len(final) == len(full) and len({r.key for r in final}) == len(final)
    for r in final:
        if r.key not in lost:  # kept as stored, not re-run
            assert r.finished_at == full[r.key].finished_at and r.wall_time_s == full[r.key].wall_time_s
    # the same episodes, outcomes, final states and table as the uninterrupted run
    assert [r.deterministic_view() for r in final] == [r.deterministic_view() for r in _records(fresh)]
    assert (resumed / "table.md").read_text() == (fresh / "table.md").read_text()
    rates = {(r.task, r.split, r.success) for r in final}
    assert len({s for _, _, s in rates}) == 2, "fixture should have both outcomes so a mixed-up split shows"


def test_resume_refuses_another_policy_or_policy_args(tmp_path, capsys):
    suite = _suite(
        tmp_path, tasks=["pick_place_cube"], episodes_per_task=1, max_steps=2, splits=[{"name": "in_domain"}]
    )
    run_dir = tmp_path / "run"
    assert _run(suite, run_dir, policy="noop") == 0
    capsys.readouterr()
    assert _run(suite, run_dir, "--resume", policy="random") == 2
    err = capsys.readouterr().err
    assert "different protocol" in err and "policy.adapter: stored 'noop', now 'random'" in err
    assert _run(suite, run_dir, "--resume", "--policy-arg", "chunk_size=4", policy="noop") == 2
    err = capsys.readouterr().err
    assert "policy.args.chunk_size: stored None, now 4" in err
    assert _run(suite, run_dir, "--resume", "--replan-steps", "2", policy="noop") == 2
    assert "replan_steps: stored None, now 2" in capsys.readouterr().err
    assert _run(suite, run_dir, "--resume", "--policy-arg", "execution.temporal_ensemble=0.1", policy="noop") == 2
    assert "policy.execution" in capsys.readouterr().err
    assert [r.termination for r in _records(run_dir)] == ["timeout"]  # nothing was added or replaced
    assert _run(suite, run_dir, "--resume", policy="noop") == 0  # the same policy resumes


def test_resume_refuses_another_checkpoint_or_a_changed_one(tmp_path, capsys):
    suite = _suite(
        tmp_path, tasks=["pick_place_cube"], episodes_per_task=1, max_steps=2, splits=[{"name": "in_domain"}]
    )
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text('{"hidden": 8}')
    run_dir = tmp_path / "run"
    policy = "_faulty:CheckpointNoop"
    assert _run(suite, run_dir, "--policy-arg", f"checkpoint={ckpt}", policy=policy) == 0
    capsys.readouterr()
    other = tmp_path / "other"
    other.mkdir()
    assert _run(suite, run_dir, "--resume", "--policy-arg", f"checkpoint={other}", policy=policy) == 2
    err = capsys.readouterr().err
    assert "different protocol" in err and "policy.args.checkpoint" in err and str(other) in err
    # same path, retrained in place: the fingerprint differs, so the run is not continued
    (ckpt / "config.json").write_text('{"hidden": 16}')
    assert _run(suite, run_dir, "--resume", "--policy-arg", f"checkpoint={ckpt}", policy=policy) == 2
    err = capsys.readouterr().err
    assert "is not the one this run started with" in err and "fingerprint" in err
    (ckpt / "config.json").write_text('{"hidden": 8}')
    assert _run(suite, run_dir, "--resume", "--policy-arg", f"checkpoint={ckpt}", policy=policy) == 0


def _single(tmp_path, max_steps):
    return _suite(
        tmp_path, tasks=["pick_place_cube"], episodes_per_task=1, max_steps=max_steps, splits=[{"name": "in_domain"}]
    )


@pytest.mark.parametrize("replan", [None, 3])
def test_replan_steps_flag_reaches_the_rollout(tmp_path, replan):
    steps, chunk = 23, 10
    run_dir = tmp_path / "run"
    extra = ["--policy-arg", f"chunk_size={chunk}"] + (["--replan-steps", str(replan)] if replan else [])
    assert _run(_single(tmp_path, steps), run_dir, *extra, policy="noop") == 0
    (rec,) = _records(run_dir)
    assert rec.termination == "timeout" and rec.steps == steps
    assert rec.policy_calls == math.ceil(steps / (replan or chunk))


def test_execution_block_of_a_policy_file_and_policy_arg_reach_the_rollout(tmp_path):
    steps = 12
    pfile = tmp_path / "noop_chunks.yaml"
    pfile.write_text(yaml.safe_dump({"adapter": "noop", "args": {"chunk_size": 6}, "execution": {"replan_steps": 4}}))
    run_dir = tmp_path / "file"
    assert _run(_single(tmp_path, steps), run_dir, policy=str(pfile)) == 0
    assert _records(run_dir)[0].policy_calls == math.ceil(steps / 4)
    # temporal ensembling implies a new chunk every step
    run_dir = tmp_path / "ensemble"
    assert (
        _run(_single(tmp_path, steps), run_dir, "--policy-arg", "execution.temporal_ensemble=0.01", policy=str(pfile))
        == 0
    )
    assert _records(run_dir)[0].policy_calls == math.ceil(steps / 4)  # the file's replan_steps still holds
    run_dir = tmp_path / "ensemble_only"
    assert (
        _run(
            _single(tmp_path, steps),
            run_dir,
            "--policy-arg",
            "chunk_size=6",
            "--policy-arg",
            "execution={temporal_ensemble: 0.01}",
            policy="noop",
        )
        == 0
    )
    assert _records(run_dir)[0].policy_calls == steps


def test_bad_execution_block_is_a_clear_error(tmp_path, capsys):
    assert _run(_single(tmp_path, 2), tmp_path / "r", "--policy-arg", "execution.replan_steps=0", policy="noop") == 2
    err = capsys.readouterr().err
    assert "execution.replan_steps" in err and "greater than or equal to 1" in err
    assert _run(_single(tmp_path, 2), tmp_path / "r", "--policy-arg", "execution.ensemble=1", policy="noop") == 2
    assert "execution.ensemble" in capsys.readouterr().err


def test_store_connection_is_wal_with_full_sync(tmp_path):
    store = RunStore(tmp_path / "run")
    try:
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        store.close()


def test_runner_writes_through_a_durable_connection(tmp_path, monkeypatch):
    """The connection the runner really uses (not a fresh one) has synchronous=FULL when episodes are added."""
    seen = []
    original = RunStore.add

    def spy(self, record):
        seen.append(
            (
                self._conn.execute("PRAGMA synchronous").fetchone()[0],
                self._conn.execute("PRAGMA journal_mode").fetchone()[0],
            )
        )
        return original(self, record)

    monkeypatch.setattr(RunStore, "add", spy)
    assert _run(_single(tmp_path, 2), tmp_path / "run", policy="noop") == 0
    assert seen == [(2, "wal")]


def test_plan_covers_every_split_once(tmp_path):
    spec = load_suite(str(_suite(tmp_path)))
    plan = build_plan(spec)
    assert sorted({(i.task, i.split) for i in plan}) == sorted(
        (t, s) for t in ("pick_place_cube", "push_block") for s in ("in_domain", "ood_light", "ood_layout")
    )
    assert len(plan) == len({i.key for i in plan}) == 18
