"""Bridge visual matching with SimplerEnv's own WidowX, objects, camera and real photo, in MuJoCo.

One task definition, two embodiments: the task (instruction, step limit, configuration
grid, success rule) is the :class:`~vla_eval.sims.simpler.tasks.SimplerTask` the Panda-look
suite uses; this module maps each configuration back into SimplerEnv's own world frame
(:func:`native_config`) and builds SimplerEnv's scene around it:

* the WidowX 250 S converted from its URDF (:mod:`.urdf`), base at SimplerEnv's pose;
* SimplerEnv's object models at their ``info_*.json`` scales and densities (:mod:`.scene_xml`, :mod:`.meshes`);
* a table box with its top at SimplerEnv's table height (the stage mesh is not in the
  asset pack: the substitute is a collision surface, hidden by the photo in the image);
* the ``3rd_view_camera`` with SimplerEnv's intrinsics and pose on the robot base;
* eggplant in basket: SimplerEnv's sink setup (its own base pose, start joints and camera, the sink photo), the sink
  as a fixed collision object and the target plane in its basket, both left to the photo (as SimplerEnv overlays them);
* SimplerEnv's "greenscreen": the real photo wherever the segmentation render shows
  neither the robot nor a task object (:mod:`.overlay`).

Control is SimplerEnv's ``arm_pd_ee_target_delta_pose_align2_gripper_pd_joint_pos`` at 5 Hz
over a 500 Hz simulation: the action is (dx, dy, dz) metres and an axis-angle rotation in
the robot base frame, applied to the previous *target* pose (rotation about the current
end-effector position), solved by IK to joint targets for PD position drives with
SimplerEnv's gains; the gripper is absolute (+1 open, -1 closed).

The mechanics shared with the Google robot's scene (IK, reset and settling, rendering, observations)
live in :class:`~vla_eval.sims.simpler.real2sim.scene_env.RealSceneEnv`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from vla_eval.actions.space import ActionSpace
from vla_eval.geometry import quat_to_mat, rotvec_to_mat
from vla_eval.sims.simpler.real2sim import widowx_robot as W
from vla_eval.sims.simpler.real2sim.scene_env import RealSceneEnv
from vla_eval.sims.simpler.real2sim.scene_xml import _fmt, position_drives, scene_mjcf, scene_objects
from vla_eval.sims.simpler.real2sim.urdf import urdf_to_mjcf_parts
from vla_eval.sims.simpler.rules import on_top
from vla_eval.sims.simpler.tasks import BRIDGE_CENTRE, SimplerTask

SIMPLER_WIDOWX_ACTION = ActionSpace(
    kind="delta_eef", rotation="axis_angle", position_units="meters", gripper="open_positive", low=-1.0, high=1.0
)
"""SimplerEnv's WidowX action: metres and radians in the base frame, gripper +1 open (as Octo / RT-1-X send it)."""

SETTLE_S = 1.0  # move_near_in_scene.py _initialize_actors: _settle(0.5) twice
SETTLE_LOCK_S = 0.5  # the same: the first 0.5 s with lock_motion(0, 0, 0, 1, 1, 0) (no rotation about x and y)


@dataclass(frozen=True)
class RealTask:
    """How one shared task is staged with SimplerEnv's assets."""

    models: dict[str, str]  # task object name -> SimplerEnv model id
    model_json: str
    overlay: str  # path under data/
    source: str  # SimplerEnv env id, for the record
    setup: str = "default"
    """SimplerEnv's robot setup: ``default`` (``widowx``) or ``sink`` (``widowx_sink_camera_setup``: its own base
    pose, start joints and camera)"""
    extra_objects: tuple[str, ...] = ()
    """free objects of SimplerEnv's scene the shared task does not name (the sink's invisible target plane)"""
    fixed: dict[str, tuple[float, float, float]] | None = None
    """static objects at these positions (the sink, locked in SimplerEnv)"""
    hidden: tuple[str, ...] = ()
    """objects SimplerEnv always overlays with the photo (``rgb_always_overlay_objects``): no visual geoms here"""
    targets: dict[str, str] | None = None
    """the shared task's target name -> the object that stands for it here (the basket -> the target plane)"""
    visual_substitutes: dict[str, tuple[float, float, float, float]] | None = None


