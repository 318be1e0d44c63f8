"""A real gated run on the built-in scenes: `vla-eval run --gate` stops early with the right exit code.

The baseline is a real scripted-expert run; the clearly worse policy is the no-op policy.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vla_eval.cli.main import main
from vla_eval.store import RunStore

PLAN = 6  # episodes per task: 3 tasks x 2 splits = 36 planned episodes
PLANNED = 3 * 2 * PLAN


def _count(run_dir: Path) -> int:
    with RunStore(run_dir, readonly=True) as store:
        return store.count()


@pytest.fixture(scope="module")
def expert_baseline(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gate")
    run_dir = root / "expert"
    rc = main(["run", "--policy", "scripted", "--episodes", str(PLAN), "--workers", "2", "--run-dir", str(run_dir), "--no-progress"])
    assert rc == 0
    baseline = root / "expert_baseline.json"
    assert main(["baseline", "save", str(run_dir), "-o", str(baseline)]) == 0
    return baseline


def _gated(run_dir: Path, policy: str, baseline: Path, *extra: str) -> int:
    return main(["run", "--policy", policy, "--episodes", str(PLAN), "--seed", "1", "--workers", "2",
                 "--run-dir", str(run_dir), "--no-progress", "--gate", str(baseline), *extra])


@pytest.mark.slow
def test_worse_policy_stops_early_with_exit_1_and_check_agrees(tmp_path, expert_baseline, capsys):
    run_dir = tmp_path / "noop"
    assert _gated(run_dir, "noop", expert_baseline) == 1
    out = capsys.readouterr().out
    assert "RESULT: REGRESSION (exit 1)" in out
    recorded = _count(run_dir)
    record = json.loads((run_dir / "gate.json").read_text())
    at_decision = record["result"]["episodes_at_decision"]
    # stopped at a look well before the plan; only episodes in flight on the other worker ran on
    assert at_decision < PLANNED and at_decision <= recorded <= at_decision + 1
    with capsys.disabled():
        print(f"\n[gate] noop vs expert baseline: decided after {at_decision}, recorded {recorded} of {PLANNED}")
    # the design is in the run record for audit: bounds per look, alpha, power, baseline hash
    run_json = json.loads((run_dir / "run.json").read_text())
    design = run_json["gate"]["design"]
    assert len(design["primary"]["efficacy"]) == len(design["look_episodes"]) and design["config"]["alpha"] == 0.05
    assert design["baseline"]["sha256"] and run_json["gate"]["result"]["decision"] == "regression"
    # `check` on the stopped folder applies the same design and gives the same verdict
    capsys.readouterr()
    assert main(["check", str(run_dir), "--baseline", str(expert_baseline)]) == 1
    assert "RESULT: REGRESSION (exit 1)" in capsys.readouterr().out
    # the table says it is a gated run and uses repeated CIs
    assert main(["table", str(run_dir)]) == 0
    table = capsys.readouterr().out
    assert f"stopped after {at_decision} of {PLANNED}" in table and "repeated confidence intervals" in table


@pytest.mark.slow
def test_same_policy_against_its_own_baseline_stops_early_with_exit_0_and_resumes(tmp_path, expert_baseline, capsys):
    run_dir = tmp_path / "expert_again"
    assert _gated(run_dir, "scripted", expert_baseline) == 0
    assert "RESULT: no regression (exit 0)" in capsys.readouterr().out
    record = json.loads((run_dir / "gate.json").read_text())
    at_decision, recorded = record["result"]["episodes_at_decision"], _count(run_dir)
    assert at_decision < PLANNED and recorded < PLANNED
    with capsys.disabled():
        print(f"\n[gate] expert vs own baseline: decided after {at_decision}, recorded {recorded} of {PLANNED}")
    # resuming with other gate options is refused: the stored design is what the verdict rests on
    assert _gated(run_dir, "scripted", expert_baseline, "--resume", "--max-drop", "0.1") == 2
    # --resume without --gate runs the rest of the plan; the sequential verdict stands
    rc = main(["run", "--policy", "scripted", "--episodes", str(PLAN), "--seed", "1", "--workers", "2",
               "--run-dir", str(run_dir), "--no-progress", "--resume"])
    assert rc == 0 and _count(run_dir) == PLANNED
    result = json.loads((run_dir / "gate.json").read_text())["result"]
    assert result["episodes_recorded"] == PLANNED and result["episodes_at_decision"] == at_decision
    capsys.readouterr()
    assert main(["check", str(run_dir), "--baseline", str(expert_baseline)]) == 0
    out = capsys.readouterr().out
    assert f"stopped after {at_decision} of {PLANNED}" in out and "do not change the verdict" in out


@pytest.mark.slow
def test_gate_input_errors_exit_2_before_any_episode(tmp_path, expert_baseline, capsys):
    assert main(["run", "--policy", "noop", "--alpha", "0.1", "--run-dir", str(tmp_path / "a"), "--no-progress"]) == 2
    assert "only apply to a gated run" in capsys.readouterr().err
    other = tmp_path / "mini.yaml"
    other.write_text("name: mini\nbackend: tabletop\ntasks: [pick_place_cube]\nepisodes_per_task: 2\nmax_steps: 40\n"
                     "cameras: [agentview]\nimage_size: [64, 64]\nsplits: [{name: in_domain}]\n")
    run_dir = tmp_path / "b"
    assert main(["run", "--suite", str(other), "--policy", "noop", "--run-dir", str(run_dir), "--no-progress",
                 "--gate", str(expert_baseline)]) == 2
    assert "different protocols" in capsys.readouterr().err
    assert _count(run_dir) == 0


@pytest.mark.slow
def test_report_labels_a_gated_run(tmp_path, expert_baseline):
    run_dir = tmp_path / "results" / "noop"
    assert _gated(run_dir, "noop", expert_baseline) == 1
    assert main(["report", str(tmp_path / "results"), "-o", str(tmp_path / "site")]) == 0
    md = (tmp_path / "site" / "index.md").read_text()
    assert "gated run" in md and "repeated CI" in md and f"of {PLANNED} planned" in md
