"""LIBERO stepping cost: render quality and harness overhead, measured in one process.

Prints env steps/s for
  * raw ``OffScreenRenderEnv`` (LIBERO's own eval env) with two cameras at reference quality,
  * the harness env (``LiberoEnv`` via the libero backend) with the same cameras, reference quality,
  * the harness env with ``render_quality: fast`` (no MSAA, no reflections),
  * the raw env and the harness env with no rendering (state-only policies),
and the harness/raw overhead ratio (time per step, target <= 1.05) for the rendered and the
unrendered case. Conditions are interleaved in rounds so machine noise hits them alike.

    MUJOCO_GL=egl python benchmarks/libero_render.py [--steps 60] [--size 128] [--rounds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("LP_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ACTIONS_SEED = 0


def _actions(n: int) -> np.ndarray:
    rng = np.random.default_rng(ACTIONS_SEED)
    a = rng.uniform(-0.3, 0.3, size=(n, 7))
    a[:, 6] = np.where(np.arange(n) % 40 < 20, -1.0, 1.0)
    return a


def make_raw(task, size: int, cameras: bool):
    from libero.libero.envs import OffScreenRenderEnv

    kw = dict(bddl_file_name=task.bddl_file, camera_heights=size, camera_widths=size)
    if not cameras:
        kw.update(use_camera_obs=False, camera_names=[])
    with contextlib.redirect_stdout(io.StringIO()):
        env = OffScreenRenderEnv(**kw)
        env.seed(0)
        env.reset()
    return env


def make_harness(task, size: int, cameras: bool, quality: str):
    from vla_eval.sims.libero.env import LiberoEnv

    return LiberoEnv(task.name, task.suite, cameras=("agentview", "wrist") if cameras else (), image_size=(size, size), render_quality=quality)


def time_raw(env, init_state, actions) -> float:
    env.reset()
    env.set_init_state(init_state)
    env.step(actions[0])  # warm-up (first-call JIT / caches)
    t = time.perf_counter()
    for a in actions:
        _, _, done, _ = env.step(a)
    return (time.perf_counter() - t) / len(actions)


def time_harness(env, actions) -> float:
    env.reset(seed=0, options={"init_state_id": 0})
    env.step(actions[0])
    t = time.perf_counter()
    for a in actions:
        env.step(a)
    return (time.perf_counter() - t) / len(actions)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="libero_spatial")
    ap.add_argument("--task", type=int, default=0)
    ap.add_argument("--steps", type=int, default=60, help="timed steps per condition and round")
    ap.add_argument("--size", type=int, default=128, help="square image size")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    from vla_eval.sims.libero.tasks import libero_versions, load_init_states, suite_tasks

    task = suite_tasks(args.suite)[args.task]
    init = load_init_states(task)[0]
    actions = _actions(args.steps)
    print(f"task {args.suite}[{args.task}] {task.name}; {args.size}x{args.size}, agentview+wrist; {libero_versions()}")
    print(f"MUJOCO_GL={os.environ.get('MUJOCO_GL')} LP_NUM_THREADS={os.environ.get('LP_NUM_THREADS')}")

    t0 = time.perf_counter()
    envs = {
        "raw OffScreenRenderEnv, reference": ("raw", make_raw(task, args.size, True)),
        "harness, reference": ("harness", make_harness(task, args.size, True, "reference")),
        "harness, fast": ("harness", make_harness(task, args.size, True, "fast")),
        "raw, no rendering": ("raw", make_raw(task, args.size, False)),
        "harness, no rendering": ("harness", make_harness(task, args.size, False, "reference")),
    }
    print(f"built {len(envs)} envs in {time.perf_counter() - t0:.1f}s")
    per_step: dict[str, list[float]] = {k: [] for k in envs}
    for _ in range(args.rounds):
        for name, (kind, env) in envs.items():
            if kind == "raw":
                # raw envs share no GL context with ours; make theirs current like robosuite does at creation
                ctx = getattr(env.env.sim, "_render_context_offscreen", None)
                if ctx is not None:
                    ctx.gl_ctx.make_current()
                per_step[name].append(time_raw(env, init, actions))
            else:
                per_step[name].append(time_harness(env, actions))
    best = {k: min(v) for k, v in per_step.items()}
    print(f"\n{'condition':40s} {'steps/s':>9s} {'ms/step':>9s}")
    for name, s in best.items():
        print(f"{name:40s} {1.0 / s:9.1f} {1000 * s:9.1f}")
    r_render = best["harness, reference"] / best["raw OffScreenRenderEnv, reference"]
    r_state = best["harness, no rendering"] / best["raw, no rendering"]
    print(f"\nharness / raw time per step, rendered:     {r_render:.3f}  (target <= 1.05)")
    print(f"harness / raw time per step, no rendering: {r_state:.3f}  (target <= 1.05)")
    print(f"fast vs reference speed-up:                {best['harness, reference'] / best['harness, fast']:.2f}x")
    print(f"no rendering vs reference speed-up:        {best['harness, reference'] / best['harness, no rendering']:.2f}x")
    for _, env in envs.values():
        with contextlib.suppress(Exception):
            env.close()


if __name__ == "__main__":
    main()
