"""Hostile-input regression tests (issue 13): each case once broke the harness.

Every test states what a user (or an attacker) does and what they must see. Cases that
could crash or compromise the test process itself (a segfault, ``os:abort``, a shell
command) run in a subprocess.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest
import yaml

from vla_eval.cli.main import main
from vla_eval.store import RunStore

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent


def _suite(tmp_path: Path, name: str = "mini", **overrides) -> Path:
    data = {
        "name": name,
        "backend": "tabletop",
        "tasks": ["pick_place_cube"],
        "episodes_per_task": 3,
        "max_steps": 5,
        "cameras": ["agentview"],
        "image_size": [32, 32],
        "splits": [{"name": "in_domain"}],
    }
    data.update(overrides)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _records(run_dir: Path):
    with RunStore(run_dir, readonly=True) as store:
        return list(store.records())


def _env(**extra) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(TESTS)]), MUJOCO_GL="egl", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def _cli(args: list[str], cwd: Path, timeout: float = 120, **env) -> subprocess.CompletedProcess:
    """``vla-eval ARGS`` in its own process group, so a run that hangs is killed with all its workers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "vla_eval", *args],
        cwd=cwd,
        env=_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"vla-eval {' '.join(args[:4])} ... did not finish within {timeout:g}s")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _bad_seed(suite: Path, index: int = 1) -> int:
    from vla_eval.execution.plan import build_plan
    from vla_eval.spec import load_suite

    return build_plan(load_suite(str(suite)))[index].seed


# ------------------------------------------------------------------ 1. wire format


_HOSTILE_DECODE = r"""
import sys, msgpack
from vla_eval.remote import protocol
frame = msgpack.packb({b"__ndarray__": True, b"data": b"\x41" * 16, b"dtype": "|O", b"shape": [2]})
assert len(frame) < 60, len(frame)
try:
    arr = protocol.unpackb(frame)
except ValueError as exc:
    print("REJECTED", exc)
    sys.exit(0)
print(repr(arr))  # touching an object array rebuilt from raw bytes dereferences 0x4141414141414141
sys.exit(5)
"""


