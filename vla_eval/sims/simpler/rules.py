"""SimplerEnv success-rule geometry shared by every embodiment of a task (one definition).

The Panda-look env (:mod:`vla_eval.sims.simpler.env`) and the SimplerEnv-robot envs
(:mod:`vla_eval.sims.simpler.real2sim.scene_env` and its robots) measure positions, extents and
contacts in their own scenes and pass them here, so the thresholds live in one place.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

CONTACT_FORCE = 1e-6
"""A contact counts when its force exceeds this (SimplerEnv: contact impulse norm > 1e-6)."""
LIFT_CLEAR = 0.01
LIFT_SIGNIFICANT = 0.02
LIFT_SIGNIFICANT_STEPS = 5

NEAR_MARGIN = 0.10
"""move_near_in_scene.py MoveNearInSceneEnv.evaluate: near = distance < src + tgt half xy diagonals + 0.10."""
MOVED = 0.03
"""move_near_in_scene.py: an object counts as moved beyond 3 cm of xy travel."""

DRAWER_OPEN = 0.15
"""open_drawer_in_scene.py OpenDrawerInSceneEnv.evaluate: success = drawer joint qpos >= 0.15 m"""
DRAWER_CLOSED = 0.05
"""open_drawer_in_scene.py CloseDrawerInSceneEnv.evaluate: success = drawer joint qpos <= 0.05 m"""
APPLE_DRAWER_OPEN = 0.05
"""place_in_closed_drawer_in_scene.py evaluate: the drawer still open beyond 0.05 m when the apple lands"""

ON_TOP_XY_MARGIN = 0.003
"""put_on_in_scene.py PutOnInSceneEnv.evaluate: ``xy_flag = |offset_xy| <= |tgt_half_xy| + 0.003``."""


def on_top(p_src, p_tgt, src_half, tgt_half, z_offset: float) -> bool:
    """SimplerEnv's bounding-box 'source on target' test (before the contact check). SimplerEnv passes the two
    objects' centres of mass (put_on_in_scene.py L44-45, L81-82: ``source_obj_pose`` / ``target_obj_pose``)."""
    off = np.asarray(p_src, float) - np.asarray(p_tgt, float)
    xy_ok = float(np.linalg.norm(off[:2])) <= float(np.linalg.norm(np.asarray(tgt_half, float)[:2])) + ON_TOP_XY_MARGIN
    z_ok = off[2] > 0 and off[2] - float(tgt_half[2]) - float(src_half[2]) <= float(z_offset)
    return bool(xy_ok and z_ok)


def touching_other(model: mujoco.MjModel, data: mujoco.MjData, own: set[int], allowed: set[int]) -> bool:
    """Whether a body made of the geoms ``own`` has a contact with force > CONTACT_FORCE against any geom
    outside ``own`` and ``allowed`` (SimplerEnv's "touching nothing but ..." checks, on MuJoCo's contacts)."""
    force = np.zeros(6)
    for i in range(data.ncon):
        c = data.contact[i]
        g1, g2 = int(c.geom1), int(c.geom2)
        other = g2 if g1 in own else g1 if g2 in own else None
        if other is None or other in allowed or other in own:
            continue
        mujoco.mj_contactForce(model, data, i, force)
        if np.linalg.norm(force[:3]) > CONTACT_FORCE:
            return True
    return False


def lift_update(state: dict[str, Any], grasped: bool, clear: bool, dz: float) -> tuple[bool, bool]:
    """One step of SimplerEnv's lift rule (grasp_single_in_scene.py GraspSingleInSceneEnv.evaluate) on ``state``
    (``lifted``, ``n_lift_significant``; updated in place), given this step's grasp, whether the object touches
    nothing but the robot (``clear``) and its rise ``dz`` since the episode start.

    The ``lifted`` latch needs no grasp, only losing a grasp resets it. Returns (lifted significantly, success).
    """
    if not grasped:
        state["lifted"] = False
    state["lifted"] = bool(state.get("lifted")) or (clear and dz > LIFT_CLEAR)
    significant = state["lifted"] and dz > LIFT_SIGNIFICANT
    state["n_lift_significant"] = int(state.get("n_lift_significant", 0)) + int(significant)
    return significant, state["lifted"] or state["n_lift_significant"] >= LIFT_SIGNIFICANT_STEPS


CONSECUTIVE_GRASP = 5
"""Steps of continuous grasp SimplerEnv reports as ``consecutive_grasp`` (grasp_single_in_scene.py)."""


def lift_evaluate(env: Any, name: str) -> tuple[bool, dict[str, Any]]:
    """SimplerEnv's lift evaluation of ``name`` for one step of either look of the scene.

    ``env`` is a SimplerEnv-style env (the Panda look or SimplerEnv's own robot): it measures the
    grasp, contacts and rise in its own scene (``is_grasped``, ``_touching_other``, ``_robot_geoms``,
    ``_init_xyz``, ``_consecutive_grasp``, ``_rule_state``); the rule itself is :func:`lift_update`.
    Returns (success, the episode stats SimplerEnv reports).
    """
    m, d, st = env.model, env.data, env._rule_state
    grasped = bool(env.is_grasped(name))
    env._consecutive_grasp = env._consecutive_grasp + 1 if grasped else 0
    clear = not env._touching_other(name, env._robot_geoms)
    dz = float(d.xpos[m.body(name).id][2] - env._init_xyz[name][2])
    significant, success = lift_update(st, grasped, clear, dz)
    return bool(success), {
        "is_grasped": grasped,
        "consecutive_grasp": env._consecutive_grasp >= CONSECUTIVE_GRASP,
        "lifted_object": bool(st["lifted"]),
        "lifted_object_significantly": bool(significant),
        "n_lift_significant": st["n_lift_significant"],
        "lift_height": dz,
    }


