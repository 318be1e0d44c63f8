"""Controller parity, open loop: SimplerEnv's own engine (SAPIEN) against the MuJoCo port, same actions, same start.

For each robot, one fixed 7-D action sequence that moves along and about every axis with both signs and closes and
opens the gripper is replayed from the same configuration in both engines:
``SapienSimplerEnv`` (SimplerEnv's env classes and controllers, :mod:`vla_eval.sims.simpler.sapien`) and the
port's ``GoogleRealEnv`` / ``BridgeRealEnv`` (:mod:`vla_eval.sims.simpler.real2sim`). Printed per control step:
TCP position error (mm), TCP rotation error (degrees), finger joint error (the larger of the two fingers; radians
on the Google robot, metres on the WidowX), each engine's finger joints, and the per-step wall time of each engine
(physics only, no frames). A last table gives control steps/s per worker for both engines with SimplerEnv's
full-size frame (SAPIEN: the port's scene posed from SAPIEN's state) and without frames.

Outcome parity, closed loop (``--outcomes SAPIEN_RUN MUJOCO_RUN``): two ``vla-eval run`` folders of the scripted
expert (``simpler_scripted``), one on ``simpler_sapien`` and one on ``simpler_real``, over the same tasks and
configurations; printed per task: success in each engine, and the fraction of episodes (same task, split, episode)
with the same outcome. Only episodes present in both runs count.

Targets (issue 26): TCP within 5 mm and 2 degrees after 20 control steps; the gripper fully closed in the same step;
the same outcome in >= 90% of episodes per task, per-task success within 10 points.

    VLA_EVAL_SIMPLER_SAPIEN_PYTHON=... VLA_EVAL_ASSETS=... python benchmarks/simpler_parity.py \
        [--robot google|bridge|both] [--config 12] [--no-images]
    python benchmarks/simpler_parity.py --outcomes results/<sapien run> results/<mujoco run>
"""

from __future__ import annotations

import argparse
import math
import os
import sqlite3
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np

TASKS = {"google": "google_pick_coke_can_horizontal", "bridge": "bridge_put_carrot_on_plate"}


def google_actions() -> np.ndarray:
    """25 steps at 3 Hz, base-frame metres / radians; a[6] relative, + closes (full close at step 10, open at 18)."""
    a = np.zeros((25, 7))
    a[0:4, 0] = 0.02
    a[4:8, 1] = -0.02
    a[4:8, 5] = 0.05
    a[8:12, 2] = -0.02
    a[8:12, 3] = -0.05
    a[10, 6] = 1.0
    a[12:16, 4] = 0.05
    a[12:16, 0] = -0.01
    a[16:20, 2] = 0.02
    a[16:20, 5] = -0.05
    a[18, 6] = -1.0
    a[20:25, 3] = 0.05
    a[20:25, 4] = -0.05
    a[20:25, 1] = 0.01
    return a


def bridge_actions() -> np.ndarray:
    """25 steps at 5 Hz; a[6] absolute, +1 open, -1 closed (closed over steps 8-16)."""
    a = np.zeros((25, 7))
    a[:, 6] = 1.0
    a[0:4, 0] = 0.01
    a[4:8, 1] = -0.01
    a[4:8, 5] = 0.05
    a[8:12, 2] = -0.01
    a[8:12, 3] = -0.05
    a[8:17, 6] = -1.0
    a[12:16, 4] = 0.05
    a[16:20, 2] = 0.01
    a[16:20, 5] = -0.05
    a[20:25, 3] = 0.05
    a[20:25, 4] = -0.05
    a[20:25, 0] = -0.01
    return a


def quat_angle_deg(q1, q2) -> float:
    d = abs(float(np.dot(np.asarray(q1, float) / np.linalg.norm(q1), np.asarray(q2, float) / np.linalg.norm(q2))))
    return math.degrees(2 * math.acos(min(1.0, d)))


