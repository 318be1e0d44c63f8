"""Executor benchmarks, printed as ratios measured in one run on this machine.

1. Lock-step batching: a policy whose cost is per *call* (a fixed 20 ms, like a GPU
   forward pass that is cheap per extra sample) on --batch-envs 1 vs K.
2. Ray vs the local process executor on the same plan and worker count.

    python benchmarks/executors.py [--episodes 8] [--batch 4]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import yaml

from vla_eval.policies.baselines import RandomPolicy


class PerCallCostPolicy(RandomPolicy):
    """Random actions that cost a fixed 20 ms per predict call, whatever the batch size."""

    name = "per_call_cost"

    def predict(self, obs_batch, slots=None):
        time.sleep(0.02)
        return super().predict(obs_batch, slots)


class RenderingRandomPolicy(RandomPolicy):
    """Random actions from a policy that asks for images, so every step renders."""

    name = "random_rendering"
    needs_images = True


def _suite(tmp: Path, episodes: int, max_steps: int) -> Path:
    path = tmp / f"bench_{episodes}_{max_steps}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "bench_exec",
                "backend": "tabletop",
                "tasks": ["pick_place_cube", "push_block"],
                "episodes_per_task": episodes,
                "max_steps": max_steps,
                "cameras": ["agentview", "wrist"],
                "image_size": [128, 128],
            }
        )
    )
    return path


def _timed(**kwargs) -> tuple[float, int]:
    from vla_eval.execution.runner import RunRequest, run

    t0 = time.perf_counter()
    out = run(RunRequest(progress=False, **kwargs))
    steps = int(out.summary[out.summary["task"] != "suite mean"]["mean_steps"].mul(out.summary["n"]).sum())
    return time.perf_counter() - t0, steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=8)
    ap.add_argument("--batch", type=int, default=4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        suite = str(_suite(tmp, args.episodes, 60))
        policy = "executors:PerCallCostPolicy"
        rates = {}
        for k in (1, args.batch):
            wall, steps = _timed(suite=suite, policy=policy, workers=1, batch_envs=k, run_dir=tmp / f"b{k}")
            rates[k] = steps / wall
            print(f"[batching] batch_envs={k}: {steps} env-steps in {wall:.1f} s = {rates[k]:.1f} steps/s")
        print(f"[batching] batch_envs={args.batch} vs 1: {rates[args.batch] / rates[1]:.2f}x")

        walls = {}
        big = str(_suite(tmp, args.episodes * 2, 150))
        for executor in ("local", "ray"):
            wall, steps = _timed(
                suite=big,
                policy="executors:RenderingRandomPolicy",
                workers=2,
                executor=executor,
                run_dir=tmp / executor,
            )
            walls[executor] = wall
            print(f"[executor] {executor}: {steps} env-steps, {wall:.1f} s wall (incl. start-up)")
        print(f"[executor] ray vs local throughput: {walls['local'] / walls['ray']:.2f}x")


if __name__ == "__main__":
    main()
