"""Scripted expert for the SimplerEnv-style tasks (privileged simulator state; ``simpler_scripted``).

It proves every task is solvable within SimplerEnv's step limits with the env's own
action space, and that every success rule fires; it is not a learning baseline. It reuses
the tabletop expert's action primitive (:func:`vla_eval.sims.tabletop.expert.move_action`) and
adds what the tabletop expert lacks: grasp yaw for elongated and lying objects, grasp
height that keeps the hand clear of tall objects, horizontal drawer-handle approaches (the
drawers are stacked, so a top-down approach would hit the drawer above), pushing drawers
shut, and a two-stage open-then-place plan.

Strategies by ``task["type"]`` in the env's privileged state:

* ``lift``: pick the object and hold it 12 cm up.
* ``near``: pick the source and set it down beside the target, on a spot clear of the third object.
* ``on_top``: pick the source and set it down on the target object / into the target fixture.
* ``drawer_open``: approach the handle from the front, close, pull along the slide axis.
* ``drawer_close``: approach the open drawer's handle from the front, push it shut.
* ``in_drawer``: open the drawer (>= 0.18 m), let go and back off, then place the object in it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vla_eval.actions.space import ActionChunk
from vla_eval.geometry import quat_to_mat
from vla_eval.sims.simpler.env import half_z
from vla_eval.sims.tabletop.expert import CLOSE, OPEN, ScriptedExpert, _Episode, _quat_yaw_of_mat, _wrap, move_action


def grasp_yaw(shape: str, size, quat, current: float) -> float:
    """Gripper yaw (0 = fingers closing along world y) that closes across the object's long side."""
    r = quat_to_mat(quat)
    if shape == "sphere":
        return current
    if shape == "cylinder":
        axis = r[:, 2]
        if abs(axis[2]) > 0.7:  # standing: any yaw
            return current
        return math.atan2(axis[1], axis[0])
    horizontal = [i for i in range(3) if abs(r[2, i]) < 0.7]
    if len(horizontal) < 2:
        horizontal = [0, 1]
    long_axis = max(horizontal, key=lambda i: size[i])
    a = r[:, long_axis]
    return math.atan2(a[1], a[0])


def footprint(shape: str, size) -> float:
    return float(np.hypot(size[0], size[1])) if shape == "box" else float(size[0])