def compare(robot: str, config: int) -> dict:
    from vla_eval.sims.simpler.sapien.env import SapienSimplerEnv

    task = TASKS[robot]
    if robot == "google":
        from vla_eval.sims.simpler.real2sim.google_env import GoogleRealEnv as Port

        actions = google_actions()
    else:
        from vla_eval.sims.simpler.real2sim.widowx_env import BridgeRealEnv as Port

        actions = bridge_actions()
    sap, port = SapienSimplerEnv(task, cameras=()), Port(task, cameras=())
    try:
        so, _ = sap.reset(options={"config_id": config})
        mo, _ = port.reset(options={"config_id": config})
        rows = [_row(0, so, mo, 0.0, 0.0)]
        for i, a in enumerate(actions, 1):
            t = time.perf_counter()
            so, *_ = sap.step(a)
            ts = time.perf_counter() - t
            t = time.perf_counter()
            mo, *_ = port.step(a)
            tm = time.perf_counter() - t
            rows.append(_row(i, so, mo, ts, tm))
    finally:
        sap.close()
        port.close()
    return {"robot": robot, "task": task, "config": config, "rows": rows}


def _row(step, so, mo, ts, tm) -> dict:
    s, m = so["state"], mo["state"]
    return {
        "step": step,
        "pos_mm": 1000 * float(np.linalg.norm(s["eef_pos"] - m["eef_pos"])),
        "rot_deg": quat_angle_deg(s["eef_quat"], m["eef_quat"]),
        "finger_err": float(np.max(np.abs(s["gripper_qpos"] - m["gripper_qpos"]))),
        "sapien_fingers": s["gripper_qpos"].tolist(),
        "mujoco_fingers": m["gripper_qpos"].tolist(),
        "sapien_s": ts,
        "mujoco_s": tm,
    }


