"""Scripted expert for the built-in tabletop scenes, driven by privileged simulator state.

It exists to prove every built-in task is solvable with the env's own action space and
that each success predicate fires; it is not a learning baseline. Each env in the batch
runs its own phase machine, chosen by the task's predicate type:

* ``on_top`` (pick and place): above -> descend -> close -> lift -> carry -> lower -> open -> retreat,
  restarting from "above" if the object slips out of the hand.
* ``in_region`` (push): go behind the block on the block->target line (high, then low),
  push along the line with lateral correction, re-approach if the block drifts off-line.
* ``joint_at_least`` (drawer): above the handle -> descend -> close -> pull along the slide axis.

Actions are the env's native 7-D delta-EEF space: a proportional step towards the phase's
target pose, clipped to [-1, 1] with its direction preserved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vla_eval.actions.space import LIBERO_DELTA_EEF, ActionChunk
from vla_eval.adapter import Policy, SlotStates
from vla_eval.geometry import mat_to_rotvec_trace, mat_yaw, quat_yaw, rotz

POS_SCALE = 0.05
ROT_SCALE = 0.5
OPEN, CLOSE = -1.0, 1.0
HOME_MAT = np.diag([1.0, -1.0, -1.0])
"""EEF orientation at home: gripper pointing down, fingers closing along world y."""


def _wrap(angle: float, period: float) -> float:
    """Wrap into [-period/2, period/2): symmetric grippers need not turn further than that."""
    return (angle + period / 2.0) % period - period / 2.0


def _quat_yaw_of_mat(mat: np.ndarray) -> float:
    """Yaw of the EEF relative to the home (pointing-down) orientation."""
    return mat_yaw(mat @ HOME_MAT.T)


def _clip_dir(vec: np.ndarray) -> np.ndarray:
    peak = np.max(np.abs(vec))
    return vec / peak if peak > 1.0 else vec


def move_action(
    eef_pos, eef_mat, target_pos, yaw: float, gripper: float, speed: float = 1.0, period: float = math.pi
) -> np.ndarray:
    """One native action stepping the EEF towards ``target_pos`` with the gripper down at ``yaw``.

    ``yaw`` is taken modulo ``period`` (the gripper's or the object's symmetry) nearest to the
    current yaw, so targets on either side of a wrap boundary do not demand a half turn.
    """
    current = _quat_yaw_of_mat(eef_mat)
    yaw = current + _wrap(yaw - current, period)
    dpos = _clip_dir((np.asarray(target_pos) - eef_pos) / POS_SCALE) * speed
    drot = _clip_dir(mat_to_rotvec_trace(rotz(yaw) @ HOME_MAT @ eef_mat.T) / ROT_SCALE)
    return np.concatenate([dpos, drot, [gripper]])


@dataclass
class _Episode:
    phase: str = "start"
    count: int = 0
    memo: dict[str, Any] = field(default_factory=dict)

    def go(self, phase: str) -> None:
        self.phase, self.count = phase, 0


class ScriptedExpert(Policy):
    name = "scripted"
    action_space = LIBERO_DELTA_EEF
    needs_images = False
    needs_privileged = True
    slot_aware = True

    def __init__(self, tolerance: float = 0.008):
        self.tolerance = float(tolerance)
        self._episodes: SlotStates[_Episode] = SlotStates(lambda instruction, seed: _Episode())

    def reset(self, instructions: list[str], seeds: list[int] | None = None, slots=None) -> None:
        self._episodes.reset(instructions, seeds, slots)

    def release(self, slots) -> None:
        self._episodes.release(slots)

    def predict(self, obs_batch: list[dict[str, Any]], slots=None) -> ActionChunk:
        episodes = self._episodes.rows(obs_batch, slots)
        actions = np.stack([self._act(obs["privileged"], ep) for obs, ep in zip(obs_batch, episodes)])
        return ActionChunk(
            actions=actions[:, None, :], space=LIBERO_DELTA_EEF, extras=[{"phase": ep.phase} for ep in episodes]
        )

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "tolerance": self.tolerance}

    def _act(self, priv: dict[str, Any], ep: _Episode) -> np.ndarray:
        ep.count += 1
        task = priv["task"]
        kind = task["type"]
        if kind == "on_top":
            return self._pick_place(priv, task, ep)
        if kind == "in_region":
            return self._push(priv, task, ep)
        if kind == "joint_at_least":
            return self._drawer(priv, task, ep)
        raise ValueError(f"scripted expert has no strategy for task type {kind!r}")

    # ---------------------------------------------------------------- pick and place
    def _pick_place(self, priv, task, ep: _Episode) -> np.ndarray:
        eef, mat = np.asarray(priv["eef_pos"]), np.asarray(priv["eef_mat"])
        obj = np.asarray(priv[f"{task['object']}_pos"])
        obj_half = float(np.asarray(priv[f"{task['object']}_size"])[-1])
        sup = np.asarray(priv[f"{task['support']}_pos"])
        sup_top = sup[2] + float(np.asarray(priv[f"{task['support']}_size"])[-1])
        grasp_yaw = _wrap(quat_yaw(np.asarray(priv[f"{task['object']}_quat"])), math.pi / 2)
        tol = self.tolerance
        if ep.phase == "start":
            ep.go("above")
        if ep.phase == "above":
            target = obj + [0, 0, 0.1]
            yaw_err = abs(_wrap(grasp_yaw - _quat_yaw_of_mat(mat), math.pi / 2))
            if np.linalg.norm(target - eef) < 2 * tol and yaw_err < 0.05:
                ep.go("descend")
            else:
                return move_action(eef, mat, target, grasp_yaw, OPEN)
        if ep.phase == "descend":
            target = np.array([obj[0], obj[1], max(obj[2] - 0.004, 0.012)])
            if np.linalg.norm(target - eef) < 0.6 * tol or ep.count > 30:
                ep.go("close")
            else:
                return move_action(eef, mat, target, grasp_yaw, OPEN, speed=0.7)
        if ep.phase == "close":
            if ep.count > 5:
                ep.go("lift")
            return move_action(eef, mat, eef, grasp_yaw, CLOSE)
        carry_z = sup_top + 2 * obj_half + 0.08
        if ep.phase == "lift":
            if eef[2] > carry_z - 0.02:
                ep.go("carry")
            else:
                return move_action(eef, mat, [eef[0], eef[1], carry_z], grasp_yaw, CLOSE)
        if ep.phase in ("carry", "lower") and obj[2] < eef[2] - 0.03:
            ep.go("above")  # dropped: start over from the object's new pose
            return move_action(eef, mat, eef + [0, 0, 0.03], grasp_yaw, OPEN)
        offset = obj - eef
        if ep.phase == "carry":
            target = np.array([sup[0] - offset[0], sup[1] - offset[1], carry_z])
            if np.linalg.norm(target - eef) < 1.5 * tol:
                ep.go("lower")
            else:
                return move_action(eef, mat, target, grasp_yaw, CLOSE, speed=0.6)
        if ep.phase == "lower":
            target = np.array([sup[0] - offset[0], sup[1] - offset[1], sup_top + obj_half + 0.008 - offset[2]])
            if np.linalg.norm(target - eef) < tol or ep.count > 30:
                ep.go("open")
            else:
                return move_action(eef, mat, target, grasp_yaw, CLOSE, speed=0.6)
        if ep.phase == "open":
            if ep.count > 4:
                ep.go("retreat")
            return move_action(eef, mat, eef, grasp_yaw, OPEN)
        return move_action(eef, mat, eef + [0, 0, 0.05], grasp_yaw, OPEN)

    # ------------------------------------------------------------------------ push
    def _push(self, priv, task, ep: _Episode) -> np.ndarray:
        eef, mat = np.asarray(priv["eef_pos"]), np.asarray(priv["eef_mat"])
        block = np.asarray(priv[f"{task['object']}_pos"])
        size = np.asarray(priv[f"{task['object']}_size"])
        goal = np.asarray(priv[f"{task['region']}_pos"])
        delta = goal[:2] - block[:2]
        dist = float(np.linalg.norm(delta))
        u = delta / max(dist, 1e-6)
        normal = np.array([-u[1], u[0]])
        yaw = _wrap(math.atan2(u[1], u[0]), math.pi)
        push_z = 0.022
        standoff = float(np.hypot(size[0], size[1])) + 0.011 + 0.012
        behind = block[:2] - u * (standoff + 0.03)
        rel = eef[:2] - block[:2]
        along, lateral = float(rel @ u), float(rel @ normal)
        tol = self.tolerance
        if ep.phase == "start":
            ep.go("behind_high")
        if ep.phase == "pushing" and (abs(lateral) > 0.025 or along > -float(min(size[:2]))):
            ep.go("behind_high")
        if ep.phase == "behind_high":
            target = np.array([*behind, 0.09])
            if np.linalg.norm(target - eef) < 2 * tol:
                ep.go("behind_low")
            else:
                return move_action(eef, mat, target, yaw, CLOSE)
        if ep.phase == "behind_low":
            target = np.array([*behind, push_z])
            if abs(lateral) > 0.03:
                ep.go("behind_high")
                return move_action(eef, mat, [eef[0], eef[1], 0.09], yaw, CLOSE)
            if np.linalg.norm(target - eef) < tol or ep.count > 25:
                ep.go("pushing")
            else:
                return move_action(eef, mat, target, yaw, CLOSE)
        if dist < 0.01:
            return move_action(eef, mat, [eef[0], eef[1], 0.09], yaw, CLOSE)
        step = min(0.015, dist + 0.005)
        target_xy = eef[:2] + u * step - normal * lateral * 0.5
        return move_action(eef, mat, [*target_xy, push_z], yaw, CLOSE)

    # ---------------------------------------------------------------------- drawer
    def _drawer(self, priv, task, ep: _Episode) -> np.ndarray:
        eef, mat = np.asarray(priv["eef_pos"]), np.asarray(priv["eef_mat"])
        joint = task["joint"]
        axis = np.asarray(priv[f"{joint}_axis"], dtype=float)
        handle = _handle_pos(priv)
        yaw = _wrap(math.atan2(axis[1], axis[0]), math.pi)
        tol = self.tolerance
        if ep.phase == "start":
            ep.go("above")
        if ep.phase == "above":
            target = handle + [0, 0, 0.1]
            if np.linalg.norm(target - eef) < 2 * tol:
                ep.go("descend")
            else:
                return move_action(eef, mat, target, yaw, OPEN)
        if ep.phase == "descend":
            if np.linalg.norm(handle - eef) < tol or ep.count > 30:
                ep.go("close")
            else:
                return move_action(eef, mat, handle, yaw, OPEN, speed=0.7)
        if ep.phase == "close":
            if ep.count > 5:
                ep.go("pull")
            return move_action(eef, mat, handle, yaw, CLOSE)
        if ep.phase == "pull" and np.linalg.norm(handle - eef) > 0.03:
            ep.go("regrasp")
        if ep.phase == "regrasp":
            if ep.count > 3:
                ep.go("above")
            return move_action(eef, mat, eef + [0, 0, 0.03], yaw, OPEN)
        target = handle + axis * 0.03
        return move_action(eef, mat, target, yaw, CLOSE, speed=0.6)


def _handle_pos(priv: dict[str, Any]) -> np.ndarray:
    keys = [k for k in priv if k.endswith("handle_pos")]
    if not keys:
        raise KeyError("drawer task: privileged state has no '*handle_pos' site")
    return np.asarray(priv[sorted(keys)[0]], dtype=float)
