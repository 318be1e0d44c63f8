"""Controller parity, open loop: SimplerEnv's own engine (SAPIEN) against the MuJoCo port, same actions, same start.

For each robot, one fixed 7-D action sequence that moves along and about every axis with both signs and closes and
opens the gripper is replayed from the same configuration in both engines:
``SapienSimplerEnv`` (SimplerEnv's env classes and controllers, :mod:`vla_eval.sims.simpler.sapien`) and the
port's ``GoogleRealEnv`` / ``BridgeRealEnv`` (:mod:`vla_eval.sims.simpler.real2sim`). Printed per control step:
TCP position error (mm), TCP rotation error (degrees), finger joint error (the larger of the two fingers; radians
on the Google robot, metres on the WidowX), each engine's finger joints, and the per-step wall time of each engine
(physics only, no frames). A last table gives steps/s with frames (SAPIEN: the port's scene posed from SAPIEN's state).

Targets (issue 26): TCP within 5 mm and 2 degrees after 20 control steps; the gripper fully closed in the same step.

    VLA_EVAL_SIMPLER_SAPIEN_PYTHON=... VLA_EVAL_ASSETS=... python benchmarks/simpler_parity.py \
        [--robot google|bridge|both] [--config 12] [--no-images]
"""

from __future__ import annotations

import argparse
import math
import os
import time

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
    return {"step": step, "pos_mm": 1000 * float(np.linalg.norm(s["eef_pos"] - m["eef_pos"])),
            "rot_deg": quat_angle_deg(s["eef_quat"], m["eef_quat"]),
            "finger_err": float(np.max(np.abs(s["gripper_qpos"] - m["gripper_qpos"]))),
            "sapien_fingers": s["gripper_qpos"].tolist(), "mujoco_fingers": m["gripper_qpos"].tolist(),
            "sapien_s": ts, "mujoco_s": tm}


def print_table(result: dict) -> None:
    unit = "rad" if result["robot"] == "google" else "m"
    print(f"\n### {result['robot']}: {result['task']}, configuration {result['config']}\n")
    print(f"| step | TCP pos err (mm) | TCP rot err (deg) | finger err ({unit}) | SAPIEN fingers | MuJoCo fingers "
          "| SAPIEN s/step | MuJoCo s/step |")
    print("|---|---|---|---|---|---|---|---|")
    for r in result["rows"]:
        sf = " ".join(f"{v:.3f}" for v in r["sapien_fingers"])
        mf = " ".join(f"{v:.3f}" for v in r["mujoco_fingers"])
        print(f"| {r['step']} | {r['pos_mm']:.2f} | {r['rot_deg']:.2f} | {r['finger_err']:.3f} | {sf} | {mf} "
              f"| {r['sapien_s']:.3f} | {r['mujoco_s']:.3f} |")
    rows = result["rows"][1:]
    at20 = result["rows"][min(20, len(result["rows"]) - 1)]
    print(f"\nafter 20 steps: {at20['pos_mm']:.2f} mm, {at20['rot_deg']:.2f} deg (target 5 mm, 2 deg); "
          f"max over the sequence {max(r['pos_mm'] for r in rows):.2f} mm, "
          f"{max(r['rot_deg'] for r in rows):.2f} deg, "
          f"finger {max(r['finger_err'] for r in rows):.3f} {unit}; steps/s without frames: "
          f"SAPIEN {len(rows) / sum(r['sapien_s'] for r in rows):.1f}, MuJoCo {len(rows) / sum(r['mujoco_s'] for r in rows):.1f}")


def speed_with_frames(robot: str, steps: int = 10) -> tuple[float, float]:
    """Control steps/s with 256x256 frames drawn at SimplerEnv's camera size: SAPIEN (posed port scene), MuJoCo port."""
    from vla_eval.sims.simpler.sapien.env import SapienSimplerEnv

    task = TASKS[robot]
    if robot == "google":
        from vla_eval.sims.simpler.real2sim.google_env import GoogleRealEnv as Port
    else:
        from vla_eval.sims.simpler.real2sim.widowx_env import BridgeRealEnv as Port
    out = []
    for make in (lambda: SapienSimplerEnv(task), lambda: Port(task)):
        env = make()
        try:
            env.reset(options={"config_id": 0})
            a = np.zeros(7)
            t = time.perf_counter()
            for _ in range(steps):
                env.step(a)
            out.append(steps / (time.perf_counter() - t))
        finally:
            env.close()
    return out[0], out[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--robot", choices=["google", "bridge", "both"], default="both")
    ap.add_argument("--config", type=int, default=12, help="configuration id (both engines start from it)")
    ap.add_argument("--no-images", action="store_true", help="skip the steps/s-with-frames table")
    args = ap.parse_args()
    robots = ["google", "bridge"] if args.robot == "both" else [args.robot]
    for robot in robots:
        print_table(compare(robot, args.config))
    if not args.no_images:
        print("\n| robot | SAPIEN + posed MuJoCo frame, steps/s | MuJoCo port with frame, steps/s |\n|---|---|---|")
        for robot in robots:
            s, m = speed_with_frames(robot)
            print(f"| {robot} | {s:.1f} | {m:.1f} |")


if __name__ == "__main__":
    main()
