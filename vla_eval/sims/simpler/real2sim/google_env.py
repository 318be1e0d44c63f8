"""Google-robot visual matching with SimplerEnv's own robot, objects, camera and real photo, in MuJoCo.

As :mod:`.bridge` does for the WidowX: the task (instruction, step limit, configuration count,
success rule, final-step judging) is the shared :class:`~vla_eval.sims.simpler.tasks.SimplerTask`
the Panda-look suite uses; :func:`native_config` gives each configuration's placement in
SimplerEnv's own world frame, and the scene is SimplerEnv's:

* the Google robot (``google_robot_static``) converted from its URDF, with one of SimplerEnv's
  four visual-matching URDF colourings, base at SimplerEnv's pose (0.35, 0.20), turned 180 degrees;
* the coke can model at its ``info_*.json`` scale and density, in SimplerEnv's 5 x 5 grid and
  three orientations;
* a table box with its top at SimplerEnv's table height, on the footprint of SimplerEnv's own
  stand-in table (the stage mesh is not in the asset pack: labelled as a substitute);
* drawers: SimplerEnv's cabinet (``mk_station_recolor``) at its pose with no table, the robot at one of the nine
  poses of SimplerEnv's drawer script per configuration, each with its own photo;
* the ``overhead_camera`` on ``link_camera`` (the head, posed by the head joints) with SimplerEnv's
  intrinsics; the real photo composited wherever the segmentation shows neither robot nor object.

Control is SimplerEnv's ``arm_pd_ee_delta_pose_align_interpolate_by_planner`` +
``gripper_pd_joint_target_delta_pos_interpolate_by_planner`` at 3 Hz over a 513 Hz simulation:
(dx, dy, dz) metres and an axis-angle rotation in the base frame applied to the *measured*
end-effector pose (rotation about the end-effector position), solved by IK (without the joint limits, as pinocchio's
is) to joint targets that SimplerEnv's jerk-limited Ruckig planner interpolates over the control step
(:class:`ArmPlanner`); the gripper action adds ``a[6]`` x 1.31 rad
(+ closes) to the fingers' last drive target, and each finger's drive follows SimplerEnv's jerk-limited Ruckig
profile to it (:class:`FingerPlanner`). The two fingertips collide with each other, as in PhysX, which stops a
close on nothing at ~1.07 rad instead of the 1.3 rad joint limit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from vla_eval.actions.space import ActionSpace
from vla_eval.geometry import rotvec_to_mat
from vla_eval.sims.simpler.real2sim import google_robot as G
from vla_eval.sims.simpler.real2sim import widowx_robot as W
from vla_eval.sims.simpler.real2sim.scene_env import RealSceneEnv
from vla_eval.sims.simpler.real2sim.scene_xml import _fmt, position_drives, scene_mjcf, scene_objects
from vla_eval.sims.simpler.real2sim.urdf import urdf_to_mjcf_parts
from vla_eval.sims.simpler.rules import (
    CONTACT_FORCE,
    drawer_evaluate,
    in_drawer_update,
    lift_evaluate,
    near_evaluate,
    touching,
)
from vla_eval.sims.simpler.tasks import SimplerTask

SIMPLER_GOOGLE_ACTION = ActionSpace(
    kind="delta_eef", rotation="axis_angle", position_units="meters", gripper="close_positive", low=-1.0, high=1.0
)
"""SimplerEnv's Google-robot action: metres and radians in the base frame; a[6] a relative gripper command, + closes
(RT-1's closedness action as SimplerEnv's RT-1 wrapper sends it)."""

SETTLE_S = 1.0  # grasp_single_in_scene.py _initialize_actors: _settle(0.5) twice
GRASP_MAX_ANGLE = 80.0  # grasp_single_in_scene.py evaluate: check_grasp(obj, max_angle=80)
LIMIT_TIMECONST = 0.004
"""Joint-limit stiffness (MuJoCo solref time constant, s; ~2 simulation steps, the stiffest MuJoCo advises), for the
arm and the fingers: PhysX's limits are hard. A finger's drive target may sit 0.01 rad past its limit
(clip_target_thres), and an arm joint's far past it (pinocchio's IK knows no limits); under the default 0.02 s the
fingers reached 0.01 rad past and the arm's forearm joint 0.28 rad past its 2.92 rad limit (close bottom drawer, pose
B0), where SAPIEN's stops at 2.919."""
LIMIT_IMPEDANCE = 0.99
"""... and its impedance (MuJoCo solimp d0 = dwidth; default 0.9 / 0.95 leaves the limit 5-10% soft)."""
FINGER_BIT = 4
FINGER_PRIORITY = 1
"""Collision bit the left finger links carry (contype) and the right ones accept (conaffinity): robot links are
contype 2 / conaffinity 1 (no self-collision), objects 1 / 3."""
STATION_PREFIX = "cabinet_"


