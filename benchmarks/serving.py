"""Serving benchmark: one batching policy server for N env workers vs N in-process policies.

(a) N = 1, 2, 4, 8 env workers on the tabletop suite, each either holding its own policy
    (``vla-eval run --workers N``) or all sharing one server (``--policy-server auto``),
    for two policies whose cost is per call:
    * ``fixed_latency`` (50 ms per ``predict`` whatever the batch: a GPU forward pass with
      no GPU), state-only so nothing is rendered;
    * VLA-R1 code path on the tiny random Qwen2.5-VL the tests build (CPU-bound here),
      querying the model on every call (``retry_after_steps=1``), depth + one 64x64 camera.
    Printed: episodes/s and env steps/s in steady state (each worker's steps over its own
    episode wall time, summed over workers; start-up excluded), the full wall time
    including worker / server start-up, and the server's mean batch size.
(b) The server's added latency per request at batch 1: ``RemotePolicy.predict`` against a
    ``vla-eval serve --policy noop`` process vs ``NoopPolicy.predict`` called directly,
    for a state-only observation and one with two 128x128 images.

    nice -n 10 python benchmarks/serving.py [--workers 1,2,4,8] [--episodes-per-worker 2] [--steps 30] [--skip-qwen]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _suite(tmp: Path, name: str, episodes: int, max_steps: int, cameras: list[str], size: int) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "backend": "tabletop",
                "tasks": ["pick_place_cube"],
                "episodes_per_task": episodes,
                "max_steps": max_steps,
                "cameras": cameras,
                "image_size": [size, size],
                "splits": [{"name": "in_domain"}],
            }
        )
    )
    return path


def _mean_batch(run_dir: Path) -> float | None:
    log = run_dir / "policy_server.log"
    if not log.exists():
        return None
    for line in log.read_text().splitlines():
        if "mean batch" in line:
            return float(line.rsplit("mean batch", 1)[1].strip(" )"))
    return None


def _run(suite: Path, policy: str, policy_args: list[str], workers: int, server: bool, run_dir: Path) -> dict:
    from vla_eval.execution.runner import RunRequest, run
    from vla_eval.store import RunStore

    t0 = time.perf_counter()
    run(
        RunRequest(
            suite=str(suite),
            policy=policy,
            policy_args=policy_args,
            workers=workers,
            run_dir=run_dir,
            policy_server="auto" if server else "none",
            progress=False,
        )
    )
    wall = time.perf_counter() - t0
    with RunStore(run_dir, readonly=True) as store:
        recs = list(store.records())
    bad = [r for r in recs if r.termination in ("policy_error", "env_error")]
    if bad:
        raise SystemExit(f"{run_dir}: {len(bad)} failed episodes, e.g. {bad[0].error}")
    steps = sum(r.steps for r in recs)
    ep_time = float(np.mean([r.wall_time_s for r in recs]))
    step_rate = float(np.mean([r.steps / r.wall_time_s for r in recs]))
    return {
        "wall": wall,
        "steps": steps,
        "episodes": len(recs),
        "eps_per_s": workers / ep_time,
        "steps_per_s": workers * step_rate,
        "mean_batch": _mean_batch(run_dir) if server else None,
    }


def part_a(tmp: Path, ns: list[int], per_worker: int, steps: int, skip_qwen: bool) -> list[str]:
    setups = [("fixed_latency 50 ms", "fixed_latency", ["latency_ms=50"], [], 64)]
    if not skip_qwen:
        sys.path.insert(0, str(ROOT / "tests" / "policies"))
        from tiny_models import build_tiny_qwen

        ckpt = build_tiny_qwen(tmp / "tiny_qwen")
        setups.append(
            (
                "tiny Qwen2.5-VL (vla_r1)",
                "vla_r1",
                [f"checkpoint={ckpt}", "max_new_tokens=8", "retry_after_steps=1", "max_queries=100000"],
                ["agentview"],
                64,
            )
        )
    rows = [
        "| policy | workers | layout | episodes/s | env steps/s | vs 1 worker | mean batch "
        "| wall incl. start-up (s) | load avg |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, policy, args, cameras, size in setups:
        base: dict[str, float] = {}
        for n in ns:
            suite = _suite(tmp, f"serve_{policy}_{n}", per_worker * n, steps, cameras, size)
            for server in (False, True):
                layout = "one server" if server else "in-process"
                load = os.getloadavg()[0]
                res = _run(suite, policy, args, n, server, tmp / f"{policy}_{n}_{int(server)}")
                base.setdefault(layout, res["steps_per_s"])
                ratio = res["steps_per_s"] / base[layout]
                mb = f"{res['mean_batch']:.2f}" if res["mean_batch"] is not None else "-"
                line = (
                    f"| {label} | {n} | {layout} | {res['eps_per_s']:.3f} | {res['steps_per_s']:.1f} "
                    f"| {ratio:.2f}x | {mb} "
                    f"| {res['wall']:.1f} | {load:.1f} |"
                )
                print(line, flush=True)
                rows.append(line)
    return rows


def _obs(images: bool) -> dict:
    obs = {
        "state": {
            "eef_pos": np.array([0.1, 0.2, 0.3]),
            "eef_quat": np.array([1.0, 0, 0, 0]),
            "gripper_qpos": np.array([0.04, -0.04]),
        },
        "instruction": "pick up the red cube",
    }
    if images:
        rng = np.random.default_rng(0)
        obs["images"] = {c: rng.integers(0, 255, (128, 128, 3), dtype=np.uint8) for c in ("agentview", "wrist")}
    return obs


def _latency(fn, n: int) -> tuple[float, float]:
    for _ in range(20):
        fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.mean(times)) * 1000, float(np.median(times)) * 1000


def part_b(tmp: Path, calls: int) -> list[str]:
    from vla_eval.policies import POLICIES
    from vla_eval.policies.baselines import NoopPolicy

    port_file = tmp / "noop.port"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vla_eval", "serve", "--policy", "noop", "--port", "0", "--port-file", str(port_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rows = [
        "| observation | direct call mean (ms) | through server mean / median (ms) | added per request (ms) |",
        "|---|---|---|---|",
    ]
    try:
        deadline = time.time() + 60
        while not port_file.exists():
            if time.time() > deadline or proc.poll() is not None:
                raise SystemExit("noop server did not start")
            time.sleep(0.05)
        port = int(port_file.read_text())
        for images in (False, True):
            obs = _obs(images)
            direct = NoopPolicy()
            remote = POLICIES.create("remote", port=port, send_reset=True, needs_images=images)
            remote.reset([obs["instruction"]], seeds=[0])
            d_mean, _ = _latency(lambda: direct.predict([obs]), calls)
            r_mean, r_med = _latency(lambda: remote.predict([obs]), calls)
            remote.close()
            label = "two 128x128 images + state" if images else "state only"
            line = f"| {label} | {d_mean:.3f} | {r_mean:.3f} / {r_med:.3f} | {r_mean - d_mean:.3f} |"
            print(line, flush=True)
            rows.append(line)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", default="1,2,4,8")
    ap.add_argument("--episodes-per-worker", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--skip-qwen", action="store_true")
    ap.add_argument("--skip-a", action="store_true")
    ap.add_argument("--skip-b", action="store_true")
    args = ap.parse_args()
    ns = [int(x) for x in args.workers.split(",")]
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print("\n(b) added latency at batch 1", flush=True)
        b = [] if args.skip_b else part_b(tmp, args.calls)
        a = [] if args.skip_a else part_a(tmp, ns, args.episodes_per_worker, args.steps, args.skip_qwen)
    print("\n(a) env workers through one batching server vs each with its own policy\n")
    print("\n".join(a))
    print("\n(b) server's added latency per request at batch 1\n")
    print("\n".join(b))


if __name__ == "__main__":
    main()
