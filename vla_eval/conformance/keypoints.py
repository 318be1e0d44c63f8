"""The expert's key points of a pick-and-place task, in world coordinates.

An image-space oracle (VLA-R1) needs *where* the expert would grasp and *where* it would put
the object, not its step-by-step actions.  Both are read from privileged state, with the
same geometry the scripted experts use (``vla_eval.sims.tabletop.expert`` for the built-in
tabletop scenes, ``vla_eval.sims.libero.expert`` for LIBERO), adapted to what the
planner bridge can execute: the bridge never rotates the gripper, so a bowl is grasped on
the rim points that lie on the fingers' current closing axis.

Functions return ``None`` when the task is not a pick-and-place (push, drawer): an
image-space pick/place oracle has nothing to say there, and the conformance report marks
the task as not applicable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vla_eval.geometry import quat_to_mat


@dataclass(frozen=True)
class PickPlace:
    """World points of one pick-and-place: the grasp (top of the grasped part) and the place target
    (surface point under where the end-effector should release, object offset included)."""

    grasp: np.ndarray
    place: np.ndarray
    object_pos: np.ndarray


def is_libero(priv: dict[str, Any]) -> bool:
    return "goal" in priv and "objects" in priv


def tabletop_pick_place(priv: dict[str, Any], eef: np.ndarray) -> PickPlace | None:
    """Built-in tabletop scenes (``on_top`` predicates): grasp the object's top centre, place on the support's top."""
    task = priv.get("task") or {}
    if task.get("type") != "on_top":
        return None
    obj = np.asarray(priv[f"{task['object']}_pos"], dtype=np.float64)
    half = float(np.asarray(priv[f"{task['object']}_size"])[-1])
    sup = np.asarray(priv[f"{task['support']}_pos"], dtype=np.float64)
    sup_top = float(sup[2] + np.asarray(priv[f"{task['support']}_size"])[-1])
    offset = np.asarray(eef, dtype=np.float64)[:2] - obj[:2]  # keep the object, not the gripper, over the target
    return PickPlace(
        grasp=np.array([obj[0], obj[1], obj[2] + half]),
        place=np.array([sup[0] + offset[0], sup[1] + offset[1], sup_top]),
        object_pos=obj,
    )


def _libero_goal(priv: dict[str, Any]) -> tuple[str, str] | None:
    goal = [g for g in priv.get("goal", []) if g and str(g[0]).lower() in ("on", "in")]
    if not goal:
        return None
    _, obj, target = goal[0][:3]
    return str(obj), str(target)


def libero_target_top(priv: dict[str, Any], target: str) -> tuple[np.ndarray, float]:
    """XY and top height of a LIBERO place target (an object/fixture, or a region site), as the expert reads it."""
    objects = {**priv.get("fixtures", {}), **priv["objects"]}
    if target in objects:
        t = objects[target]
        top = t["bbox_max"][2] if "bbox_max" in t else t["pos"][2]
        return np.asarray(t["pos"][:2], dtype=np.float64), float(top)
    site = priv.get("sites", {}).get(target)
    owner = max((n for n in objects if target.startswith(n + "_")), key=len, default=None)
    xy = np.asarray(site[:2] if site is not None else objects[owner]["pos"][:2], dtype=np.float64)
    top = float(objects[owner]["bbox_max"][2]) if owner and "bbox_max" in objects[owner] else float(site[2])
    return xy, top


def libero_grasp(priv: dict[str, Any], obj: str, eef_quat_wxyz: np.ndarray | None) -> np.ndarray:
    """Grasp point of LIBERO object ``obj``: the visible top centre of a narrow object, or for a wide one (bowls)
    the rim point on the fingers' closing axis nearest the gripper (the bridge does not turn the wrist)."""
    o = priv["objects"][obj]
    lo, hi = np.asarray(o["bbox_min"], dtype=np.float64), np.asarray(o["bbox_max"], dtype=np.float64)
    ext, centre = hi - lo, (lo + hi) / 2
    if min(ext[0], ext[1]) <= 0.075:
        # the top face's centre, the point a person marks on the object: a point inside the object
        # (the expert's own grasp height) lifts to the face the camera sees, centimetres in front of
        # the centre (0.5 cm per 3 mm of height at agentview's elevation), and the fingers close off-centre
        return np.array([centre[0], centre[1], hi[2]])
    # fingers close along the gripper's local y axis (libero_expert: yaw 0 closes along world y)
    if eef_quat_wxyz is not None:
        axis = quat_to_mat(eef_quat_wxyz)[:2, 1]
    else:
        axis = np.array([0.0, 1.0])
    axis = axis / (np.linalg.norm(axis) or 1.0)
    half = float(abs(axis[0]) * ext[0] / 2 + abs(axis[1]) * ext[1] / 2)
    eef = np.asarray(priv["eef_pos"], dtype=np.float64)
    candidates = [centre[:2] + s * axis * (half - 0.008) for s in (1.0, -1.0)]
    # like the expert, prefer the rim side away from fixtures (cabinet, stove), then the side near the gripper
    boxes = [f["geom_boxes"] for f in priv.get("fixtures", {}).values() if "geom_boxes" in f]
    boxes = np.concatenate(boxes) if boxes else np.zeros((0, 6))
    gz = hi[2] - 0.015

    def score(pt: np.ndarray, s: float) -> float:
        finger = pt + s * axis * 0.035
        f_lo = np.array([finger[0] - 0.015, finger[1] - 0.015, gz - 0.015])
        f_hi = np.array([finger[0] + 0.015, finger[1] + 0.015, gz + 0.15])
        hits = np.all((boxes[:, :3] < f_hi) & (boxes[:, 3:] > f_lo), axis=1).sum() if len(boxes) else 0
        return -float(hits) - 0.1 * float(np.linalg.norm(pt - eef[:2]))

    best = max(zip(candidates, (1.0, -1.0)), key=lambda c: score(*c))[0]
    return np.array([best[0], best[1], gz])


def libero_pick_place(priv: dict[str, Any], eef: np.ndarray, eef_quat_wxyz: np.ndarray | None) -> PickPlace | None:
    """LIBERO ``(On A B)`` / ``(In A region)`` goals: the expert's grasp and place geometry."""
    goal = _libero_goal(priv)
    if goal is None:
        return None
    obj, target = goal
    if obj not in priv["objects"]:
        return None
    o = priv["objects"][obj]
    xy, top = libero_target_top(priv, target)
    offset = np.asarray(eef, dtype=np.float64)[:2] - np.asarray(o["pos"][:2], dtype=np.float64)
    return PickPlace(
        grasp=libero_grasp(priv, obj, eef_quat_wxyz),
        place=np.array([xy[0] + offset[0], xy[1] + offset[1], top]),
        object_pos=np.asarray(o["pos"], dtype=np.float64),
    )


def pick_place(obs: dict[str, Any]) -> PickPlace | None:
    """Key points for the observation's episode (privileged state in ``obs['privileged']``)."""
    priv = obs.get("privileged")
    if priv is None:
        raise ValueError("the oracle needs privileged state (obs['privileged']); the policy must set needs_privileged")
    state = obs.get("state", {})
    eef = np.asarray(state.get("eef_pos", priv.get("eef_pos")), dtype=np.float64)
    if is_libero(priv):
        return libero_pick_place(priv, eef, state.get("eef_quat"))
    return tabletop_pick_place(priv, eef)