def station_joint(level: str) -> str:
    """The MJCF joint of SimplerEnv's ``<level>_drawer_joint`` (mk_station URDF)."""
    return f"{STATION_PREFIX}{level}_drawer_joint"


def ruckig_path(
    q0: np.ndarray, v0: np.ndarray, target: np.ndarray, limits: tuple[float, float, float], n: int, dt: float
) -> tuple[np.ndarray, np.ndarray]:
    """SimplerEnv's joint-path planner (``agents/utils.py`` ``parameterize_path``, sampled as ``base_controller.py``
    ``plan_joint_path`` samples it): one time-synchronised Ruckig trajectory over all the joints from ``q0`` at
    velocity ``v0`` (zero acceleration) to rest at ``target`` under (velocity, acceleration, jerk) ``limits``,
    positions and velocities at substeps 0 ... n of length ``dt`` (held at the end once it is done)."""
    try:
        from ruckig import InputParameter, Result, Ruckig, Trajectory
    except ImportError as e:  # a checkout installed before ruckig became a dependency
        raise ImportError(
            "the Google robot's joint planner needs ruckig (SimplerEnv's planner): "
            "pip install -e . (or pip install ruckig)"
        ) from e
    vlim, alim, jlim = limits
    dof = len(q0)
    inp = InputParameter(dof)
    inp.current_position = np.asarray(q0, float).tolist()
    inp.current_velocity = np.asarray(v0, float).tolist()
    inp.current_acceleration = [0.0] * dof
    inp.target_position = np.asarray(target, float).tolist()
    inp.target_velocity = [0.0] * dof
    inp.target_acceleration = [0.0] * dof
    inp.max_velocity = [vlim] * dof
    inp.min_velocity = [-vlim] * dof
    inp.max_acceleration = [alim] * dof
    inp.min_acceleration = [-alim] * dof
    inp.max_jerk = [jlim] * dof
    traj = Trajectory(dof)
    result = Ruckig(dof).calculate(inp, traj)
    if result not in (Result.Working, Result.Finished):
        raise RuntimeError(f"joint planner failed ({result}) from {list(q0)} at {list(v0)} to {list(target)}")
    times = np.clip(np.arange(n + 1) * dt, 0.0, traj.duration)
    samples = [traj.at_time(float(t)) for t in times]
    return np.array([p for p, _, _ in samples]), np.array([v for _, v, _ in samples])


class ArmPlanner:
    """SimplerEnv's ``arm_pd_ee_delta_pose_align_interpolate_by_planner`` joint interpolation (``pd_joint_pos.py``
    ``_setup_qpos_interpolation`` L99-134, limits ``defaults.py`` L130-132: 1.5 rad/s, 2 rad/s^2, 50 rad/s^3).

    The first plan after a reset starts from the measured joints and velocity (clipped to the velocity limit); every
    later one from where the previous plan was at the end of its control step, with its velocity there (the arm is
    not ``use_target``), so the drive targets form one smooth jerk-limited path even when the arm lags behind them.
    Only position targets are set (``interpolate_planner_exec_set_target_vel`` is off for the arm). The linear,
    velocity-limited ramp this replaced reached each step's goal about 0.7 control steps sooner than SAPIEN's arm.
    """

    def __init__(self, n_substeps: int, dt: float):
        self.n_substeps, self.dt = int(n_substeps), float(dt)
        self.path: np.ndarray | None = None
        self.vel: np.ndarray | None = None

    def reset(self) -> None:
        self.path = self.vel = None

    def set_goal(self, goal: np.ndarray, qpos: np.ndarray, qvel: np.ndarray) -> None:
        limits = (G.ARM_VEL_LIMIT, G.ARM_ACC_LIMIT, G.ARM_JERK_LIMIT)
        if self.path is None:
            q0, v0 = np.asarray(qpos, float), np.clip(qvel, -limits[0], limits[0])
        else:
            q0, v0 = self.path[-1], self.vel[-1]
        self.path, self.vel = ruckig_path(q0, v0, goal, limits, self.n_substeps, self.dt)

    def drive_at(self, k: int) -> np.ndarray:
        """Drive target for substep ``k`` (1-based)."""
        return self.path[min(k, len(self.path) - 1)]


