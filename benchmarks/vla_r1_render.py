"""VLA-R1 (conformance oracle) steps/s: eager rendering vs on demand, with and without lazy images.

The oracle is the real VLA-R1 adapter (tokenizer, image processor, parser, depth lift, planner
bridge) whose network is replaced by the expert's key points, so the rollout's pattern is the
real one: a call every step (``chunk_size: 1``), a picture read only when a plan is made.
Conditions: ``eager`` (every camera every step), ``on_demand, drawn before each call`` (the
adapter's ``lazy_images`` turned off: its camera is drawn before every call) and ``on_demand,
lazy`` (drawn on the calls that read it). Steps/s count steps and policy calls, not resets.

    MUJOCO_GL=egl python benchmarks/vla_r1_render.py [--size 128] [--steps 120] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("LP_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="tabletop_basic")
    ap.add_argument("--task", default="pick_place_cube")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    from vla_eval.backends import get_backend
    from vla_eval.conformance.checkpoints import build_qwen_oracle_checkpoint
    from vla_eval.conformance.vla_r1_oracle import VlaR1Oracle
    from vla_eval.execution.plan import build_plan
    from vla_eval.execution.rollout import EpisodeSettings, run_episodes
    from vla_eval.policy_config import resolve_policy
    from vla_eval.spec import SuiteSpec, load_suite

    data = load_suite(args.suite).model_dump(mode="json")
    data["image_size"] = [args.size, args.size]
    spec = SuiteSpec.model_validate(data)
    backend = get_backend(spec.backend)
    item = next(i for i in build_plan(spec) if i.task == args.task)
    env = backend.make_env(spec, item.task, item.split, list(spec.cameras), depth=True)
    opts = backend.episode_reset_options(spec, item.task, item.episode_index)
    ckpt = build_qwen_oracle_checkpoint(Path(tempfile.gettempdir()) / "vla_eval_bench_qwen_oracle")
    user = resolve_policy("vla_r1", [])
    policy = VlaR1Oracle(
        **{**user.args, "checkpoint": str(ckpt), "device": "cpu", "dtype": "float32", "task_mode": "pick_place"}
    )

    def timed(render: str, lazy: bool) -> tuple[float, str]:
        policy.lazy_images = lazy
        settings = EpisodeSettings(
            run_id="bench",
            suite=spec.name,
            max_steps={item.task: args.steps},
            settle_steps=spec.settle_steps,
            settle_action=tuple(spec.settle_action),
            render=render,
        )
        t = time.perf_counter()
        ((rec, _),) = run_episodes([env], policy, [item], settings, None, [opts])
        assert rec.termination in ("success", "timeout"), rec.error
        note = f"{rec.steps} steps, {rec.outputs_checked} model queries, success {rec.success}"
        return rec.steps / (time.perf_counter() - t), note

    conditions = {
        "eager": ("eager", False),
        "on_demand, drawn before each call": ("on_demand", False),
        "on_demand, lazy (drawn when read)": ("on_demand", True),
    }
    load_before = os.getloadavg()[0]
    timed("eager", False)  # warm-up: renderer, tokenizer, caches
    best: dict[str, float] = {}
    notes: dict[str, str] = {}
    for _ in range(args.rounds):
        for name, (render, lazy) in conditions.items():
            rate, notes[name] = timed(render, lazy)
            best[name] = max(best.get(name, 0.0), rate)
    print(
        f"\n{spec.name} {item.task}, {args.size}x{args.size}, cameras {list(spec.cameras)} + depth, "
        f"{args.steps} steps max x {args.rounds} rounds (best); "
        f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}"
    )
    eager = best["eager"]
    for name, v in best.items():
        print(f"{name:36s} {v:8.1f} steps/s {v / eager:6.2f}x   ({notes[name]})")
    env.close()


if __name__ == "__main__":
    main()
