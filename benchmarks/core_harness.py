"""Core-harness benchmarks, printed as ratios measured in one run on this machine.

1. Harness overhead: env-steps/s of raw ``mujoco.mj_step`` x substeps + rendering the same
   cameras of the same compiled scene, vs the Gymnasium env's ``step`` (adds differential
   IK, observation assembly), vs the full harness episode loop (``run_episode`` with a no-op
   policy: adds policy call, validation, action conversion, bookkeeping).
2. Worker scaling: episodes/s of the local executor with 2 workers vs 1 on the same plan.

    python benchmarks/core_harness.py [--steps 400] [--episodes 12] [--image 128]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("LP_NUM_THREADS", "1")

import mujoco
import numpy as np


def raw_steps_per_s(env, steps: int, cameras: tuple[str, ...], size: tuple[int, int], controller: bool) -> float:
    """Physics substeps + one render per camera per control step (+ the arm's IK controller if asked)."""
    base = env.unwrapped
    model, data = base.model, base.data
    renderer = mujoco.Renderer(model, size[0], size[1]) if cameras else None
    substeps = base.n_substeps
    eef = base._eef
    t0 = time.perf_counter()
    for _ in range(steps):
        if controller:
            target_pos = data.site_xpos[eef].copy()
            target_mat = data.site_xmat[eef].reshape(3, 3).copy()
            data.ctrl[:7] = base.ik.solve(data.qpos, target_pos, target_mat)
        mujoco.mj_step(model, data, nstep=substeps)
        for cam in cameras:
            renderer.update_scene(data, camera=cam)
            renderer.render()
    elapsed = time.perf_counter() - t0
    if renderer:
        renderer.close()
    return steps / elapsed


def env_steps_per_s(env, steps: int) -> float:
    action = np.zeros(7, dtype=np.float32)
    action[-1] = -1
    t0 = time.perf_counter()
    for _ in range(steps):
        env.step(action)
    return steps / (time.perf_counter() - t0)


def harness_steps_per_s(env, steps: int) -> float:
    from vla_eval.execution.plan import PlanItem
    from vla_eval.execution.rollout import EpisodeSettings, run_episode
    from vla_eval.policies.baselines import NoopPolicy

    settings = EpisodeSettings(
        run_id="bench", suite="bench", max_steps={"t": steps}, settle_steps=0, settle_action=(0, 0, 0, 0, 0, 0, -1)
    )
    item = PlanItem(task="t", split="s", episode_index=0, init_state_id=0, seed=0)
    record, _ = run_episode(env, NoopPolicy(), item, settings)
    return record.steps / (record.wall_time_s)


def overhead(scene: str, steps: int, cameras: tuple[str, ...], size: tuple[int, int]) -> None:
    from vla_eval.sims.tabletop.env import TabletopEnv

    env = TabletopEnv(scene=scene, cameras=cameras, image_size=size)
    env.reset(seed=0)
    env_steps_per_s(env, 20)  # warm-up: renderer and caches
    results = []
    for _ in range(5):
        env.reset(seed=0)
        raw = raw_steps_per_s(env, steps, cameras, size, controller=False)
        env.reset(seed=0)
        raw_ctrl = raw_steps_per_s(env, steps, cameras, size, controller=True)
        env.reset(seed=0)
        gym_rate = env_steps_per_s(env, steps)
        harness = harness_steps_per_s(env, steps)
        results.append((raw, raw_ctrl, gym_rate, harness))
    raw, raw_ctrl, gym_rate, harness = np.median(np.array(results), axis=0)
    env.close()
    label = f"{scene}, cameras={list(cameras) or 'none'}, {size[0]}x{size[1]}"
    print(f"[overhead] {label}")
    print(f"  raw mj_step+render            : {raw:8.1f} steps/s")
    print(
        f"  raw mj_step+IK+render         : {raw_ctrl:8.1f} steps/s   (the simulated robot: physics + its controller)"
    )
    print(f"  gymnasium env.step            : {gym_rate:8.1f} steps/s   raw+IK/env     = {raw_ctrl / gym_rate:.3f}")
    print(
        f"  harness episode (noop policy) : {harness:8.1f} steps/s   raw+IK/harness = {raw_ctrl / harness:.3f}"
        f"   (physics-only raw/harness = {raw / harness:.3f})"
    )


def scaling(episodes: int, size: int, policy: str) -> None:
    import yaml

    from vla_eval.execution.runner import RunRequest, run

    with tempfile.TemporaryDirectory() as tmp:
        suite = Path(tmp) / "bench.yaml"
        suite.write_text(
            yaml.safe_dump(
                {
                    "name": "bench",
                    "backend": "tabletop",
                    "tasks": ["pick_place_cube"],
                    "episodes_per_task": episodes,
                    "max_steps": 150,
                    "cameras": ["agentview", "wrist"],
                    "image_size": [size, size],
                }
            )
        )
        rates = {}
        for workers in (1, 2):
            t0 = time.perf_counter()
            out = run(
                RunRequest(
                    suite=str(suite), policy=policy, workers=workers, run_dir=Path(tmp) / f"w{workers}", progress=False
                )
            )
            elapsed = time.perf_counter() - t0
            rates[workers] = out.executed / elapsed
            print(
                f"[scaling] {policy} workers={workers}: {out.executed} episodes in {elapsed:.1f} s "
                f"= {rates[workers]:.2f} episodes/s"
            )
        print(f"[scaling] 2 workers vs 1: {rates[2] / rates[1]:.2f}x  (cpu cores: {os.cpu_count()})")


from vla_eval.policies.baselines import RandomPolicy  # noqa: E402


class RenderingRandomPolicy(RandomPolicy):
    """Random actions from a policy that asks for images, so every step renders both cameras."""

    name = "random_rendering"
    needs_images = True


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--episodes", type=int, default=24)
    ap.add_argument("--image", type=int, default=128)
    args = ap.parse_args()
    size = (args.image, args.image)
    for cams in (("agentview", "wrist"), ()):
        overhead("pick_place_cube", args.steps, cams, size)
    scaling(args.episodes, args.image, "core_harness:RenderingRandomPolicy")
    scaling(args.episodes, args.image, "random")


if __name__ == "__main__":
    main()