def near_evaluate(
    pos: dict[str, np.ndarray],
    init: dict[str, np.ndarray],
    half: dict[str, np.ndarray],
    src: str,
    tgt: str,
    com: dict[str, np.ndarray] | None = None,
) -> tuple[bool, dict[str, Any]]:
    """SimplerEnv's move-near rule (move_near_in_scene.py MoveNearInSceneEnv.evaluate) over the episode's objects.

    ``pos`` / ``init``: each episode object's origin now and after settling; ``half``: its half extents in the world
    frame at the start (SimplerEnv: the bbox rotated by the settled pose). ``com``: the objects' centres of mass now
    (default: ``pos``). SimplerEnv mixes the two: its ``source_obj_pose`` / ``target_obj_pose`` are centre-of-mass
    poses (L342-354), used for the source's and target's height drop (L387-392), the source-target distance (L419) and
    the source's distance to the others (L434); every other position, the after-settle ones included (L324-326), is
    the actor's origin (``obj.pose.p``). Returns (success, stats).
    """
    com = pos if com is None else com
    names = list(pos)
    moved = {n: float(np.linalg.norm(np.asarray(pos[n])[:2] - np.asarray(init[n])[:2])) for n in names}
    others = [n for n in names if n != src]
    moved_correct = moved[src] > MOVED and all(moved[n] < moved[src] for n in others)
    moved_wrong = any(moved[n] > MOVED for n in others) and any(moved[n] > moved[src] for n in others)
    keep_height = all(
        float(com[n][2] - init[n][2]) > -0.15 if n in (src, tgt) else float(pos[n][2] - init[n][2]) > -0.02
        for n in names
    )
    src_xy = np.asarray(com[src])[:2]
    dist = float(np.linalg.norm(src_xy - np.asarray(com[tgt])[:2]))
    near = (
        dist
        < float(np.linalg.norm(np.asarray(half[src])[:2]) + np.linalg.norm(np.asarray(half[tgt])[:2])) + NEAR_MARGIN
    )
    closest = all(dist < float(np.linalg.norm(src_xy - np.asarray(pos[n])[:2])) + 0.01 for n in others)
    stats = {
        "moved_correct_obj": moved_correct,
        "moved_wrong_obj": moved_wrong,
        "near_tgt_obj": near,
        "is_closest_to_tgt": closest,
        "all_obj_keep_height": keep_height,
    }
    return bool(keep_height and moved_correct and near and closest), stats


def drawer_evaluate(kind: str, qpos: float) -> tuple[bool, dict[str, Any]]:
    """SimplerEnv's open / close drawer rule on the task drawer's joint position (metres pulled out)."""
    if kind not in ("drawer_open", "drawer_close"):
        raise ValueError(f"drawer rule {kind!r}: expected 'drawer_open' or 'drawer_close'")
    success = qpos >= DRAWER_OPEN if kind == "drawer_open" else qpos <= DRAWER_CLOSED
    return bool(success), {"qpos": float(qpos)}


def touching(model: mujoco.MjModel, data: mujoco.MjData, own: set[int], geoms: set[int]) -> bool:
    """Whether a body made of the geoms ``own`` pushes on any of ``geoms`` with a force > CONTACT_FORCE
    (SimplerEnv: the total contact impulse between two actors / a named collision shape > 1e-6)."""
    force = np.zeros(6)
    for i in range(data.ncon):
        c = data.contact[i]
        g1, g2 = int(c.geom1), int(c.geom2)
        if (g1 in own and g2 in geoms) or (g2 in own and g1 in geoms):
            mujoco.mj_contactForce(model, data, i, force)
            if np.linalg.norm(force[:3]) > CONTACT_FORCE:
                return True
    return False


def in_drawer_update(state: dict[str, Any], qpos: float, on_floor: bool) -> tuple[bool, dict[str, Any]]:
    """One step of SimplerEnv's place-into-closed-drawer rule (place_in_closed_drawer_in_scene.py
    PlaceObjectInClosedDrawerInSceneEnv.evaluate) on ``state`` (``subtask``, ``has_contact``, ``is_drawer_open``;
    updated in place): the object's contacts with the drawer's floor are counted over the whole episode; success =
    second subtask, drawer still out >= 0.05 m and at least one counted contact."""
    state["has_contact"] = int(state.get("has_contact", 0)) + int(on_floor)
    state["is_drawer_open"] = bool(state.get("is_drawer_open")) or qpos >= DRAWER_OPEN
    subtask = int(state.get("subtask", 0))
    stats = {
        "qpos": float(qpos),
        "is_drawer_open": state["is_drawer_open"],
        "has_contact": state["has_contact"],
        "subtask": subtask,
    }
    return bool(subtask == 1 and qpos >= APPLE_DRAWER_OPEN and state["has_contact"] >= 1), stats