def print_table(result: dict) -> None:
    unit = "rad" if result["robot"] == "google" else "m"
    print(f"\n### {result['robot']}: {result['task']}, configuration {result['config']}\n")
    print(
        f"| step | TCP pos err (mm) | TCP rot err (deg) | finger err ({unit}) | SAPIEN fingers | MuJoCo fingers "
        "| SAPIEN s/step | MuJoCo s/step |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in result["rows"]:
        sf = " ".join(f"{v:.3f}" for v in r["sapien_fingers"])
        mf = " ".join(f"{v:.3f}" for v in r["mujoco_fingers"])
        print(
            f"| {r['step']} | {r['pos_mm']:.2f} | {r['rot_deg']:.2f} | {r['finger_err']:.3f} | {sf} | {mf} "
            f"| {r['sapien_s']:.3f} | {r['mujoco_s']:.3f} |"
        )
    rows = result["rows"][1:]
    at20 = result["rows"][min(20, len(result["rows"]) - 1)]
    print(
        f"\nafter 20 steps: {at20['pos_mm']:.2f} mm, {at20['rot_deg']:.2f} deg (target 5 mm, 2 deg); "
        f"max over the sequence {max(r['pos_mm'] for r in rows):.2f} mm, "
        f"{max(r['rot_deg'] for r in rows):.2f} deg, "
        f"finger {max(r['finger_err'] for r in rows):.3f} {unit}; steps/s without frames: "
        f"SAPIEN {len(rows) / sum(r['sapien_s'] for r in rows):.1f}, "
        f"MuJoCo {len(rows) / sum(r['mujoco_s'] for r in rows):.1f}"
    )


def speed(robot: str, steps: int = 20) -> dict[str, float]:
    """Control steps/s per worker, a zero action from configuration 0: each engine with SimplerEnv's full-size frame
    every step (SAPIEN: the port's scene posed from SAPIEN's state) and without frames (``cameras=()``)."""
    from vla_eval.sims.simpler.sapien.env import SapienSimplerEnv

    task = TASKS[robot]
    if robot == "google":
        from vla_eval.sims.simpler.real2sim.google_env import GoogleRealEnv as Port
    else:
        from vla_eval.sims.simpler.real2sim.widowx_env import BridgeRealEnv as Port
    native = (512, 640) if robot == "google" else (480, 640)
    makers = {
        "sapien_frames": lambda: SapienSimplerEnv(task, image_size=native),
        "sapien_physics": lambda: SapienSimplerEnv(task, cameras=()),
        "port_frames": lambda: Port(task, image_size=native),
        "port_physics": lambda: Port(task, cameras=()),
    }
    out = {}
    for name, make in makers.items():
        env = make()
        try:
            env.reset(options={"config_id": 0})
            a = np.zeros(7)
            t = time.perf_counter()
            for _ in range(steps):
                env.step(a)
            out[name] = steps / (time.perf_counter() - t)
        finally:
            env.close()
    return out


def run_outcomes(run_dir: str) -> dict[tuple[str, str, int], bool]:
    """(task, split, episode index) -> success, from a run folder's episode store."""
    path = Path(run_dir) / "episodes.sqlite"
    if not path.is_file():
        raise SystemExit(f"--outcomes: {path} does not exist (expected a vla-eval run folder)")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        rows = con.execute("SELECT task, split, episode_index, success FROM episodes").fetchall()
    return {(t, sp, int(i)): bool(ok) for t, sp, i, ok in rows}


def outcome_table(sapien: dict[tuple[str, str, int], bool], mujoco: dict[tuple[str, str, int], bool]) -> list[dict]:
    """Per task: episodes in both runs, success count in each engine, episodes with the same outcome."""
    rows: dict[str, dict] = {}
    for key in sorted(set(sapien) & set(mujoco)):
        r = rows.setdefault(key[0], {"task": key[0], "n": 0, "sapien": 0, "mujoco": 0, "same": 0, "differ": []})
        r["n"] += 1
        r["sapien"] += sapien[key]
        r["mujoco"] += mujoco[key]
        if sapien[key] == mujoco[key]:
            r["same"] += 1
        else:
            r["differ"].append(f"{key[1]}/{key[2]}")
    return list(rows.values())


def print_outcomes(rows: list[dict]) -> None:
    print("| task | episodes | SAPIEN success % | MuJoCo success % | same outcome % | differing (split/episode) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        n = r["n"]
        print(
            f"| {r['task']} | {n} | {100 * r['sapien'] / n:.1f} | {100 * r['mujoco'] / n:.1f} "
            f"| {100 * r['same'] / n:.1f} | {', '.join(r['differ']) or '-'} |"
        )
    n = sum(r["n"] for r in rows)
    if n:
        print(
            f"\nall: {n} episodes, same outcome {100 * sum(r['same'] for r in rows) / n:.1f}% "
            "(targets: >= 90% per task, success within 10 points)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--robot", choices=["google", "bridge", "both"], default="both")
    ap.add_argument("--config", type=int, default=12, help="configuration id (both engines start from it)")
    ap.add_argument("--no-images", action="store_true", help="skip the steps/s-with-frames table")
    ap.add_argument(
        "--outcomes",
        nargs=2,
        metavar=("SAPIEN_RUN", "MUJOCO_RUN"),
        help="compare two scripted-expert run folders episode by episode (closed-loop parity)",
    )
    args = ap.parse_args()
    if args.outcomes:
        print_outcomes(outcome_table(run_outcomes(args.outcomes[0]), run_outcomes(args.outcomes[1])))
        return
    robots = ["google", "bridge"] if args.robot == "both" else [args.robot]
    for robot in robots:
        print_table(compare(robot, args.config))
    if not args.no_images:
        print(
            "\n| robot | SAPIEN + posed MuJoCo frame | SAPIEN, no frame | MuJoCo port + frame | MuJoCo port, no frame |"
            "\n|---|---|---|---|---|"
        )
        for robot in robots:
            r = speed(robot)
            print(
                f"| {robot} | {r['sapien_frames']:.1f} | {r['sapien_physics']:.1f} | {r['port_frames']:.1f} "
                f"| {r['port_physics']:.1f} |"
            )


if __name__ == "__main__":
    main()