class SimplerScriptedExpert(ScriptedExpert):
    """The tabletop expert's batching and bookkeeping with SimplerEnv-style task skills."""

    name = "simpler_scripted"

    def predict(self, obs_batch: list[dict[str, Any]], slots=None) -> ActionChunk:
        """As the tabletop expert; on the SimplerEnv-robot scenes (``family`` ``bridge_real`` / ``google_real``) it
        speaks that env's native SimplerEnv action (WidowX: metres, base frame, +1 = open; Google robot: metres,
        base frame, relative gripper, + closes)."""
        families = {o.get("privileged", {}).get("family") for o in obs_batch}
        real = families & {"bridge_real", "google_real"}
        if not real:
            return super().predict(obs_batch, slots)
        if len(families) != 1:
            raise ValueError(f"simpler_scripted: one batch mixes scene families {sorted(map(str, families))}")
        from vla_eval.sims.simpler.real2sim.expert import bridge_real_action, google_real_action
        from vla_eval.sims.simpler.real2sim.google_env import SIMPLER_GOOGLE_ACTION
        from vla_eval.sims.simpler.real2sim.widowx_env import SIMPLER_WIDOWX_ACTION

        act, space = (
            (bridge_real_action, SIMPLER_WIDOWX_ACTION)
            if "bridge_real" in real
            else (google_real_action, SIMPLER_GOOGLE_ACTION)
        )
        episodes = self._episodes.rows(obs_batch, slots)
        actions = []
        for obs, ep in zip(obs_batch, episodes):
            ep.count += 1
            actions.append(act(obs["privileged"], ep))
        return ActionChunk(
            actions=np.stack(actions)[:, None, :], space=space, extras=[{"phase": ep.phase} for ep in episodes]
        )

    # ------------------------------------------------------------------ dispatch
    def _act(self, priv: dict[str, Any], ep: _Episode) -> np.ndarray:
        ep.count += 1
        task = priv["task"]
        ep.memo.setdefault("hold", 2 if int(priv.get("control_hz", 5)) <= 3 else 3)
        kind = task["type"]
        if kind == "lift":
            return self._pick_place(priv, ep, task["object"], None)
        if kind == "near":
            return self._pick_place(priv, ep, task["object"], self._near_place(priv, task))
        if kind == "on_top":
            return self._pick_place(priv, ep, task["object"], self._on_top_place(priv, task))
        if kind == "drawer_open":
            return self._drawer_open(priv, ep, task["drawer"], task["joint"], 1.0)
        if kind == "drawer_close":
            return self._drawer_close(priv, ep, task["drawer"])
        if kind == "in_drawer":
            return self._in_drawer(priv, ep, task)
        raise ValueError(f"simpler expert has no strategy for task type {kind!r}")

    # ------------------------------------------------------------- place targets
    @staticmethod
    def _near_place(priv, task) -> dict[str, Any]:
        """A spot beside the target, clear of the other objects and nearer the target than any of them
        (SimplerEnv's ``is_closest_to_tgt``), preferring the one closest to where the source started."""
        src, tgt = task["object"], task["target"]
        start = np.asarray(priv[f"{src}_init_pos"])[:2]
        tgt_xy = np.asarray(priv[f"{tgt}_pos"])[:2]
        fp_src = footprint(priv[f"{src}_shape"], priv[f"{src}_size"])
        gap = fp_src + footprint(priv[f"{tgt}_shape"], priv[f"{tgt}_size"]) + 0.09  # well inside SimplerEnv's + 0.10
        others = [
            (np.asarray(priv[f"{n}_pos"])[:2], footprint(priv[f"{n}_shape"], priv[f"{n}_size"]))
            for n in task.get("others", [])
            if f"{n}_pos" in priv and np.asarray(priv[f"{n}_pos"])[2] > -1.0
        ]
        best, best_cost = None, math.inf
        for k in range(24):
            a = 2 * math.pi * k / 24
            cand = tgt_xy + gap * np.array([math.cos(a), math.sin(a)])
            if not (0.36 <= cand[0] <= 0.66 and abs(cand[1]) <= 0.3):
                continue
            if any(np.linalg.norm(cand - p) < max(fp_src + fp + 0.05, gap + 0.04) for p, fp in others):
                continue
            # fingers open along world y: prefer spots beside the target along x, so they do not sweep into it
            cost = float(np.linalg.norm(cand - start)) + 0.15 * abs(math.sin(a))
            if cost < best_cost:
                best, best_cost = cand, cost
        if best is None:
            u = start - tgt_xy
            best = tgt_xy + u / max(float(np.linalg.norm(u)), 1e-6) * gap
        return {"xy": best, "floor": 0.0, "rim": 0.02, "release": 0.004}

    @staticmethod
    def _on_top_place(priv, task) -> dict[str, Any]:
        tgt = task["target"]
        pos = np.asarray(priv[f"{tgt}_pos"])
        size = np.asarray(priv[f"{tgt}_size"])
        if f"{tgt}_shape" in priv:  # an object: its top surface
            top = pos[2] + half_z(priv[f"{tgt}_shape"], size, priv[f"{tgt}_quat"])
            return {"xy": pos[:2], "floor": top, "rim": top, "release": 0.006}
        return {"xy": pos[:2], "floor": pos[2] + size[2], "rim": pos[2] + 0.06, "release": 0.01}  # a basket

    # -------------------------------------------------------------- pick & place
    def _pick_place(self, priv, ep: _Episode, name: str, place: dict[str, Any] | None) -> np.ndarray:
        eef, mat = np.asarray(priv["eef_pos"]), np.asarray(priv["eef_mat"])
        obj = np.asarray(priv[f"{name}_pos"])
        shape, size, quat = priv[f"{name}_shape"], np.asarray(priv[f"{name}_size"]), priv[f"{name}_quat"]
        hz = half_z(shape, size, quat)
        current = _quat_yaw_of_mat(mat)
        if ep.phase in ("start", "above", "descend"):
            ep.memo["yaw"] = grasp_yaw(shape, size, quat, current)
        yaw = ep.memo.get("yaw", current)
        tol, hold = self.tolerance, ep.memo["hold"]
        grasp_z = max(obj[2] - 0.004, obj[2] + hz - 0.038, 0.011)
        if ep.phase == "start":
            ep.memo["pick_surface"] = obj[2] - hz
            ep.go("above")
        if ep.phase == "above":
            target = np.array([obj[0], obj[1], max(grasp_z + 0.08, obj[2] + hz + 0.06)])
            yaw_err = abs(_wrap(yaw - current, math.pi))
            if np.linalg.norm(target - eef) < 2 * tol and yaw_err < 0.08:
                ep.go("descend")
            else:
                return move_action(eef, mat, target, yaw, OPEN)
        if ep.phase == "descend":
            target = np.array([obj[0], obj[1], grasp_z])
            if np.linalg.norm(target - eef) < tol or ep.count > 12:
                ep.go("close")
            else:
                return move_action(eef, mat, target, yaw, OPEN, speed=0.6)
        if ep.phase == "close":
            if ep.count > hold:
                ep.go("lift")
            return move_action(eef, mat, eef, yaw, CLOSE)
        offset = obj - eef
        if ep.phase in ("lift", "carry", "lower") and np.linalg.norm(offset) > 0.07:
            ep.go("regrasp")  # dropped: open, rise, start over from the object's new pose
        if ep.phase == "regrasp":
            if ep.count > hold:
                ep.go("above")
            return move_action(eef, mat, eef + [0, 0, 0.04], yaw, OPEN)
        if place is None:  # lift task: up and hold
            return move_action(
                eef, mat, [eef[0], eef[1], ep.memo["pick_surface"] + 2 * hz + 0.1], yaw, CLOSE, speed=0.5
            )
        bottom_off = offset[2] - hz  # object bottom relative to the eef
        clearance = max(ep.memo["pick_surface"], place["rim"]) + 0.05
        carry_z = clearance - bottom_off
        if ep.phase == "lift":
            if eef[2] > carry_z - 0.02:
                ep.go("carry")
            else:
                return move_action(eef, mat, [eef[0], eef[1], carry_z], yaw, CLOSE, speed=0.5)
        xy = np.asarray(place["xy"]) - offset[:2]
        if ep.phase == "carry":
            target = np.array([xy[0], xy[1], carry_z])
            if np.linalg.norm(target - eef) < 1.5 * tol:
                ep.go("lower")
            else:
                return move_action(eef, mat, target, yaw, CLOSE, speed=0.6)
        if ep.phase == "lower":
            target = np.array([xy[0], xy[1], place["floor"] + place["release"] - bottom_off])
            if np.linalg.norm(target - eef) < tol or ep.count > 10:
                ep.go("open")
            else:
                return move_action(eef, mat, target, yaw, CLOSE, speed=0.5)
        if ep.phase == "open":
            if ep.count > hold:
                ep.go("retreat")
            return move_action(eef, mat, eef, yaw, OPEN)
        return move_action(eef, mat, [eef[0], eef[1], max(eef[2], carry_z)], yaw, OPEN)

    # ------------------------------------------------------------------- drawers
    @staticmethod
    def _drawer_frame(priv, level: str):
        handle = np.asarray(priv[f"{level}_drawer_handle_pos"], dtype=float)
        axis = np.asarray(priv[f"{level}_drawer_slide_axis"], dtype=float)
        yaw = _wrap(math.atan2(axis[1], axis[0]), math.pi)
        return handle, axis, yaw

    def _drawer_open(self, priv, ep: _Episode, level: str, joint: str, _unused: float) -> np.ndarray:
        eef, mat = np.asarray(priv["eef_pos"]), np.asarray(priv["eef_mat"])
        handle, axis, yaw = self._drawer_frame(priv, level)
        tol, hold = self.tolerance, ep.memo["hold"]
        pre = handle + axis * 0.1
        if ep.phase == "start":
            ep.go("pre_high")
        if ep.phase == "pre_high":
            target = pre + [0, 0, 0.12]
            if np.linalg.norm(target - eef) < 3 * tol:
                ep.go("pre")
            else:
                return move_action(eef, mat, target, yaw, OPEN)
        if ep.phase == "pre":
            if np.linalg.norm(pre - eef) < 1.5 * tol:
                ep.go("insert")
            else:
                return move_action(eef, mat, pre, yaw, OPEN)
        if ep.phase == "insert":
            if np.linalg.norm(handle - eef) < tol or ep.count > 8:
                ep.go("close")
            else:
                return move_action(eef, mat, handle, yaw, OPEN, speed=0.6)
        if ep.phase == "close":
            if ep.count > hold:
                ep.go("pull")
            return move_action(eef, mat, handle, yaw, CLOSE)
        if ep.phase == "pull" and np.linalg.norm(handle - eef) > 0.035:
            ep.go("regrasp")
        if ep.phase == "regrasp":
            if ep.count > hold:
                ep.go("pre")
            return move_action(eef, mat, eef + axis * 0.04, yaw, OPEN)
        return move_action(eef, mat, handle + axis * 0.05, yaw, CLOSE, speed=0.6)

    def _drawer_close(self, priv, ep: _Episode, level: str) -> np.ndarray:
        eef, mat = np.asarray(priv["eef_pos"]), np.asarray(priv["eef_mat"])
        handle, axis, yaw = self._drawer_frame(priv, level)
        tol = self.tolerance
        pre = handle + axis * 0.08
        if ep.phase == "start":
            ep.go("pre_high")
        if ep.phase == "pre_high":
            target = pre + [0, 0, 0.12]
            if np.linalg.norm(target - eef) < 3 * tol:
                ep.go("pre")
            else:
                return move_action(eef, mat, target, yaw, CLOSE)
        if ep.phase == "pre":
            if np.linalg.norm(pre - eef) < 1.5 * tol:
                ep.go("push")
            else:
                return move_action(eef, mat, pre, yaw, CLOSE)
        return move_action(eef, mat, handle - axis * 0.08, yaw, CLOSE)

    def _in_drawer(self, priv, ep: _Episode, task) -> np.ndarray:
        level, joint = task["drawer"], task["joint"]
        stage = ep.memo.setdefault("stage", "open")
        if stage == "open":
            if float(np.asarray(priv[f"{joint}_qpos"])[0]) >= 0.18 and ep.phase == "pull":
                ep.memo["stage"] = "release"
                ep.go("release")
            else:
                return self._drawer_open(priv, ep, level, joint, 1.0)
        eef, mat = np.asarray(priv["eef_pos"]), np.asarray(priv["eef_mat"])
        handle, axis, yaw = self._drawer_frame(priv, level)
        if ep.memo["stage"] == "release":
            if ep.phase == "release":
                if ep.count > ep.memo["hold"]:
                    ep.go("backoff")
                return move_action(eef, mat, eef, yaw, OPEN)
            if ep.phase == "backoff":
                target = handle + axis * 0.08
                if np.linalg.norm(target - eef) < 2 * self.tolerance or ep.count > 6:
                    ep.go("rise")
                else:
                    return move_action(eef, mat, target, yaw, OPEN)
            # over the open drawer's pull, then across at that height, before descending to the object
            transit_z = handle[2] + 0.12
            obj = np.asarray(priv[f"{task['object']}_pos"])
            if ep.phase == "rise":
                if eef[2] > transit_z - 0.02:
                    ep.go("transit")
                else:
                    return move_action(eef, mat, [eef[0], eef[1], transit_z], yaw, OPEN)
            if ep.phase == "transit":
                target = np.array([obj[0], obj[1], transit_z])
                if np.linalg.norm(target[:2] - eef[:2]) < 3 * self.tolerance:
                    ep.memo["stage"] = "place"
                    ep.go("start")
                else:
                    return move_action(eef, mat, target, yaw, OPEN)
        drop = np.asarray(priv[f"{level}_drawer_drop_pos"], dtype=float)
        place = {"xy": drop[:2], "floor": drop[2], "rim": drop[2] + 0.09, "release": 0.015}
        return self._pick_place(priv, ep, task["object"], place)