def test_1_object_array_frame_is_rejected_not_rebuilt(tmp_path):
    """A 50-byte msgpack frame claiming an object array must be refused, not rebuilt (numpy segfaults on it)."""
    proc = subprocess.run(
        [sys.executable, "-c", _HOSTILE_DECODE], env=_env(), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "REJECTED" in proc.stdout, (proc.returncode, proc.stdout, proc.stderr[-500:])
    assert "not allowed" in proc.stdout


def test_1_shape_must_match_bytes_and_frames_are_capped():
    from vla_eval.remote import protocol

    lying = msgpack.packb({b"__ndarray__": True, b"data": b"\0" * 8, b"dtype": "<f8", b"shape": [1000, 1000]})
    with pytest.raises(ValueError, match="needs 8000000 bytes"):
        protocol.unpackb(lying)
    ok = protocol.packb({"a": np.arange(6, dtype=np.float32).reshape(2, 3)})
    np.testing.assert_array_equal(protocol.unpackb(ok)["a"], np.arange(6, dtype=np.float32).reshape(2, 3))
    with pytest.raises(ValueError, match="exceeds the limit"):
        protocol.unpackb(ok, max_frame_bytes=10)


_SERVER_SCRIPT = r"""
import msgpack, numpy as np
from websockets.sync.client import connect
from vla_eval.policies.baselines import NoopPolicy
from vla_eval.remote import protocol
from vla_eval.remote.server import PolicyServer

server = PolicyServer(NoopPolicy(), port=0)
server.start_in_thread()
with connect(server.url, max_size=None) as ws:
    ws.recv(timeout=10)  # metadata
    ws.send(msgpack.packb({b"__ndarray__": True, b"data": b"\x41" * 16, b"dtype": "|O", b"shape": [2]}))
    err = ws.recv(timeout=10)
    print("ERROR-FRAME", isinstance(err, str) and "not allowed" in err)
    obs = {
        "observation/state": np.zeros(8),
        "prompt": "pick up the cube",
        "observation/image": np.zeros((8, 8, 3), np.uint8),
    }
    ws.send(protocol.packb(obs))  # the same connection is still served
    reply = protocol.unpackb(ws.recv(timeout=10))
    print("SERVED", reply["actions"].shape[1] == 7)
server.shutdown()
"""

_CLIENT_SCRIPT = r"""
import threading, msgpack
from websockets.sync.server import serve
from vla_eval.remote.client import RemotePolicyClient, RemotePolicyError

def handler(ws):
    ws.send(msgpack.packb({}))
    ws.recv()
    ws.send(msgpack.packb({b"actions": {b"__ndarray__": True, b"data": b"\x41" * 16, b"dtype": "|O", b"shape": [2]}}))
    try:
        ws.recv()
    except Exception:
        pass

with serve(handler, "127.0.0.1", 0) as srv:
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    client = RemotePolicyClient(
        f"ws://127.0.0.1:{srv.socket.getsockname()[1]}", connect_timeout=5, request_timeout=5, max_retries=0
    )
    try:
        out = client.infer({"prompt": "x"})
        print(repr(out["actions"]))  # an object array of wild pointers: numpy crashes here
    except RemotePolicyError as exc:
        print("REFUSED", "malformed reply" in str(exc))
    client.close()
    srv.shutdown()
"""


def test_1_server_answers_a_hostile_frame_with_an_error_and_keeps_serving():
    pytest.importorskip("websockets")
    proc = subprocess.run(
        [sys.executable, "-c", _SERVER_SCRIPT], env=_env(), capture_output=True, text=True, timeout=60
    )
    assert "ERROR-FRAME True" in proc.stdout and "SERVED True" in proc.stdout, (
        proc.returncode,
        proc.stdout,
        proc.stderr[-1500:],
    )


def test_1_client_refuses_a_hostile_server_reply():
    """A hostile server must not crash the worker that talks to it."""
    pytest.importorskip("websockets")
    proc = subprocess.run(
        [sys.executable, "-c", _CLIENT_SCRIPT], env=_env(), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "REFUSED True" in proc.stdout, (proc.returncode, proc.stdout, proc.stderr[-1500:])


# ------------------------------------------------------------------ 2. timeouts


@pytest.mark.slow
def test_2_policy_that_never_answers_ends_its_episode_and_the_run_goes_on(tmp_path):
    suite = _suite(tmp_path)
    run_dir = tmp_path / "run"
    # old behaviour: the run never ends (the subprocess timeout turns that into a failure)
    proc = _cli(
        [
            "run",
            "--suite",
            str(suite),
            "--policy",
            "_hostile:HangingPolicy",
            "--policy-arg",
            f"bad_seeds=[{_bad_seed(suite)}]",
            "--policy-arg",
            "mode=hang",
            "--policy-timeout",
            "1",
            "--workers",
            "1",
            "--run-dir",
            str(run_dir),
            "--no-progress",
        ],
        tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    recs = _records(run_dir)
    assert [r.termination for r in recs] == ["timeout", "policy_timeout", "timeout"]
    assert "policy_timeout_s=1" in recs[1].error and not recs[1].success
    assert recs[1].steps == 0 and recs[1].policy_calls == 0  # stuck in its first predict
    assert "workers replaced: 1" in proc.stdout


@pytest.mark.slow
def test_2_call_stuck_in_c_holding_the_gil_is_killed_by_the_driver(tmp_path, monkeypatch):
    """The worker's watchdog thread cannot run while C code holds the GIL; the driver's backstop kills the worker."""
    from vla_eval.execution import executor

    monkeypatch.setattr(executor, "BACKSTOP_GRACE_S", 1.0)
    suite = _suite(tmp_path, episodes_per_task=2, max_steps=3)
    run_dir = tmp_path / "run"
    t = time.monotonic()
    rc = main(
        [
            "run",
            "--suite",
            str(suite),
            "--policy",
            "_hostile:HangingPolicy",
            "--policy-arg",
            "mode=gil",
            "--policy-arg",
            f"bad_seeds=[{_bad_seed(suite, 0)}]",
            "--policy-timeout",
            "1",
            "--workers",
            "1",
            "--run-dir",
            str(run_dir),
            "--no-progress",
        ]
    )
    assert rc == 0 and time.monotonic() - t < 240
    recs = _records(run_dir)
    assert [r.termination for r in recs] == ["policy_timeout", "timeout"]
    assert "killed by the driver" in recs[0].error


@pytest.mark.slow
def test_2_episode_wall_clock_limit(tmp_path):
    suite = _suite(tmp_path, episodes_per_task=2, max_steps=40)
    run_dir = tmp_path / "run"
    rc = main(
        [
            "run",
            "--suite",
            str(suite),
            "--policy",
            "_hostile:HangingPolicy",
            "--policy-arg",
            "mode=slow",
            "--policy-arg",
            f"bad_seeds=[{_bad_seed(suite, 0)}]",
            "--episode-timeout",
            "2",
            "--workers",
            "1",
            "--run-dir",
            str(run_dir),
            "--no-progress",
        ]
    )
    assert rc == 0
    recs = _records(run_dir)
    assert [r.termination for r in recs] == ["episode_timeout", "timeout"]
    # the record says how far the episode got before the limit (0.3 s per call, 2 s limit)
    assert 3 <= recs[0].steps < 40 and recs[0].policy_calls >= 3 and recs[0].policy_time_s > 0.9, recs[0]
    # a timed-out episode is a failure and counts as a policy error in the table
    md = (run_dir / "table.md").read_text()
    assert "0.0 [" in md
    from vla_eval.tables import summary_frame

    assert summary_frame(recs)["policy_errors"].iloc[0] == 1


# ------------------------------------------------------------------ 3. CLI values


def test_3_negative_replan_steps_is_refused_instead_of_looping_forever(tmp_path):
    proc = _cli(
        [
            "run",
            "--suite",
            str(_suite(tmp_path)),
            "--policy",
            "noop",
            "--replan-steps",
            "-1",
            "--workers",
            "1",
            "--no-progress",
        ],
        tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2 and "--replan-steps must be >= 1, got -1" in proc.stderr, proc.stderr[-2000:]


@pytest.mark.parametrize(
    "flag,value,expected",
    [
        ("--replan-steps", "0", "--replan-steps must be >= 1"),
        ("--workers", "0", "--workers must be >= 1"),
        ("--episodes", "0", "--episodes must be >= 1"),
    ],
)
def test_3_bad_numbers_are_refused_at_parse_time(tmp_path, capsys, flag, value, expected):
    with pytest.raises(SystemExit) as exc:
        main(
            ["run", "--suite", str(_suite(tmp_path)), "--policy", "noop", flag, value, "--run-dir", str(tmp_path / "r")]
        )
    assert exc.value.code == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_3_resume_of_a_missing_folder_is_refused(tmp_path, capsys):
    missing = tmp_path / "no_such_run"
    assert (
        main(["run", "--suite", str(_suite(tmp_path)), "--policy", "noop", "--run-dir", str(missing), "--resume"]) == 2
    )
    assert f"run folder {missing} does not exist" in capsys.readouterr().err
    assert not missing.exists()


_API_REPLAN = r"""
import sys
from vla_eval.errors import ConfigError
from vla_eval.execution.runner import RunRequest, run
try:
    run(RunRequest(suite=sys.argv[1], policy="noop", replan_steps=-1, workers=1, run_dir=sys.argv[2], progress=False))
except ConfigError as exc:
    print("REFUSED", exc)
"""


def test_3_api_refuses_a_negative_replan_too(tmp_path):
    """Through the Python API as well (in a subprocess: the old code loops forever)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _API_REPLAN, str(_suite(tmp_path)), str(tmp_path / "r")],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("run(replan_steps=-1) did not return")
    assert "REFUSED --replan-steps must be an integer >= 1, got -1" in out


@pytest.mark.slow
def test_3_complex_actions_are_a_policy_error(tmp_path):
    suite = _suite(tmp_path, episodes_per_task=2)
    run_dir = tmp_path / "run"
    assert (
        main(
            [
                "run",
                "--suite",
                str(suite),
                "--policy",
                "_hostile:OddOutputPolicy",
                "--policy-arg",
                "mode=complex",
                "--policy-arg",
                f"bad_seeds=[{_bad_seed(suite, 0)}]",
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
    assert [r.termination for r in recs] == ["policy_error", "timeout"]
    assert "complex" in recs[0].error


# ------------------------------------------------------------------ 4. path traversal


@pytest.mark.slow
def test_4_policy_name_cannot_escape_the_results_root(tmp_path):
    work = tmp_path / "a" / "b" / "c"
    work.mkdir(parents=True)
    pol = work / "evil.yaml"
    pol.write_text(yaml.safe_dump({"name": "x/../../../trav/evil", "adapter": "noop"}))
    root = work / "results"
    rc = main(
        [
            "run",
            "--suite",
            str(_suite(tmp_path, episodes_per_task=1)),
            "--policy",
            str(pol),
            "--workers",
            "1",
            "--results-root",
            str(root),
            "--no-progress",
        ]
    )
    assert rc == 0
    runs = [p for p in root.iterdir() if p.is_dir()]
    assert len(runs) == 1 and (runs[0] / "episodes.sqlite").is_file()
    assert "/" not in runs[0].name and ".." not in runs[0].name
    assert not any(p.name == "trav" for p in tmp_path.rglob("trav"))


# ------------------------------------------------------------------ 5. code execution by file placement


def test_5_cwd_file_cannot_shadow_a_builtin_policy_or_run_a_shell_command(tmp_path):
    (tmp_path / "policies").mkdir()
    marker = tmp_path / "pwned"
    (tmp_path / "policies" / "scripted.yaml").write_text(
        yaml.safe_dump({"adapter": "os:system", "args": {"command": f"touch {marker}"}})
    )
    suite = _suite(tmp_path, episodes_per_task=1)
    proc = _cli(["run", "--suite", str(suite), "--policy", "scripted", "--workers", "1", "--no-progress"], tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert (
        str(tmp_path / "policies" / "scripted.yaml") in proc.stderr
        and "shadows the registered policy 'scripted'" in proc.stderr
    )
    assert "vla_eval.sims.tabletop.expert:ScriptedExpert" in proc.stderr
    # named explicitly, the file is still refused before os.system is called
    proc = _cli(
        ["run", "--suite", str(suite), "--policy", "policies/scripted.yaml", "--workers", "1", "--no-progress"],
        tmp_path,
    )
    assert proc.returncode == 2 and "not a vla_eval.adapter.Policy subclass" in proc.stderr, proc.stderr[-2000:]
    assert "policies/scripted.yaml: field 'adapter'" in proc.stderr
    assert not marker.exists()


def test_5_cwd_suite_cannot_shadow_a_builtin_suite(tmp_path):
    (tmp_path / "suites").mkdir()
    shadow = _suite(tmp_path / "suites", name="tabletop_basic")
    proc = _cli(["run", "--suite", "tabletop_basic", "--policy", "noop", "--no-progress"], tmp_path)
    assert proc.returncode == 2
    assert (
        str(shadow) in proc.stderr
        and "tabletop_basic.yaml" in proc.stderr
        and "shadows the built-in suite" in proc.stderr
    )


def test_5_suite_backend_os_abort_is_refused(tmp_path):
    suite = _suite(tmp_path, backend="os:abort")
    proc = _cli(["run", "--suite", str(suite), "--policy", "noop", "--no-progress"], tmp_path)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert str(suite) in proc.stderr and "not a vla_eval.backends.Backend subclass" in proc.stderr


# ------------------------------------------------------------------ 6. the CI gate


def _fixture_run(
    root: Path, name: str, cells: dict, terminations: dict | None = None, plan: dict | None = None
) -> Path:
    """A run folder holding ``cells[(task, split)] = (successes, episodes)`` of a suite planning ``plan``
    (default: ``cells``)."""
    from vla_eval.record import EpisodeRecord

    tasks = list(dict.fromkeys(t for t, _ in plan or cells))
    splits = list(dict.fromkeys(s for _, s in plan or cells))
    suite = {
        "name": "s",
        "backend": "tabletop",
        "tasks": [{"name": t, "max_steps": None} for t in tasks],
        "splits": [
            {"name": s, "out_of_domain": i > 0, "perturbations": [{"kind": "x"}] if i else []}
            for i, s in enumerate(splits)
        ],
        "episodes_per_task": 10,
        "max_steps": 50,
        "settle_steps": 0,
        "image_size": [32, 32],
    }
    config = {"run_id": name, "suite": suite, "suite_hash": "h", "policy": {"name": "p", "adapter": "noop", "args": {}}}
    run = root / name
    with RunStore(run) as store:
        store.set_meta("run_id", name)
        store.set_meta("config", config)
        for (task, split), (k, n) in cells.items():
            term = (terminations or {}).get((task, split), "timeout")
            for i in range(n):
                ok = i < k
                store.add(
                    EpisodeRecord(
                        run_id=name,
                        suite="s",
                        task=task,
                        split=split,
                        episode_index=i,
                        init_state_id=i,
                        seed=i,
                        success=ok,
                        steps=5,
                        termination="success" if ok else term,
                    )
                )
    return run


def test_6_all_policy_error_run_never_passes_against_a_zero_baseline(tmp_path, capsys):
    cells = {("t1", "in_domain"): (0, 10), ("t2", "in_domain"): (0, 10)}
    base = _fixture_run(tmp_path, "base", cells)
    assert main(["baseline", "save", str(base), "-o", str(tmp_path / "b.json")]) == 0
    broken = _fixture_run(tmp_path, "broken", cells, {c: "policy_error" for c in cells})
    capsys.readouterr()
    assert main(["check", str(broken), "--baseline", str(tmp_path / "b.json")]) == 4
    out = capsys.readouterr().out
    assert "20 of 20 episodes (100%)" in out and "exit 4" in out


def test_6_partial_run_never_passes(tmp_path, capsys):
    cells = {(t, s): (5, 10) for t in ("t1", "t2", "t3") for s in ("in_domain", "ood")}
    base = _fixture_run(tmp_path, "base", cells)
    assert main(["baseline", "save", str(base), "-o", str(tmp_path / "b.json")]) == 0
    partial = _fixture_run(tmp_path, "partial", {("t1", "in_domain"): (5, 10)}, plan=cells)
    capsys.readouterr()
    assert main(["check", str(partial), "--baseline", str(tmp_path / "b.json")]) == 3
    out = capsys.readouterr().out
    assert "run incomplete: 5 task/split cells have no episodes" in out and "exit 3" in out
    assert main(["check", str(partial), "--baseline", str(tmp_path / "b.json"), "--allow-incomplete"]) == 0


def test_6_exit_codes_are_documented():
    text = (ROOT / "docs" / "results.md").read_text()
    for code, words in ((3, "incomplete"), (4, "error rate")):
        assert f"| {code} |" in text and words in text


# ------------------------------------------------------------------ 7 & 8. odd policy outputs, same on every executor


ODD = ["list", "space_none", "parse_failure_text"]


@pytest.mark.slow
def test_8_odd_outputs_are_policy_errors_without_worker_restarts(tmp_path):
    from vla_eval.execution.runner import RunRequest, run

    suite = _suite(tmp_path, episodes_per_task=2)
    for mode in ODD:
        run_dir = tmp_path / mode
        out = run(
            RunRequest(
                suite=str(suite),
                policy="_hostile:OddOutputPolicy",
                workers=1,
                run_dir=run_dir,
                progress=False,
                policy_args=[f"mode={mode}", f"bad_seeds=[{_bad_seed(suite, 0)}]"],
            )
        )
        recs = _records(run_dir)
        assert [r.termination for r in recs] == ["policy_error", "timeout"], mode
        assert "invalid policy output" in recs[0].error
        assert out.execution.worker_deaths == 0 and all(r.attempts == 1 for r in recs), mode


def _numpy_extras_run(tmp_path: Path, executor: str) -> list:
    suite = _suite(tmp_path, episodes_per_task=2)
    run_dir = tmp_path / executor
    proc = _cli(
        [
            "run",
            "--suite",
            str(suite),
            "--policy",
            "_hostile:OddOutputPolicy",
            "--policy-arg",
            "mode=numpy_extras",
            "--workers",
            "1",
            "--executor",
            executor,
            "--run-dir",
            str(run_dir),
            "--no-progress",
        ],
        tmp_path,
        timeout=180,
        RAY_USAGE_STATS_ENABLED="0",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return _records(run_dir)


@pytest.mark.slow
def test_8_numpy_and_unserialisable_extras_are_stored_as_json(tmp_path):
    recs = _numpy_extras_run(tmp_path, "local")
    assert [r.termination for r in recs] == ["timeout", "timeout"] and all(r.attempts == 1 for r in recs)
    assert recs[0].extras["logits"][0] == [0.0, 1.0, 2.0] and recs[0].extras["step"][0] == 2
    assert "lock" in recs[0].extras["handle"][0]


@pytest.mark.slow
def test_7_ray_records_the_same_as_local_on_bad_extras(tmp_path):
    pytest.importorskip("ray")
    local = _numpy_extras_run(tmp_path, "local")
    ray_recs = _numpy_extras_run(tmp_path, "ray")
    assert [r.deterministic_view() for r in ray_recs] == [r.deterministic_view() for r in local]
    assert [r.extras["logits"] for r in ray_recs] == [r.extras["logits"] for r in local]


# ------------------------------------------------------------------ 9. memory


@pytest.mark.slow
def test_9_worker_over_its_memory_limit_is_recycled_between_episodes(tmp_path):
    from vla_eval.execution.runner import RunRequest, run

    suite = _suite(tmp_path, episodes_per_task=2)
    run_dir = tmp_path / "run"
    # the policy keeps 400 MB more alive per episode; an idle worker is far below 350 MB
    out = run(
        RunRequest(
            suite=str(suite),
            policy="_hostile:LeakyPolicy",
            policy_args=["mb=400"],
            workers=1,
            run_dir=run_dir,
            progress=False,
            max_worker_rss_mb=350,
        )
    )
    recs = _records(run_dir)
    assert [r.termination for r in recs] == ["timeout"] * 2
    pids = [r.extras["pid"][0] for r in recs]
    assert len(set(pids)) == 2, (pids, [r.extras["rss_mb"] for r in recs])  # a fresh worker for every episode
    assert len(out.execution.recycled) >= 1 and "max_worker_rss_mb=350" in out.execution.recycled[0]
    assert out.execution.worker_deaths == 0


# ------------------------------------------------------------------ 10. one writer per run folder


def test_10_second_run_on_a_locked_folder_refuses(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    fd = os.open(run_dir / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running `vla-eval run` holds
    try:
        rc = main(
            [
                "run",
                "--suite",
                str(_suite(tmp_path, episodes_per_task=1)),
                "--policy",
                "noop",
                "--workers",
                "1",
                "--run-dir",
                str(run_dir),
                "--no-progress",
            ]
        )
    finally:
        os.close(fd)
    assert rc == 2
    assert f"run folder {run_dir} is in use by another vla-eval run" in capsys.readouterr().err
    assert not (run_dir / "episodes.sqlite").exists()


# ------------------------------------------------------------------ 11. paths that are not what they should be


def test_11_run_folder_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "afile"
    target.write_text("x")
    suite = _suite(tmp_path, episodes_per_task=1)
    assert main(["run", "--suite", str(suite), "--policy", "noop", "--run-dir", str(target), "--no-progress"]) == 2
    assert f"run folder {target} exists and is not a folder" in capsys.readouterr().err
    assert (
        main(["run", "--suite", str(suite), "--policy", "noop", "--run-dir", str(target / "sub"), "--no-progress"]) == 2
    )
    assert f"cannot create run folder {target / 'sub'}" in capsys.readouterr().err


def test_11_unwritable_run_folder(tmp_path, capsys):
    suite = str(_suite(tmp_path))
    if os.geteuid() == 0:  # root writes through permission bits; sysfs refuses even root
        target = Path("/sys/vla_eval_h13_run")
        assert main(["run", "--suite", suite, "--policy", "noop", "--run-dir", str(target), "--no-progress"]) == 2
        assert f"cannot create run folder {target}: Operation not permitted" in capsys.readouterr().err
        return
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert main(["run", "--suite", suite, "--policy", "noop", "--run-dir", str(ro), "--no-progress"]) == 2
    finally:
        ro.chmod(0o755)
    assert f"run folder {ro} is not writable" in capsys.readouterr().err


def test_11_suite_file_of_random_bytes(tmp_path, capsys):
    junk = tmp_path / "junk.yaml"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert main(["run", "--suite", str(junk), "--policy", "noop"]) == 2
    err = capsys.readouterr().err
    assert str(junk) in err and "not a text (UTF-8) YAML file" in err


# ------------------------------------------------------------------ 12. broken stores in a results root


def test_12_corrupt_or_empty_store_is_skipped_with_a_warning(tmp_path, capsys):
    root = tmp_path / "results"
    _fixture_run(root, "good", {("t1", "in_domain"): (3, 5)})
    (root / "empty").mkdir()
    (root / "empty" / "episodes.sqlite").write_bytes(b"")
    (root / "corrupt").mkdir()
    (root / "corrupt" / "episodes.sqlite").write_bytes(b"SQLite format 3\0" + os.urandom(2000))
    assert main(["runs", str(root)]) == 0
    cap = capsys.readouterr()
    assert "good" in cap.out
    assert str(root / "empty" / "episodes.sqlite") in cap.err and str(root / "corrupt" / "episodes.sqlite") in cap.err
    pytest.importorskip("matplotlib")
    assert main(["report", str(root), "-o", str(tmp_path / "site")]) == 0
    cap = capsys.readouterr()
    assert "(1 runs" in cap.out and str(root / "corrupt" / "episodes.sqlite") in cap.err


# ------------------------------------------------------------------ 13. a user module that fails to import


def test_13_user_module_import_error_is_shown(tmp_path, capsys, monkeypatch):
    (tmp_path / "mypolicy_h13.py").write_text("import definitely_not_installed_dep_h13\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["run", "--suite", str(_suite(tmp_path)), "--policy", "mypolicy_h13:MyPolicy", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "definitely_not_installed_dep_h13" in err and "unknown policy" not in err
    assert "importing module 'mypolicy_h13' failed: ModuleNotFoundError" in err


# ------------------------------------------------------------------ 14. parse_output never raises


def test_14_parse_output_survives_deep_nesting():
    from vla_eval.policies.vla_r1 import parse_output

    for text in ("<output>" + "[" * 100000 + "</output>", "<output>" + '{"a":' * 50000 + "</output>", "[" * 100000):
        parsed = parse_output(text)
        assert parsed.error


# ------------------------------------------------------------------ 15. offline start


@pytest.mark.parametrize("how", ["offline_flag", "unreachable_hub"])
def test_15_hub_id_without_network_fails_in_seconds_with_the_fix(tmp_path, how):
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    if how == "offline_flag":
        env["HF_HUB_OFFLINE"] = "1"
    else:
        env["HF_ENDPOINT"] = "http://127.0.0.1:9"  # discard port: nothing listens
        env.pop("HF_HUB_OFFLINE", None)
    t = time.monotonic()
    proc = _cli(
        [
            "run",
            "--suite",
            str(_suite(tmp_path)),
            "--policy",
            "vla_r1",
            "--policy-arg",
            "checkpoint=some-org/some-vla-model",
            "--workers",
            "1",
            "--no-progress",
        ],
        tmp_path,
        timeout=120,
        **env,
    )
    elapsed = time.monotonic() - t
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "some-org/some-vla-model" in proc.stderr and "--policy-arg checkpoint=DIR" in proc.stderr
    assert "huggingface-cli download some-org/some-vla-model" in proc.stderr
    assert elapsed < 60, elapsed  # seconds, not a minute of retries per worker (generous: CI machines are busy)


# ------------------------------------------------------------------ early stop for a dead policy


@pytest.mark.slow
def test_dead_policy_stops_the_run_early_with_a_verdict(tmp_path, capsys):
    suite = _suite(tmp_path, episodes_per_task=8)
    run_dir = tmp_path / "run"
    rc = main(
        [
            "run",
            "--suite",
            str(suite),
            "--policy",
            "_hostile:AlwaysRaises",
            "--stop-if-dead",
            "3",
            "--workers",
            "1",
            "--run-dir",
            str(run_dir),
            "--no-progress",
        ]
    )
    assert rc == 3
    err = capsys.readouterr().err
    assert (
        "stopped early: the first 3 episodes all ended in a policy failure" in err
        and "checkpoint produces garbage" in err
    )
    recs = _records(run_dir)
    assert 3 <= len(recs) < 8 and all(r.termination == "policy_error" for r in recs)
    # the verdict is a choice: with 0 the whole plan runs
    assert (
        main(
            [
                "run",
                "--suite",
                str(suite),
                "--policy",
                "_hostile:AlwaysRaises",
                "--stop-if-dead",
                "0",
                "--workers",
                "1",
                "--run-dir",
                str(run_dir),
                "--resume",
                "--no-progress",
            ]
        )
        == 0
    )
    assert len(_records(run_dir)) == 8