class FingerPlanner:
    """SimplerEnv's ``gripper_pd_joint_target_delta_pos_interpolate_by_planner`` for the two finger joints.

    The facts and their sources are :mod:`.google_robot`'s ``GRIPPER_*``. Each control step the scaled action is added
    to the last drive target (not to the measured position, nor to the previous goal), clipped, and a Ruckig
    trajectory (velocity, acceleration and jerk limited, ending at rest) is planned from each finger's measured
    position and velocity; the drive target of simulation substep ``k`` is the trajectory at ``k`` substeps, its
    velocity target the trajectory's velocity there. The linear ramp this replaced closed the hand in one step where
    SimplerEnv's takes four, so a policy's grasp timing did not transfer.
    """

    def __init__(self, n_substeps: int, dt: float):
        self.n_substeps, self.dt = int(n_substeps), float(dt)
        self.reset(np.zeros(len(G.FINGER_JOINTS)))

    def reset(self, qpos: np.ndarray) -> None:
        """SimplerEnv's controller reset: the goal, the last drive target and the path all at the measured position."""
        q = np.asarray(qpos, dtype=float).copy()
        self.target = q.copy()
        self.drive = q.copy()
        self.path = np.tile(q, (self.n_substeps + 1, 1))
        self.vel = np.zeros_like(self.path)

    def set_action(self, a: float, qpos: np.ndarray, qvel: np.ndarray) -> None:
        delta = float(np.clip(a, -1.0, 1.0)) * G.GRIPPER_HIGH  # clip_and_scale_action to [-1.31, 1.31]
        if abs(delta) < G.GRIPPER_SMALL_ACTION:
            target = self.target.copy()
        else:
            lo, hi = G.GRIPPER_JOINT_RANGE
            target = np.clip(self.drive + delta, lo - G.GRIPPER_CLIP_THRES, hi + G.GRIPPER_CLIP_THRES)
        self.target = target
        self.path, self.vel = self.plan(np.asarray(qpos, float), np.asarray(qvel, float), target)

    def plan(self, q0: np.ndarray, v0: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions and velocities at substeps 0 ... n (held at the end once the trajectory is done)."""
        limits = (G.GRIPPER_VEL_LIMIT, G.GRIPPER_ACC_LIMIT, G.GRIPPER_JERK_LIMIT)
        return ruckig_path(q0, np.clip(v0, -limits[0], limits[0]), target, limits, self.n_substeps, self.dt)

    def drive_at(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Drive target and velocity target for substep ``k`` (1-based, as SimplerEnv counts before each sim step)."""
        i = min(k, len(self.path) - 1)
        self.drive = self.path[i]
        return self.path[i], self.vel[i]


@dataclass(frozen=True)
class GoogleRealTask:
    models: dict[str, str]
    model_json: str
    overlay: str
    base_xy: tuple[float, float]
    source: str
    orientation: str | None = None
    base_yaw: float = 0.0
    """extra yaw of the base on top of SimplerEnv's [0, 0, 0, 1] (move near: -0.09 rad)"""
    densities: dict[str, float] | None = None
    visual_substitutes: dict[str, tuple[float, float, float, float]] | None = None
    station: bool = False
    """SimplerEnv's cabinet (``mk_station_recolor``) stands in the scene, and no table (``dummy_drawer``)"""
    poses: tuple[tuple[str, float, float, float], ...] | None = None
    """Per configuration (overlay id, base x, base y, extra base yaw): the drawer tasks' nine robot poses, each with its
    own photo; None = one pose (``base_xy``, ``base_yaw``) and one photo (``overlay``) for every configuration"""

    def overlay_for(self, config_id: int) -> str:
        return G.drawer_overlay(self.poses[config_id][0]) if self.poses else self.overlay

    def base_for(self, config_id: int) -> tuple[tuple[float, float], float]:
        if self.poses:
            _, x, y, yaw = self.poses[config_id]
            return (x, y), yaw
        return self.base_xy, self.base_yaw


GOOGLE_REAL_TASKS: dict[str, GoogleRealTask] = {
    f"google_pick_coke_can_{o}": GoogleRealTask(
        {"coke_can": G.COKE_MODEL},
        G.COKE_MODEL_JSON,
        G.COKE_OVERLAY,
        G.BASE_XY_COKE,
        "GraspSingleOpenedCokeCanInScene-v0",
        o,
    )
    for o in ("horizontal", "vertical", "standing")
}
GOOGLE_REAL_TASKS["google_move_near"] = GoogleRealTask(
    dict(G.MOVE_NEAR_MODELS),
    G.MOVE_NEAR_MODEL_JSON,
    G.MOVE_NEAR_OVERLAY,
    G.BASE_XY_MOVE_NEAR,
    "MoveNearGoogleBakedTexInScene-v0 (models of its -v1 variant)",
    base_yaw=G.BASE_YAW_MOVE_NEAR,
    densities=dict(G.MOVE_NEAR_DENSITY),
    visual_substitutes=dict(G.MOVE_NEAR_VISUAL_SUBSTITUTE),
)

for _action in ("open", "close"):
    for _level in ("top", "middle", "bottom"):
        GOOGLE_REAL_TASKS[f"google_{_action}_{_level}_drawer"] = GoogleRealTask(
            {},
            G.MOVE_NEAR_MODEL_JSON,
            G.drawer_overlay(G.DRAWER_POSES[0][0]),
            G.DRAWER_POSES[0][1:3],
            f"{_action.capitalize()}{_level.capitalize()}DrawerCustomInScene-v0",
            base_yaw=G.DRAWER_POSES[0][3],
            station=True,
            poses=G.DRAWER_POSES,
        )

GOOGLE_REAL_TASKS["google_place_apple_in_closed_top_drawer"] = GoogleRealTask(
    {"apple": G.APPLE_MODEL},
    G.MOVE_NEAR_MODEL_JSON,
    G.drawer_overlay(G.APPLE_POSES[0]),
    G.DRAWER_POSES[0][1:3],
    "PlaceIntoClosedTopDrawerCustomInScene-v0",
    base_yaw=G.DRAWER_POSES[0][3],
    station=True,
    poses=tuple(
        p for p in G.DRAWER_POSES if p[0] in G.APPLE_POSES for _ in range(len(G.APPLE_GRID_X) * len(G.APPLE_GRID_Y))
    ),
)


def native_config(task: SimplerTask, config_id: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Object name -> (xy, quat wxyz) in SimplerEnv's world for configuration ``config_id``.

    The coke-can tasks' 25 configurations are SimplerEnv's 5 x 5 grid in its evaluation order (x outer, y inner),
    the Panda-look grid's order; the orientation is the task's (lr_switch / laid_vertically / upright).
    Move near: the configuration's triplet (the shared task's poses, in triplet order) on SimplerEnv's triangle
    ``(episode % 12) // 6`` (move_near_in_scene.py reset), each object at its ``obj_init_quat_dict`` rotation;
    the objects the configuration does not use are left out (the env parks them).
    """
    cfg = task.config(config_id)  # range check against the shared task
    real = GOOGLE_REAL_TASKS[task.name]
    i = int(config_id)
    if real.station and not real.models:
        return {}
    if real.station:  # the apple: robot pose i // 9 (``poses``), then SimplerEnv's 3 x 3 grid, x outer, y inner
        j = i % (len(G.APPLE_GRID_X) * len(G.APPLE_GRID_Y))
        ny = len(G.APPLE_GRID_Y)
        return {"apple": (np.array([G.APPLE_GRID_X[j // ny], G.APPLE_GRID_Y[j % ny]]), np.array([1.0, 0.0, 0.0, 0.0]))}
    if task.name == "google_move_near":
        layout = G.MOVE_NEAR_LAYOUTS[(i % 12) // 6]
        return {name: (np.array(xy), np.array(G.MOVE_NEAR_QUAT[name])) for name, xy in zip(cfg.poses, layout)}
    ny = len(G.COKE_GRID_Y)
    xy = np.array([G.COKE_GRID_X[i // ny], G.COKE_GRID_Y[i % ny]])
    return {"coke_can": (xy, np.array(G.COKE_ORIENTATION_QUAT[real.orientation]))}


def build_google_xml(
    assets: Path, task: SimplerTask, real: GoogleRealTask, urdf_version: str = ""
) -> tuple[str, dict[str, Any]]:
    cam_rot = W.sapien_camera_axes(("quat", G.CAMERA_QUAT))
    camera = (
        f'<camera name="overhead_camera" pos="0 0 0" xyaxes="{_fmt(W.mujoco_xyaxes(cam_rot))}" '
        f'fovy="{G.fovy_degrees():.6f}"/>'
    )
    robot = urdf_to_mjcf_parts(
        assets / G.urdf_for(urdf_version),
        prefix="",
        root_pos=(*real.base_xy, G.BASE_Z),
        root_quat=G.base_quat(real.base_yaw),
        split_collisions=True,  # ManiSkill2 loads robots with load_multiple_collisions_from_file (base_agent.py L88)
    )
    body, n = re.subn(r'(<body name="link_camera"[^>]*>)', lambda mt: mt.group(1) + camera, robot.body, count=1)
    if n != 1:
        raise ValueError("the Google robot URDF has no link_camera")
    # ManiSkill2 cancels gravity on the robot's joints every step
    # (agents/base_controller.py, balance_passive_force=True)
    body = body.replace("<body ", '<body gravcomp="1" ')
    object_assets, objects_xml, facts = scene_objects(assets, task, real, G.OBJECT_FRICTION)
    if real.station:
        station = urdf_to_mjcf_parts(
            assets / G.STATION_URDF,
            prefix=STATION_PREFIX,
            root_pos=G.STATION_POS,
            joint_attrs=f'frictionloss="{G.STATION_JOINT_FRICTION}" damping="{G.STATION_JOINT_DAMPING}"',
            massless_visuals=True,
            linear_colors=True,
            name_collisions=True,
        )
        object_assets += station.assets
        objects_xml.append(station.body)
        # PhysX does not collide an articulation's parent and child links; MuJoCo filters parent-child contacts except
        # under a body welded to the world, as the cabinet's fixed root is
        contact_xml = "".join(
            f'<exclude body1="{STATION_PREFIX}body" body2="{STATION_PREFIX}{level}_drawer"/>'
            for level in ("top", "middle", "bottom")
        )
    else:
        contact_xml = ""
    actuators = position_drives(
        G.ARM_JOINTS + G.HEAD_JOINTS, G.ARM_STIFFNESS, G.ARM_DAMPING, G.ARM_FORCE_LIMIT
    ) + position_drives(
        G.FINGER_JOINTS,
        G.GRIPPER_STIFFNESS,
        G.GRIPPER_DAMPING,
        G.GRIPPER_FORCE_LIMIT,
        f"{G.GRIPPER_LOW} {G.GRIPPER_HIGH}",
    )
    (cx, cy), (hx, hy) = G.TABLE_BOX_CENTRE, G.TABLE_BOX_HALF
    xml = scene_mjcf(
        f"{task.name}_real",
        G.SIM_HZ,
        G.CAMERA_SIZE,
        list(robot.assets) + object_assets,
        body,
        objects_xml,
        actuators,
        table_pos=f"{cx} {cy} {G.TABLE_HEIGHT / 2}",
        table_size=f"{hx} {hy} {G.TABLE_HEIGHT / 2}",
        table_friction=G.OBJECT_ON_TABLE,
        floor=True,
        compiler_extra=' balanceinertia="true"',
        table=not real.station,
        contact_xml=contact_xml,
        option_extra=f' impratio="{G.IMPRATIO}" noslip_iterations="{G.NOSLIP_ITERATIONS}"',
    )
    return xml, facts


class GoogleRealEnv(RealSceneEnv):
    """One SimplerEnv Google-robot visual-matching task on SimplerEnv's robot and assets (module docstring).

    Shares :class:`~vla_eval.sims.simpler.real2sim.scene_env.RealSceneEnv`'s rendering, composite, contact test and
    privileged-state layout with the Bridge env; the scene, controller, camera and rule are the Google robot's.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": G.CONTROL_HZ}
    native_action_space = SIMPLER_GOOGLE_ACTION
    policy_setup = "google_robot"  # SimplerEnv's name for this robot in its model wrappers (wrapper_rules)
    robot = G
    real_tasks = GOOGLE_REAL_TASKS
    scene_label, camera_name, base_link, family = "Google", "overhead_camera", "link_base", "google_real"
    settle_s = SETTLE_S
    settle_lock_s = 0.5
    """grasp_single_in_scene.py _initialize_actors L300-305 (and move_near_in_scene.py L299-309,
    place_in_closed_drawer_in_scene.py L132-141): the first 0.5 s with the object's x / y rotation locked."""
    ik_iters = 60
    gripper_qpos_limit = 2.0
    initial_rule_state = {"lifted": False, "n_lift_significant": 0}

    def __init__(
        self,
        task: str,
        assets: Path | str | None = None,
        cameras=("agentview",),
        image_size: tuple[int, int] = (256, 256),
        render_mode: str | None = None,
        render_scale: float = 1.0,
        urdf_version: str = "",
    ):
        self.urdf_version = urdf_version
        self._fingers: FingerPlanner | None = None
        self._arm: ArmPlanner | None = None
        super().__init__(task, assets, cameras, image_size, render_mode, render_scale)

    def _check_scene_options(self) -> None:
        G.urdf_for(self.urdf_version)

    def _build_xml(self) -> tuple[str, dict[str, Any]]:
        return build_google_xml(self.assets, self.task, self.real, self.urdf_version)

    def _tune_robot(self) -> None:
        m = self.model
        self._head_q = np.array([m.joint(j).qposadr[0] for j in G.HEAD_JOINTS])
        for j in G.ARM_JOINTS + G.HEAD_JOINTS + G.FINGER_JOINTS:
            m.dof_armature[m.joint(j).dofadr[0]] = G.ARM_ARMATURE
        for j in G.ARM_JOINTS + G.FINGER_JOINTS:  # PhysX's limits are hard (LIMIT_TIMECONST)
            m.jnt_solref[m.joint(j).id] = (LIMIT_TIMECONST, 1.0)
            m.jnt_solimp[m.joint(j).id, :2] = LIMIT_IMPEDANCE
        self._n_arm_ctrl = len(G.ARM_JOINTS) + len(G.HEAD_JOINTS)
        self._finger_links = {
            side: (m.body(f"link_finger_{side}").id, m.body(f"link_finger_tip_{side}").id) for side in ("left", "right")
        }
        for g in self._robot_geoms:
            name = m.body(int(m.geom_bodyid[g])).name
            if m.geom_contype[g] and name.startswith("link_finger"):
                # PhysX averages the two materials (google_robot.physx_friction); a priority makes MuJoCo use these
                m.geom_friction[g, 0] = G.NAIL_ON_OBJECT if "nail" in name else G.FINGER_ON_OBJECT
                m.geom_priority[g] = FINGER_PRIORITY
                # PhysX collides an articulation's links unless parent and child; the robot's other self-contacts
                # stay off (scene_env), but the two fingers must meet: a close on nothing stops where the tips touch
                if name.endswith("_left"):
                    m.geom_contype[g] |= FINGER_BIT
                else:
                    m.geom_conaffinity[g] |= FINGER_BIT

    @property
    def _gripper_target(self) -> float:
        """The fingers' goal (SimplerEnv's ``_target_qpos``; both fingers get the same)."""
        return float(self._fingers.target[0]) if self._fingers is not None else float(G.INIT_QPOS[len(G.ARM_JOINTS)])

    def _native_config(self, config_id: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return native_config(self.task, config_id)

    def _overlay_for(self, config_id: int) -> str:
        return self.real.overlay_for(config_id)

    def _place_base(self, config_id: int) -> None:
        (x, y), yaw = self.real.base_for(config_id)
        self.model.body_pos[self._base] = (x, y, G.BASE_Z)
        self.model.body_quat[self._base] = G.base_quat(yaw)

    def _support_z(self, name: str, xy: np.ndarray, quat: np.ndarray) -> float:
        return G.STATION_TOP if self.real.station else G.TABLE_HEIGHT

    def _before_step(self) -> None:
        """SimplerEnv's ``force_advance_subtask_time_steps``: from the step after ``switch_step`` steps on, the second
        subtask and its instruction (place_in_closed_drawer_in_scene.py step)."""
        switch = self.rule.get("switch_step")
        if switch is not None and self.elapsed_steps >= int(switch):
            self.advance_to_next_subtask()

    def advance_to_next_subtask(self) -> None:
        if "second_instruction" in self.rule and self._rule_state.get("subtask", 0) == 0:
            self._rule_state["subtask"] = 1
            self.instruction = self.rule["second_instruction"]

    def is_final_subtask(self) -> bool:
        return "second_instruction" not in self.rule or self._rule_state.get("subtask", 0) == 1

    def _reset_fixtures(self, config_id: int) -> None:
        """Every drawer closed, the task's drawer pulled out to the configuration's start (close tasks:
        SimplerEnv's 0.2 m; the shared task definition names the start per drawer joint)."""
        if not self.real.station:
            return
        m, d = self.model, self.data
        for level in ("top", "middle", "bottom"):
            d.qpos[m.joint(station_joint(level)).qposadr[0]] = 0.0
        for joint, q in self.task.config(config_id).joints.items():
            level = joint.split("_drawer")[0]
            d.qpos[m.joint(station_joint(level)).qposadr[0]] = float(q)

    # ------------------------------------------------------------ control
    def _reset_robot(self) -> None:
        d = self.data
        n_arm = len(G.ARM_JOINTS)
        d.qpos[self._arm_q] = G.INIT_QPOS[:n_arm]
        d.qpos[self._finger_q] = G.INIT_QPOS[n_arm : n_arm + 2]
        d.qpos[self._head_q] = G.INIT_QPOS[n_arm + 2 :]
        d.ctrl[:n_arm] = G.INIT_QPOS[:n_arm]
        d.ctrl[n_arm : self._n_arm_ctrl] = G.INIT_QPOS[n_arm + 2 :]
        d.ctrl[self._n_arm_ctrl :] = G.INIT_QPOS[n_arm : n_arm + 2]
        if self._fingers is None:
            self._fingers = FingerPlanner(self.n_substeps, self.model.opt.timestep)
        self._fingers.reset(G.INIT_QPOS[n_arm : n_arm + 2])
        if self._arm is None:
            self._arm = ArmPlanner(self.n_substeps, self.model.opt.timestep)
        self._arm.reset()
        self._finger_v = np.array([self.model.joint(j).dofadr[0] for j in G.FINGER_JOINTS])

    def _actuate(self, dpos: np.ndarray, drot: np.ndarray, g: float) -> None:
        cur_p, cur_r = self.ee_pose_at_base()
        # ee_align, use_target=False: rotate the measured pose about its own position (base axes), then translate
        self._target_pos = cur_p + dpos
        self._target_mat = rotvec_to_mat(drot) @ cur_r
        d = self.data
        q_goal = self._ik_or_hold(self._target_pos, self._target_mat)
        self._arm.set_goal(q_goal, d.qpos[self._arm_q], d.qvel[self._arm_v])
        self._fingers.set_action(g, d.qpos[self._finger_q], d.qvel[self._finger_v])
        kv_over_kp = G.GRIPPER_DAMPING / G.GRIPPER_STIFFNESS  # a position drive's ctrl offset for a velocity target
        for k in range(1, self.n_substeps + 1):
            d.ctrl[: len(G.ARM_JOINTS)] = self._arm.drive_at(k)
            pos, vel = self._fingers.drive_at(k)
            d.ctrl[self._n_arm_ctrl :] = pos + kv_over_kp * vel
            mujoco.mj_step(self.model, d)

    # ----------------------------------------------------------- success
    def is_grasped(self, name: str) -> bool:
        """SimplerEnv's ``check_grasp(max_angle=80)``: on each side the finger or its tip pushes on the object, the
        contact force within 80 degrees of the finger link's y axis (its opening direction), either sign."""
        m, d = self.model, self.data
        own = self._obj_geoms[name]
        cos_max = math.cos(math.radians(GRASP_MAX_ANGLE))
        force = np.zeros(6)
        sides = {}
        for side, links in self._finger_links.items():
            ok = False
            for i in range(d.ncon):
                c = d.contact[i]
                g1, g2 = int(c.geom1), int(c.geom2)
                other = g2 if g1 in own else g1 if g2 in own else None
                if other is None or int(m.geom_bodyid[other]) not in links:
                    continue
                mujoco.mj_contactForce(m, d, i, force)
                f_world = c.frame.reshape(3, 3).T @ force[:3]
                n = float(np.linalg.norm(f_world))
                if n <= CONTACT_FORCE:
                    continue
                y_axis = d.xmat[int(m.geom_bodyid[other])].reshape(3, 3)[:, 1]
                if abs(float(f_world @ y_axis)) / n >= cos_max:
                    ok = True
                    break
            sides[side] = ok
        return all(sides.values())

    def _evaluate(self) -> bool:
        rule = self.rule
        if rule["type"] == "near":
            m, d = self.model, self.data
            names = self._episode_objects
            success, stats = near_evaluate(
                {n: d.xpos[m.body(n).id] for n in names},
                self._init_xyz,
                self._init_half,
                rule["object"],
                rule["target"],
                com={n: d.xipos[m.body(n).id] for n in names},
            )
            self._stats = {**stats, "is_src_obj_grasped": bool(self.is_grasped(rule["object"]))}
            return success
        if rule["type"] in ("drawer_open", "drawer_close"):
            m, d = self.model, self.data
            success, self._stats = drawer_evaluate(
                rule["type"], float(d.qpos[m.joint(station_joint(rule["drawer"])).qposadr[0]])
            )
            return success
        if rule["type"] == "in_drawer":
            m, d = self.model, self.data
            level = rule["drawer"]
            floor = {m.geom(f"{STATION_PREFIX}{level}_drawer/{G.APPLE_FLOOR_SHAPE}").id}
            success, self._stats = in_drawer_update(
                self._rule_state,
                float(d.qpos[m.joint(station_joint(level)).qposadr[0]]),
                touching(m, d, self._obj_geoms[rule["object"]], floor),
            )
            return success
        if rule["type"] != "lift":
            raise ValueError(f"rule {rule['type']!r} is not staged on the SimplerEnv Google robot yet")
        success, stats = lift_evaluate(self, rule["object"])
        self._stats = {**stats, "is_src_obj_grasped": stats["is_grasped"]}
        return success

    def privileged_state(self) -> dict[str, Any]:
        out = super().privileged_state()
        out["gripper_target"] = self._gripper_target
        out["table_height"] = G.TABLE_HEIGHT
        out["finger_axis"] = self.data.xmat[self._ee].reshape(3, 3)[:, 1].copy()
        if self.real.station:
            m, d = self.model, self.data
            level = self.rule["drawer"]
            drawer = m.body(f"{STATION_PREFIX}{level}_drawer").id
            out["drawer_qpos"] = float(d.qpos[m.joint(station_joint(level)).qposadr[0]])
            out["drawer_pos"] = d.xpos[drawer].copy()  # the drawer link's origin (front plate at +x 0.305)
            out["drawer_mat"] = d.xmat[drawer].reshape(3, 3).copy()
        return out