REAL_TASKS: dict[str, RealTask] = {
    # sources: envs/custom_scenes/put_on_in_scene.py (model ids), scripts/octo_bridge.sh (env ids, overlay)
    "bridge_put_spoon_on_towel": RealTask(
        {"spoon": "bridge_spoon_generated_modified", "towel": "table_cloth_generated_shorter"},
        "info_bridge_custom_v0.json",
        "real_inpainting/bridge_real_eval_1.png",
        "PutSpoonOnTableClothInScene-v0",
    ),
    "bridge_put_carrot_on_plate": RealTask(
        {"carrot": "bridge_carrot_generated_modified", "plate": "bridge_plate_objaverse_larger"},
        "info_bridge_custom_v0.json",
        "real_inpainting/bridge_real_eval_1.png",
        "PutCarrotOnPlateInScene-v0",
    ),
    "bridge_stack_green_on_yellow": RealTask(
        {"green_cube": "baked_green_cube_3cm", "yellow_cube": "baked_yellow_cube_3cm"},
        "info_bridge_custom_baked_tex_v0.json",
        "real_inpainting/bridge_real_eval_1.png",
        "StackGreenCubeOnYellowCubeBakedTexInScene-v0",
    ),
    "bridge_put_eggplant_in_basket": RealTask(
        {"eggplant": "eggplant", "sink_target": "dummy_sink_target_plane", "sink": "sink"},
        "info_bridge_custom_v0.json",
        W.SINK_OVERLAY,
        "PutEggplantInBasketScene-v0",
        setup="sink",
        extra_objects=("sink_target",),
        fixed={"sink": W.SINK_POS},
        hidden=("sink", "sink_target"),
        targets={"basket": "sink_target"},
        visual_substitutes={"eggplant": W.EGGPLANT_RGBA},
    ),
}
SIMPLER_CENTRE = (-0.16, 0.0)
"""put_on_in_scene.py: ``xy_center`` of every table-top Bridge grid."""


