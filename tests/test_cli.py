"""End-to-end CLI tests: real rollouts on the built-in MuJoCo scenes through `vla-eval`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from vla_eval.cli.main import main
from vla_eval.store import RunStore


def _suite(tmp_path: Path, **overrides) -> Path:
    data = {
        "name": "mini",
        "backend": "tabletop",
        "tasks": ["pick_place_cube"],
        "episodes_per_task": 2,
        "max_steps": 40,
        "cameras": ["agentview"],
        "image_size": [64, 64],
        "splits": [{"name": "in_domain"}],
    }
    data.update(overrides)
    path = tmp_path / "mini.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _records(run_dir: Path):
    with RunStore(run_dir, readonly=True) as store:
        return list(store.records())


@pytest.mark.slow
def test_run_scripted_prints_table_and_stores_records(tmp_path, capsys):
    run_dir = tmp_path / "run"
    rc = main(
        [
            "run",
            "--suite",
            "tabletop_basic",
            "--policy",
            "scripted",
            "--episodes",
            "2",
            "--workers",
            "2",
            "--run-dir",
            str(run_dir),
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "suite mean" in out and "pick_place_cube" in out and "drop vs in_domain" in out
    recs = _records(run_dir)
    assert len(recs) == 3 * 2 * 2
    assert sum(r.success for r in recs) >= 10
    assert (run_dir / "table.md").read_text().startswith("| task")
    assert (run_dir / "run.json").exists()
    rc = main(["table", str(run_dir)])
    assert rc == 0 and "suite mean" in capsys.readouterr().out


@pytest.mark.slow
def test_same_records_with_one_and_two_workers(tmp_path):
    views = []
    for workers in (1, 2):
        run_dir = tmp_path / f"w{workers}"
        assert (
            main(
                [
                    "run",
                    "--suite",
                    "tabletop_basic",
                    "--policy",
                    "random",
                    "--episodes",
                    "2",
                    "--workers",
                    str(workers),
                    "--run-dir",
                    str(run_dir),
                    "--no-progress",
                ]
            )
            == 0
        )
        views.append([r.deterministic_view() for r in _records(run_dir)])
    assert views[0] == views[1]
    assert all(v["final_state_digest"] for v in views[0])


@pytest.mark.slow
def test_scripted_also_deterministic_across_workers(tmp_path):
    suite = _suite(tmp_path, tasks=["pick_place_cube", "push_block"], episodes_per_task=3, max_steps=200)
    views = []
    for workers in (1, 2):
        run_dir = tmp_path / f"w{workers}"
        assert (
            main(
                [
                    "run",
                    "--suite",
                    str(suite),
                    "--policy",
                    "scripted",
                    "--workers",
                    str(workers),
                    "--run-dir",
                    str(run_dir),
                    "--no-progress",
                ]
            )
            == 0
        )
        views.append([r.deterministic_view() for r in _records(run_dir)])
    assert views[0] == views[1]


@pytest.mark.slow
def test_resume_after_killed_run_skips_finished_episodes(tmp_path):
    suite = _suite(tmp_path, episodes_per_task=16, max_steps=60)
    run_dir = tmp_path / "run"
    # paced (the random baseline plus a wait per call), so that the run is still going when the test kills it
    policy = ["--policy", "_faulty:SlowRandomPolicy"]
    cmd = [
        sys.executable,
        "-m",
        "vla_eval",
        "run",
        "--suite",
        str(suite),
        *policy,
        "--workers",
        "2",
        "--run-dir",
        str(run_dir),
        "--no-progress",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 120
    done_before = 0
    while time.time() < deadline:
        time.sleep(0.2)
        if (run_dir / "episodes.sqlite").exists():
            with RunStore(run_dir, readonly=True) as store:
                done_before = store.count()
            if done_before >= 3:
                break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 3 <= done_before < 16
    first = {r.key: r for r in _records(run_dir)}

    rc = main(
        [
            "run",
            "--suite",
            str(suite),
            *policy,
            "--workers",
            "2",
            "--run-dir",
            str(run_dir),
            "--resume",
            "--no-progress",
        ]
    )
    assert rc == 0
    final = {r.key: r for r in _records(run_dir)}
    assert len(final) == 16
    for key, rec in first.items():
        assert final[key].wall_time_s == rec.wall_time_s  # not re-run

    # the same records as an uninterrupted run
    fresh = tmp_path / "fresh"
    assert (
        main(
            [
                "run",
                "--suite",
                str(suite),
                "--policy",
                "random",
                "--workers",
                "1",
                "--run-dir",
                str(fresh),
                "--no-progress",
            ]
        )
        == 0
    )
    assert [r.deterministic_view() for r in _records(fresh)] == [final[k].deterministic_view() for k in sorted(final)]


def test_rerun_into_finished_run_needs_resume_and_same_protocol(tmp_path, capsys):
    suite = _suite(tmp_path, episodes_per_task=1, max_steps=2)
    run_dir = tmp_path / "run"
    args = [
        "run",
        "--suite",
        str(suite),
        "--policy",
        "noop",
        "--workers",
        "1",
        "--run-dir",
        str(run_dir),
        "--no-progress",
    ]
    assert main(args) == 0
    assert main(args) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(args + ["--resume"]) == 0
    assert main(args[:-1] + ["--episodes", "1", "--seed", "5", "--resume", "--no-progress"]) == 2
    assert "different protocol" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["nan", "shape", "raise"])
def test_bad_policy_output_is_recorded_and_run_goes_on(tmp_path, mode):
    suite = _suite(tmp_path, episodes_per_task=3, max_steps=5)
    from vla_eval.execution.plan import build_plan
    from vla_eval.spec import load_suite

    bad_seed = build_plan(load_suite(str(suite)))[1].seed
    run_dir = tmp_path / "run"
    rc = main(
        [
            "run",
            "--suite",
            str(suite),
            "--policy",
            "_faulty:BadOutputPolicy",
            "--policy-arg",
            f"mode={mode}",
            "--policy-arg",
            f"bad_seeds=[{bad_seed}]",
            "--workers",
            "1",
            "--run-dir",
            str(run_dir),
            "--no-progress",
        ]
    )
    assert rc == 0
    recs = _records(run_dir)
    assert [r.termination for r in recs] == ["timeout", "policy_error", "timeout"]
    expected = {"nan": "NaN", "shape": "shape", "raise": "model exploded"}[mode]
    assert expected in recs[1].error


@pytest.mark.slow
def test_worker_crash_is_retried_once_then_recorded(tmp_path):
    suite = _suite(tmp_path, episodes_per_task=3, max_steps=5)
    from vla_eval.execution.plan import build_plan
    from vla_eval.spec import load_suite

    crash_seed = build_plan(load_suite(str(suite)))[1].seed
    once = tmp_path / "once"
    marker = tmp_path / "marker"
    assert (
        main(
            [
                "run",
                "--suite",
                str(suite),
                "--policy",
                "_faulty:CrashingPolicy",
                "--policy-arg",
                f"crash_seed={crash_seed}",
                "--policy-arg",
                f"marker={marker}",
                "--workers",
                "2",
                "--run-dir",
                str(once),
                "--no-progress",
            ]
        )
        == 0
    )
    recs = _records(once)
    assert [r.termination for r in recs] == ["timeout"] * 3
    assert [r.attempts for r in recs] == [1, 2, 1]

    always = tmp_path / "always"
    assert (
        main(
            [
                "run",
                "--suite",
                str(suite),
                "--policy",
                "_faulty:CrashingPolicy",
                "--policy-arg",
                f"crash_seed={crash_seed}",
                "--workers",
                "2",
                "--run-dir",
                str(always),
                "--no-progress",
            ]
        )
        == 0
    )
    recs = _records(always)
    assert [r.termination for r in recs] == ["timeout", "env_error", "timeout"]
    assert recs[1].attempts == 2
    assert "died" in recs[1].error


@pytest.mark.slow
def test_env_exception_is_env_error_and_run_goes_on(tmp_path, monkeypatch):
    suite = _suite(tmp_path, backend="_faulty:FaultyBackend", episodes_per_task=3, max_steps=5)
    from vla_eval.execution.plan import build_plan
    from vla_eval.spec import load_suite

    bad_seed = build_plan(load_suite(str(suite)))[0].seed
    monkeypatch.setenv("VLA_EVAL_TEST_BAD_SEED", str(bad_seed))
    run_dir = tmp_path / "run"
    assert (
        main(
            [
                "run",
                "--suite",
                str(suite),
                "--policy",
                "noop",
                "--workers",
                "1",
                "--run-dir",
                str(run_dir),
                "--no-progress",
            ]
        )
        == 0
    )
    recs = _records(run_dir)
    assert [r.termination for r in recs] == ["env_error", "timeout", "timeout"]
    assert "physics blow-up" in recs[0].error


def test_bad_yaml_names_file_and_field(tmp_path, capsys):
    suite = _suite(tmp_path, episodes_per_task=-1, max_steps="many")
    assert main(["run", "--suite", str(suite), "--policy", "noop", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert str(suite) in err and "episodes_per_task" in err and "max_steps" in err

    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    assert main(["run", "--suite", str(broken), "--policy", "noop"]) == 2
    assert "invalid YAML" in capsys.readouterr().err

    suite = _suite(tmp_path, tasks=["pick_place_cub"])
    assert main(["run", "--suite", str(suite), "--policy", "noop"]) == 2
    err = capsys.readouterr().err
    assert "tasks.0" in err and "pick_place_cube" in err

    suite = _suite(
        tmp_path,
        splits=[
            {"name": "in_domain"},
            {"name": "ood", "out_of_domain": True, "perturbations": [{"type": "lightning", "scale": 0.5}]},
        ],
    )
    assert main(["run", "--suite", str(suite), "--policy", "noop"]) == 2
    assert "splits.1.perturbations" in capsys.readouterr().err


def test_unknown_names_suggest(capsys):
    assert main(["run", "--suite", "tabletop_basc", "--policy", "noop"]) == 2
    assert "did you mean 'tabletop_basic'" in capsys.readouterr().err.lower()
    assert main(["run", "--suite", "tabletop_basic", "--policy", "scriptd"]) == 2
    assert "did you mean 'scripted'" in capsys.readouterr().err.lower()


@pytest.mark.slow
def test_videos_first_n(tmp_path):
    import imageio.v3 as iio

    suite = _suite(tmp_path, episodes_per_task=2, max_steps=10)
    run_dir = tmp_path / "run"
    assert (
        main(
            [
                "run",
                "--suite",
                str(suite),
                "--policy",
                "random",
                "--videos",
                "first:1",
                "--workers",
                "1",
                "--run-dir",
                str(run_dir),
                "--no-progress",
            ]
        )
        == 0
    )
    recs = _records(run_dir)
    assert recs[0].video_path and recs[1].video_path is None
    frames = iio.imread(run_dir / recs[0].video_path)
    assert frames.shape[0] == 6 and frames.shape[-1] == 3  # rendered on demand: every 2nd of 10 steps, and the first
    assert recs[0].extras["video_frame_stride"] == 2


def test_list_commands(capsys):
    assert main(["list", "suites"]) == 0
    assert "tabletop_basic" in capsys.readouterr().out
    assert main(["list", "policies"]) == 0
    assert "scripted" in capsys.readouterr().out
    assert main(["list", "envs"]) == 0
    out = capsys.readouterr().out
    assert "open_drawer" in out and "vla_eval/" in out
