"""The Ray executor against a real local Ray head on loopback, with an actor killed mid-run."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ray = pytest.importorskip("ray")

from vla_eval.cli.main import main  # noqa: E402
from vla_eval.store import RunStore  # noqa: E402

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    ray_bin = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
    port = _free_port()
    tests_dir = str(Path(__file__).parents[1])  # actors import the test doubles in tests/_faulty.py
    env = {
        **os.environ,
        "RAY_USAGE_STATS_ENABLED": "0",
        "PYTHONPATH": os.pathsep.join(p for p in (tests_dir, os.environ.get("PYTHONPATH", "")) if p),
    }
    subprocess.run(
        [
            ray_bin,
            "start",
            "--head",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
        ],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )
    yield f"127.0.0.1:{port}"
    subprocess.run(
        [ray_bin, "stop", "--force"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120
    )


def _suite(tmp_path: Path, episodes: int) -> Path:
    path = tmp_path / "ray_suite.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "ray_mini",
                "backend": "tabletop",
                "tasks": ["pick_place_cube", "push_block"],
                "episodes_per_task": episodes,
                "max_steps": 60,
                "cameras": ["agentview"],
                "image_size": [64, 64],
            }
        )
    )
    return path


def _with_test_doubles() -> dict:
    """A child environment whose imports see tests/_faulty.py (the driver loads the policy too)."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
    }


def _views(run_dir: Path):
    with RunStore(run_dir, readonly=True) as store:
        return [r.deterministic_view() for r in store.records()], list(store.records())


def test_ray_run_with_killed_actor_matches_local(tmp_path, ray_head):
    suite = _suite(tmp_path, episodes=8)
    local = tmp_path / "local"
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
                str(local),
                "--no-progress",
            ]
        )
        == 0
    )

    run_dir = tmp_path / "ray"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vla_eval",
            "run",
            "--suite",
            str(suite),
            "--policy",
            "_faulty:SlowRandomPolicy",
            "--workers",
            "2",
            "--executor",
            "ray",
            "--ray-address",
            ray_head,
            "--run-dir",
            str(run_dir),
            "--no-progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_with_test_doubles(),
    )
    killed = None
    deadline = time.time() + 180
    while time.time() < deadline and killed is None and proc.poll() is None:
        time.sleep(0.3)
        if not (run_dir / "episodes.sqlite").exists():
            continue
        with RunStore(run_dir, readonly=True) as store:
            if store.count() < 2:
                continue
        pids = subprocess.run(["pgrep", "-f", "_EnvActor"], capture_output=True, text=True).stdout.split()
        if pids:
            killed = int(pids[0])
            os.kill(killed, signal.SIGKILL)
    out, _ = proc.communicate(timeout=300)
    assert killed is not None, out
    assert proc.returncode == 0, out
    assert "retried after a worker died" in out

    ray_views, ray_records = _views(run_dir)
    local_views, _ = _views(local)
    assert ray_views == local_views
    assert any(r.attempts == 2 for r in ray_records)


def test_batched_envs_match_unbatched(tmp_path):
    suite = _suite(tmp_path, episodes=3)
    local = tmp_path / "local"
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
                str(local),
                "--no-progress",
            ]
        )
        == 0
    )
    batched = tmp_path / "batched"
    assert (
        main(
            [
                "run",
                "--suite",
                str(suite),
                "--policy",
                "random",
                "--workers",
                "2",
                "--batch-envs",
                "3",
                "--run-dir",
                str(batched),
                "--no-progress",
            ]
        )
        == 0
    )
    assert _views(batched)[0] == _views(local)[0]


def test_unreachable_address_fails_fast(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)  # the driver sets it for an explicit address; undo after
    suite = _suite(tmp_path, episodes=1)
    t0 = time.time()
    rc = main(
        [
            "run",
            "--suite",
            str(suite),
            "--policy",
            "noop",
            "--executor",
            "ray",
            "--ray-address",
            f"127.0.0.1:{_free_port()}",
            "--run-dir",
            str(tmp_path / "r"),
            "--no-progress",
        ]
    )
    assert rc == 2
    assert "no Ray cluster reachable" in capsys.readouterr().err
    assert time.time() - t0 < 30


def test_ray_policy_server_actor_restarted_after_crash(tmp_path, ray_head):
    """--policy-server auto under Ray: the server is one named actor; it dies once (the served policy
    kills its process when one episode starts), a new actor replaces it, env actors find it by name,
    and only the episodes in flight are rerun."""
    suite = _suite(tmp_path, episodes=2)
    from vla_eval.execution.plan import build_plan
    from vla_eval.spec import load_suite

    plan = build_plan(load_suite(str(suite)))
    crash_seed = plan[1].seed
    run_dir, marker = tmp_path / "ray", tmp_path / "crashed"
    # a fresh process: Ray reads its auth mode when first imported, and this test module imported it already
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vla_eval",
            "run",
            "--suite",
            str(suite),
            "--policy",
            "_faulty:ServerCrashingPolicy",
            "--policy-arg",
            f"crash_seed={crash_seed}",
            "--policy-arg",
            f"marker={marker}",
            "--workers",
            "2",
            "--executor",
            "ray",
            "--ray-address",
            ray_head,
            "--policy-server",
            "auto",
            "--run-dir",
            str(run_dir),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=_with_test_doubles(),
    )
    logs = proc.stdout + proc.stderr[-3000:]
    assert proc.returncode == 0, logs
    assert marker.exists() and "policy server actor died" in proc.stderr  # it really died and was replaced
    views, records = _views(run_dir)
    assert sorted((v["seed"], v["termination"], v["steps"]) for v in views) == sorted(
        (i.seed, "timeout", 60) for i in plan
    ), logs
    assert [r.attempts for r in records if r.seed == crash_seed] == [2]