def native_config(task: SimplerTask, config_id: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Object name -> (xy, quat wxyz) in SimplerEnv's world for configuration ``config_id``.

    The Panda-look tasks place SimplerEnv's offsets from ``xy_center`` around ``BRIDGE_CENTRE``
    with x and y mirrored (that robot faces +x; SimplerEnv's faces -x); undoing that gives
    SimplerEnv's own coordinates. Quaternions are SimplerEnv's as written.
    """
    cfg = task.config(config_id)
    if task.name == "bridge_put_eggplant_in_basket":  # SimplerEnv's own numbers (the Panda look moves the sink's grid)
        i = int(config_id)
        (cx, cy), (hx, hy), (nx, ny) = W.EGGPLANT_CENTRE, W.EGGPLANT_HALF_SPAN, W.EGGPLANT_GRID
        cell, yaw = divmod(i, len(W.EGGPLANT_YAWS))
        xy = np.array([cx + np.linspace(-hx, hx, nx)[cell // ny], cy + np.linspace(-hy, hy, ny)[cell % ny]])
        a = W.EGGPLANT_YAWS[yaw] / 2
        return {
            "eggplant": (xy, np.array([math.cos(a), 0.0, 0.0, math.sin(a)])),
            "sink_target": (np.array(W.SINK_TARGET_XY), np.array([1.0, 0.0, 0.0, 0.0])),
        }
    out = {}
    for name, pose in cfg.poses.items():
        dx, dy = BRIDGE_CENTRE[0] - pose.xy[0], -pose.xy[1]
        out[name] = (np.array([SIMPLER_CENTRE[0] + dx, SIMPLER_CENTRE[1] + dy]), np.array(pose.quat, dtype=float))
    return out


def build_bridge_xml(assets: Path, task: SimplerTask, real: RealTask) -> tuple[str, dict[str, Any]]:
    """The scene's MJCF and facts the env needs (model bboxes, names)."""
    sink = real.setup == "sink"
    cam_rot = W.sapien_camera_axes(("quat", W.CAMERA_QUAT_SINK) if sink else ("look", W.CAMERA_LOOK))
    cam_pos = W.CAMERA_POS_SINK if sink else W.CAMERA_POS
    camera = (
        f'<camera name="3rd_view_camera" pos="{_fmt(cam_pos)}" xyaxes="{_fmt(W.mujoco_xyaxes(cam_rot))}" '
        f'fovy="{W.fovy_degrees():.6f}"/>'
    )
    base = (*W.BASE_XY_SINK, W.BASE_Z_SINK) if sink else (*W.BASE_XY, W.BASE_Z)
    # ManiSkill2 loads robots with load_multiple_collisions_from_file (agents/base_agent.py L88)
    robot = urdf_to_mjcf_parts(assets / W.URDF, prefix="", root_pos=base, root_quat=W.BASE_QUAT, split_collisions=True)
    body = robot.body.replace(">", ">" + camera, 1)  # the camera rides on base_link, as in SimplerEnv
    # ManiSkill2 cancels the robot's own passive forces, gravity included, every simulation step for the WidowX as for
    # the Google robot (agents/base_controller.py L229-231, DictController balance_passive_force=True)
    body = body.replace("<body ", '<body gravcomp="1" ')
    object_assets, objects_xml, facts = scene_objects(assets, task, real, W.OBJECT_FRICTION)
    actuators = position_drives(W.ARM_JOINTS, W.ARM_STIFFNESS, W.ARM_DAMPING, W.ARM_FORCE_LIMIT) + position_drives(
        W.FINGER_JOINTS, W.GRIPPER_STIFFNESS, W.GRIPPER_DAMPING, W.GRIPPER_FORCE_LIMIT, "0 0.05"
    )
    xml = scene_mjcf(
        f"{task.name}_real",
        W.SIM_HZ,
        W.CAMERA_SIZE,
        list(robot.assets) + object_assets,
        body,
        objects_xml,
        actuators,
        table_pos=f"-0.2 0.1 {W.TABLE_HEIGHT - 0.05}",
        table_size="0.6 0.6 0.05",
        table_friction=W.OBJECT_FRICTION,
    )
    return xml, facts


class BridgeRealEnv(RealSceneEnv):
    """One SimplerEnv Bridge visual-matching task on SimplerEnv's robot and assets (see module docstring)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": W.CONTROL_HZ}
    native_action_space = SIMPLER_WIDOWX_ACTION
    policy_setup = "widowx_bridge"  # SimplerEnv's name for this robot in its model wrappers (wrapper_rules)
    robot = W
    real_tasks = REAL_TASKS
    scene_label, camera_name, base_link, family = "Bridge", "3rd_view_camera", "base_link", "bridge_real"
    settle_s = SETTLE_S
    settle_lock_s = SETTLE_LOCK_S
    ik_iters = 40
    gripper_qpos_limit = 0.1

    def _build_xml(self) -> tuple[str, dict[str, Any]]:
        return build_bridge_xml(self.assets, self.task, self.real)

    def _tune_robot(self) -> None:
        m = self.model
        for j in W.ARM_JOINTS:
            m.dof_armature[m.joint(j).dofadr[0]] = W.ARM_ARMATURE
        for link in ("left_finger_link", "right_finger_link"):
            for g in range(m.ngeom):
                if m.geom_bodyid[g] == m.body(link).id and m.geom_contype[g]:
                    # SimplerEnv's finger material: friction 2.0, and its patch radius as torsional friction
                    m.geom_friction[g, 0] = W.GRIPPER_FRICTION
                    m.geom_friction[g, 1] = W.FINGER_TORSION
                    m.geom_condim[g] = 4
                    m.geom_margin[g] = W.FINGER_MARGIN  # rest at the surface, as PhysX's fingers do
        m.opt.noslip_iterations = W.NOSLIP_ITERATIONS

    def _native_config(self, config_id: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return native_config(self.task, config_id)

    def _support_z(self, name: str, xy: np.ndarray, quat: np.ndarray) -> float:
        """The table, or (the sink scene) the highest collision surface under the object's footprint (its bbox at
        ``quat``, 3 x 3 points), found by rays from 1.5 m -- SimplerEnv drops the objects from 0.5 m above the table
        onto the sink's counter and basket; here they start on the highest point below and settle from there."""
        if not self.real.fixed:
            return W.TABLE_HEIGHT
        m, d = self.model, self.data
        mujoco.mj_forward(m, d)
        groups = np.array([0, 0, 0, 1, 0, 0], dtype=np.uint8)  # collision geoms only
        hulls = m.geom_group == 3
        alpha = m.geom_rgba[hulls, 3].copy()
        m.geom_rgba[hulls, 3] = 1.0  # mj_ray skips fully transparent geoms, as the collision hulls are
        geom = np.array([-1], dtype=np.int32)
        rot = quat_to_mat(quat)
        hx, hy = (self.facts["bbox"][name] / 2)[:2]
        tops = []
        try:
            for sx in (-1, 0, 1):
                for sy in (-1, 0, 1):
                    p = np.array([xy[0], xy[1], 1.5]) + rot @ np.array([sx * hx, sy * hy, 0.0])
                    dist = mujoco.mj_ray(
                        m, d, np.array([p[0], p[1], 1.5]), np.array([0.0, 0.0, -1.0]), groups, 1, m.body(name).id, geom
                    )
                    tops.append(1.5 - dist if geom[0] >= 0 else W.TABLE_HEIGHT)
        finally:
            m.geom_rgba[hulls, 3] = alpha
        return max(tops)

    # ------------------------------------------------------------ control
    def _reset_robot(self) -> None:
        d = self.data
        q0 = W.INIT_QPOS_SINK if self.real.setup == "sink" else W.INIT_QPOS
        d.qpos[self._arm_q] = q0[:6]
        d.qpos[self._finger_q] = q0[6:]
        d.ctrl[:6] = q0[:6]
        d.ctrl[6:8] = W.GRIPPER_HIGH

    def _actuate(self, dpos: np.ndarray, drot: np.ndarray, g: float) -> None:
        cur_p, _ = self.ee_pose_at_base()
        r = rotvec_to_mat(drot)
        # ee_align2: T(p_cur) * delta * T(p_cur)^-1 * previous target
        self._target_pos = cur_p + r @ (self._target_pos - cur_p) + dpos
        self._target_mat = r @ self._target_mat
        q = self._ik_or_hold(self._target_pos, self._target_mat)
        self.data.ctrl[:6] = q
        self.data.ctrl[6:8] = W.GRIPPER_LOW + (g + 1.0) / 2.0 * (W.GRIPPER_HIGH - W.GRIPPER_LOW)
        mujoco.mj_step(self.model, self.data, nstep=self.n_substeps)

    # ----------------------------------------------------------- success
    def is_grasped(self, name: str) -> bool:
        m, d = self.model, self.data
        fingers = {m.body("left_finger_link").id: False, m.body("right_finger_link").id: False}
        own = self._obj_geoms[name]
        for c in d.contact[: d.ncon]:
            g1, g2 = int(c.geom1), int(c.geom2)
            for a, b in ((g1, g2), (g2, g1)):
                if a in own and int(m.geom_bodyid[b]) in fingers:
                    fingers[int(m.geom_bodyid[b])] = True
        return all(fingers.values())

    def _evaluate(self) -> bool:
        rule = self.rule
        if rule["type"] != "on_top":
            raise ValueError(f"rule {rule['type']!r} is not staged on the SimplerEnv robot yet")
        m, d = self.model, self.data
        src, tgt = rule["object"], rule["target"]
        on = on_top(  # centres of mass, as SimplerEnv's source_obj_pose / target_obj_pose
            d.xipos[m.body(src).id],
            d.xipos[m.body(tgt).id],
            self.facts["bbox"][src] / 2,
            self.facts["bbox"][tgt] / 2,
            float(rule.get("z_offset", 0.02)),
        )
        if rule.get("clear", True):
            on = on and not self._touching_other(src, self._robot_geoms | self._obj_geoms[tgt])
        grasped = self.is_grasped(src)
        self._consecutive_grasp = self._consecutive_grasp + 1 if grasped else 0
        self._stats = {
            "is_src_obj_grasped": bool(grasped),
            "consecutive_grasp": self._consecutive_grasp >= 5,
            "src_on_target": bool(on),
        }
        return bool(on)
