"""A scripted pick-and-place expert for LIBERO that reads privileged simulator state.

It proves the LIBERO wiring (init states, action scaling, gripper polarity, success
predicate) without model weights: for a BDDL goal ``(On A B)`` or ``(In A B_region)`` it
picks ``A`` from the top and puts it on / in ``B``. It needs no images (``needs_images =
False``), so it runs with rendering off. Handles ``libero_spatial`` and ``libero_object``
(single pick-and-place goals); other goals (open a drawer, turn on a stove) are out of
scope and the expert just holds still.

Actions are LIBERO's native space: 7-D delta EEF (OSC_POSE, 1.0 = 5 cm / 0.5 rad) +
gripper (-1 open, +1 close).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vla_eval.actions.space import LIBERO_DELTA_EEF, ActionChunk
from vla_eval.adapter import Policy, SlotStates
from vla_eval.geometry import mat_to_rotvec, quat_to_mat, rotz

POS_SCALE = 0.05  # metres per unit action (robosuite OSC_POSE output_max)
ROT_SCALE = 0.5  # radians per unit action


def _down_rotation(yaw: float) -> np.ndarray:
    """Gripper pointing down (180 degrees about x), then turned by ``yaw`` about world z."""
    return rotz(yaw) @ np.diag([1.0, -1.0, -1.0])


@dataclass
class _Plan:
    phase: str = "start"
    steps_in_phase: int = 0
    obj: str | None = None
    target: str | None = None
    target_is_region: bool = False
    grasp_offset: np.ndarray = field(default_factory=lambda: np.zeros(3))  # grasp point - object centre (world)
    grasp_z: float = 0.0
    yaw: float = 0.0
    carry_z: float = 1.2
    obj_bottom_below_grasp: float = 0.05
    obj_z_at_grasp: float = 0.0
    hold_offset: np.ndarray = field(default_factory=lambda: np.zeros(2))  # eef xy - object xy while carrying
    last_z: float = 0.0
    stalled: int = 0
    attempts: int = 0
    done: bool = False


class LiberoScriptedExpert(Policy):
    name = "libero_scripted"
    needs_images = False
    needs_privileged = True
    deterministic = True
    slot_aware = True

    def __init__(self, gain: float = 1.0, lift_clearance: float = 0.08):
        self.gain = float(gain)
        self.lift_clearance = float(lift_clearance)
        self._plans: SlotStates[_Plan] = SlotStates(lambda instruction, seed: _Plan())

    def reset(self, instructions, seeds=None, slots=None):
        self._plans.reset(instructions, seeds, slots)

    def release(self, slots):
        self._plans.release(slots)

    def describe(self):
        return {"name": self.name, "gain": self.gain, "lift_clearance": self.lift_clearance}

    def predict(self, obs_batch: list[dict[str, Any]], slots=None) -> ActionChunk:
        plans = self._plans.rows(obs_batch, slots)
        actions = np.stack([self._act(obs, plan) for obs, plan in zip(obs_batch, plans)])[:, None, :]
        return ActionChunk(actions=actions, space=LIBERO_DELTA_EEF, extras=[{} for _ in obs_batch])

    # ------------------------------------------------------------------ planning
    def _setup(self, priv: dict[str, Any], plan: _Plan) -> None:
        goal = [g for g in priv["goal"] if g and str(g[0]).lower() in ("on", "in")]
        if not goal:
            plan.phase, plan.done = "idle", True
            return
        _, obj, target = goal[0][:3]
        plan.obj = obj
        objects = {**priv.get("fixtures", {}), **priv["objects"]}
        if target in objects:
            plan.target, plan.target_is_region = target, False
        else:
            plan.target, plan.target_is_region = target, True
        o = priv["objects"][obj]
        lo, hi = o["bbox_min"], o["bbox_max"]
        ext = hi - lo
        centre = (lo + hi) / 2
        if min(ext[0], ext[1]) > 0.075:  # too wide for the fingers (bowls): grasp the rim
            # four rim points; fingers close radially (yaw 0 closes along world y, yaw 90 along x).
            # Prefer the side away from the nearest fixture (cabinet, stove), then the side near the gripper.
            boxes = [f["geom_boxes"] for f in priv.get("fixtures", {}).values() if "geom_boxes" in f]
            boxes = np.concatenate(boxes) if boxes else np.zeros((0, 6))
            gz = hi[2] - 0.015
            best = None
            for direction, yaw, half in (
                ((0, 1), 0.0, ext[1]),
                ((0, -1), 0.0, ext[1]),
                ((1, 0), np.pi / 2, ext[0]),
                ((-1, 0), np.pi / 2, ext[0]),
            ):
                d = np.asarray(direction, dtype=float)
                pt = centre[:2] + d * (half / 2 - 0.008)
                # the outer finger's volume (the inner one is inside the bowl) against fixture geoms
                finger = pt + d * 0.035
                f_lo = np.array([finger[0] - 0.015, finger[1] - 0.015, gz - 0.015])
                f_hi = np.array([finger[0] + 0.015, finger[1] + 0.015, gz + 0.15])
                hits = np.all((boxes[:, :3] < f_hi) & (boxes[:, 3:] > f_lo), axis=1).sum() if len(boxes) else 0
                score = -float(hits) - 0.1 * np.linalg.norm(pt - priv["eef_pos"][:2])
                if best is None or score > best[0] + 1e-9:
                    best = (score, pt, yaw)
            grasp = np.array([best[1][0], best[1][1], hi[2] - 0.015])
            plan.yaw = best[2]
        else:
            grasp = np.array([centre[0], centre[1], max(hi[2] - 0.025, lo[2] + 0.6 * ext[2])])
            # close the fingers (world y at yaw 0) across the object's narrower horizontal side
            plan.yaw = 0.0 if ext[1] <= ext[0] else np.pi / 2
        plan.grasp_offset = grasp - np.array([o["pos"][0], o["pos"][1], grasp[2]])
        plan.grasp_offset[2] = 0.0
        plan.grasp_z = float(grasp[2])
        plan.obj_bottom_below_grasp = float(grasp[2] - lo[2])
        tops = [v["bbox_max"][2] for v in priv["objects"].values() if "bbox_max" in v]
        plan.carry_z = float(max(tops + [hi[2]]) + ext[2] + self.lift_clearance)
        plan.phase = "approach"

    def _target_xy_top(self, priv: dict[str, Any], plan: _Plan) -> tuple[np.ndarray, float]:
        objects = {**priv.get("fixtures", {}), **priv["objects"]}
        if not plan.target_is_region:
            t = objects[plan.target]
            top = t["bbox_max"][2] if "bbox_max" in t else t["pos"][2]
            return np.asarray(t["pos"][:2]), float(top)
        site = priv["sites"].get(plan.target)
        owner = max((n for n in objects if plan.target.startswith(n + "_")), key=len, default=None)
        xy = np.asarray(site[:2]) if site is not None else np.asarray(objects[owner]["pos"][:2])
        top = float(objects[owner]["bbox_max"][2]) if owner and "bbox_max" in objects[owner] else float(site[2])
        return xy, top

    # ------------------------------------------------------------------ control
    def _act(self, obs: dict[str, Any], plan: _Plan) -> np.ndarray:
        priv = obs.get("privileged")
        eef = np.asarray(obs["state"]["eef_pos"], dtype=np.float64)
        quat = np.asarray(obs["state"]["eef_quat"], dtype=np.float64)
        if priv is None:
            return np.array([0, 0, 0, 0, 0, 0, -1.0])
        if plan.phase == "start":
            attempts = plan.attempts
            self._setup(priv, plan)
            plan.attempts, plan.steps_in_phase = attempts, 0
        if plan.done and plan.phase == "idle":
            return np.array([0, 0, 0, 0, 0, 0, -1.0])
        o = priv["objects"][plan.obj]
        obj_xy = np.asarray(o["pos"][:2])
        grip = -1.0
        plan.steps_in_phase += 1
        n = plan.steps_in_phase
        grasp_xy = obj_xy + plan.grasp_offset[:2]
        if plan.phase == "approach":
            target = np.array([*grasp_xy, max(plan.grasp_z + 0.10, eef[2]) if n < 5 else plan.grasp_z + 0.10])
            if np.linalg.norm((target - eef)[:2]) < 0.012 and abs(target[2] - eef[2]) < 0.03 or n > 120:
                self._next(plan, "descend")
        elif plan.phase == "descend":
            target = np.array([*grasp_xy, plan.grasp_z])
            plan.stalled = plan.stalled + 1 if abs(eef[2] - plan.last_z) < 0.001 else 0
            plan.last_z = float(eef[2])
            if abs(eef[2] - plan.grasp_z) < 0.008 or n > 50 or plan.stalled >= 6:
                self._next(plan, "grasp")
        elif plan.phase == "grasp":
            target, grip = np.array([*grasp_xy, plan.grasp_z]), 1.0
            if n == 1:
                plan.obj_z_at_grasp = float(o["pos"][2])
            if n >= 12:
                self._next(plan, "lift")
        elif plan.phase == "lift":
            target, grip = np.array([eef[0], eef[1], plan.carry_z]), 1.0
            if abs(eef[2] - plan.carry_z) < 0.03 or n > 60:
                if o["pos"][2] - plan.obj_z_at_grasp < 0.03 and plan.attempts < 2:  # missed: try again
                    plan.attempts += 1
                    plan.phase = "start"
                    return np.array([0, 0, 0.5, 0, 0, 0, -1.0])
                plan.hold_offset = eef[:2] - obj_xy
                self._next(plan, "carry")
        elif plan.phase in ("carry", "lower"):
            grip = 1.0
            xy, top = self._target_xy_top(priv, plan)
            # keep the object's centre (not the gripper) over the target
            goal_xy = xy + plan.hold_offset
            place_z = top + 0.02 + plan.obj_bottom_below_grasp
            if plan.phase == "carry":
                target = np.array([*goal_xy, plan.carry_z])
                if np.linalg.norm((target - eef)[:2]) < 0.01 or n > 120:
                    self._next(plan, "lower")
            else:
                target = np.array([*goal_xy, place_z])
                if eef[2] - place_z < 0.01 or n > 60:
                    self._next(plan, "release")
        elif plan.phase == "release":
            target, grip = eef.copy(), -1.0
            if n >= 10:
                self._next(plan, "retreat")
        else:  # retreat
            target = np.array([eef[0], eef[1], plan.carry_z])
        pos = np.clip(self.gain * (target - eef) / POS_SCALE, -1.0, 1.0)
        R_cur = quat_to_mat(quat)
        err = mat_to_rotvec(_down_rotation(plan.yaw) @ R_cur.T)
        rot = np.clip(err / ROT_SCALE, -1.0, 1.0)
        return np.array([*pos, *rot, grip])

    @staticmethod
    def _next(plan: _Plan, phase: str) -> None:
        plan.phase, plan.steps_in_phase = phase, 0
