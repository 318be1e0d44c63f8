"""LIBERO stepping cost: render quality and harness overhead, measured in one process.

Prints env steps/s for
  * raw ``OffScreenRenderEnv`` (LIBERO's own eval env) with two cameras at reference quality,
  * the harness env (``LiberoEnv`` via the libero backend) with the same cameras, reference quality,
  * the harness env with ``render_quality: fast`` (no MSAA, no reflections),
  * the raw env and the harness env with no rendering (state-only policies),
and the harness/raw overhead ratio (time per step, target <= 1.05) for the rendered and the
unrendered case. Conditions are interleaved in rounds so machine noise hits them alike.

    MUJOCO_GL=egl python benchmarks/libero_render.py [--steps 60] [--size 128] [--rounds 2]

``--patterns`` instead measures render on demand through the real rollout (``run_episodes``):
steps/s with ``--render eager`` (every camera every step; the same whatever the policy does)
against on-demand rendering for the query patterns of issue 28, each also with
``--videos failures`` (frames collected, video camera ``agentview``, every other step):

  * ``openvla``: queried every step, one camera (agentview);
  * ``pi0``: 10-action chunks, 5 executed (queried every 5th step), both cameras;
  * ``planner``: one query per 40 steps (a VLA-R1-style waypoint planner), agentview.

    MUJOCO_GL=egl python benchmarks/libero_render.py --patterns --suite libero_spatial --size 128 256 --steps 40
    MUJOCO_GL=egl python benchmarks/libero_render.py --patterns --suite tabletop_basic --size 128
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

    return LiberoEnv(
        task.name,
        task.suite,
        cameras=("agentview", "wrist") if cameras else (),
        image_size=(size, size),
        render_quality=quality,
    )


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


PATTERNS = {  # name: (chunk length = steps between queries, cameras the policy reads or None for all)
    "openvla": (1, ("agentview",)),
    "pi0": (5, None),
    "planner": (40, ("agentview",)),
}


class _ResetTimer:
    """Forwards to the env and adds up the time its resets take, so steps/s counts steps only."""

    def __init__(self, env):
        self.env, self.unwrapped, self.reset_s = env, env.unwrapped, 0.0

    def reset(self, **kw):
        t = time.perf_counter()
        try:
            return self.env.reset(**kw)
        finally:
            self.reset_s += time.perf_counter() - t

    def step(self, action):
        return self.env.step(action)


class _PatternPolicy:
    """A policy that costs nothing: replays fixed actions in chunks, reading the cameras of its pattern."""

    needs_images, needs_depth, needs_privileged, slot_aware = True, False, False, False
    image_orientation = "upright"

    def __init__(self, chunk: int, cameras, actions: np.ndarray):
        self.chunk, self.cameras_needed, self.actions, self.t = chunk, cameras, actions, 0

    def reset(self, instructions, seeds=None):
        self.t = 0

    def predict(self, obs_batch):
        from vla_eval.actions.space import LIBERO_DELTA_EEF, ActionChunk

        for cam in self.cameras_needed or ():
            assert cam in obs_batch[0]["images"], f"policy camera {cam} was not rendered"
        idx = (self.t + np.arange(self.chunk)) % len(self.actions)
        self.t += self.chunk
        return ActionChunk(actions=self.actions[idx][None], space=LIBERO_DELTA_EEF)


def run_patterns(args) -> None:
    """Eager vs on-demand steps/s through ``run_episodes`` for each pattern, with and without videos."""
    from vla_eval.backends import get_backend
    from vla_eval.execution.plan import build_plan
    from vla_eval.execution.rollout import EpisodeSettings, run_episodes
    from vla_eval.spec import SuiteSpec, load_suite

    for size in args.size:
        data = load_suite(args.suite).model_dump(mode="json")
        data["image_size"] = [size, size]
        spec = SuiteSpec.model_validate(data)
        backend = get_backend(spec.backend)
        item = build_plan(spec)[args.task * spec.episodes_per_task]
        cams = list(spec.cameras)
        env = backend.make_env(spec, item.task, item.split, cams)
        opts = backend.episode_reset_options(spec, item.task, item.episode_index)
        actions = _actions(args.steps)
        quality = spec.backend_options.get("render_quality", "-")

        def timed(render: str, chunk: int, cameras, videos: bool) -> float:
            settings = EpisodeSettings(
                run_id="bench",
                suite=spec.name,
                max_steps={item.task: args.steps},
                settle_steps=0,
                settle_action=tuple(spec.settle_action),
                replan_steps=chunk,
                render=render,
                video_camera=cams[0] if videos else None,
                success_rule="final_step",
            )
            frames = [[]] if videos else None
            timer = _ResetTimer(env)
            t = time.perf_counter()
            ((rec, _),) = run_episodes(
                [timer], _PatternPolicy(chunk, cameras, actions), [item], settings, frames, [opts]
            )
            assert rec.termination != "env_error", rec.error
            return rec.steps / (time.perf_counter() - t - timer.reset_s)

        timed("eager", 1, None, False)  # warm-up: renderer, caches
        rows: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            rows.setdefault("eager (any pattern)", []).append(timed("eager", 1, None, False))
            for name, (chunk, cameras) in PATTERNS.items():
                for videos in (False, True):
                    label = f"{name}{' + videos failures' if videos else ''}"
                    rows.setdefault(label, []).append(timed("on_demand", chunk, cameras, videos))
        best = {k: max(v) for k, v in rows.items()}
        eager = best["eager (any pattern)"]
        print(
            f"\n{spec.name} task {item.task}, {size}x{size}, cameras {cams}, render_quality {quality}, "
            f"{args.steps} steps x {args.rounds} rounds (best)"
        )
        print(f"{'condition':34s} {'steps/s':>9s} {'vs eager':>9s}")
        for name, v in best.items():
            print(f"{name:34s} {v:9.1f} {v / eager:8.2f}x")
        with contextlib.suppress(Exception):
            env.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="libero_spatial")
    ap.add_argument("--task", type=int, default=0)
    ap.add_argument("--steps", type=int, default=60, help="timed steps per condition and round")
    ap.add_argument("--size", type=int, nargs="+", default=[128], help="square image size(s)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--patterns", action="store_true", help="eager vs on-demand rendering per query pattern")
    args = ap.parse_args()
    if args.patterns:
        run_patterns(args)
        return
    args.size = args.size[0]

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
    print(
        f"no rendering vs reference speed-up:        {best['harness, reference'] / best['harness, no rendering']:.2f}x"
    )
    for _, env in envs.values():
        with contextlib.suppress(Exception):
            env.close()


if __name__ == "__main__":
    main()
