"""Bridge visual matching with SimplerEnv's own WidowX, objects, camera and real photo, in MuJoCo.

One task definition, two embodiments: the task (instruction, step limit, configuration
grid, success rule) is the :class:`~vla_eval.envs.simpler.tasks.SimplerTask` the Panda-look
suite uses; this module maps each configuration back into SimplerEnv's own world frame
(:func:`native_config`) and builds SimplerEnv's scene around it:

* the WidowX 250 S converted from its URDF (:mod:`.urdf`), base at SimplerEnv's pose;
* SimplerEnv's object models at their ``info_*.json`` scales and densities (:mod:`.meshes`);
* a table box with its top at SimplerEnv's table height (the stage mesh is not in the
  asset pack: the substitute is a collision surface, hidden by the photo in the image);
* the ``3rd_view_camera`` with SimplerEnv's intrinsics and pose on the robot base;
* SimplerEnv's "greenscreen": the real photo wherever the segmentation render shows
  neither the robot nor a task object (:mod:`.overlay`).

Control is SimplerEnv's ``arm_pd_ee_target_delta_pose_align2_gripper_pd_joint_pos`` at 5 Hz
over a 500 Hz simulation: the action is (dx, dy, dz) metres and an axis-angle rotation in
the robot base frame, applied to the previous *target* pose (rotation about the current
end-effector position), solved by IK to joint targets for PD position drives with
SimplerEnv's gains; the gripper is absolute (+1 open, -1 closed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from vla_eval.envs.simpler.rules import CONTACT_FORCE, on_top  # noqa: F401  (CONTACT_FORCE re-exported)
from vla_eval.envs.simpler.tasks import BRIDGE_CENTRE, SimplerTask, get_task
from vla_eval.envs.simpler_real import widowx as W
from vla_eval.envs.simpler_real.meshes import collision_parts, visual_parts
from vla_eval.envs.simpler_real.scene_env import RealSceneEnv, _fmt, _rotvec_to_mat
from vla_eval.envs.simpler_real.urdf import urdf_to_mjcf_parts
from vla_eval.policies.base import ActionSpace

SIMPLER_WIDOWX_ACTION = ActionSpace(kind="delta_eef", rotation="axis_angle", position_units="meters",
                                    gripper="open_positive", low=-1.0, high=1.0)
"""SimplerEnv's WidowX action: metres and radians in the base frame, gripper +1 open (as Octo / RT-1-X send it)."""

SETTLE_S = 1.0  # move_near_in_scene.py _initialize_actors: _settle(0.5) twice


@dataclass(frozen=True)
class RealTask:
    """How one shared task is staged with SimplerEnv's assets."""

    models: dict[str, str]  # task object name -> SimplerEnv model id
    model_json: str
    overlay: str  # path under data/
    source: str  # SimplerEnv env id, for the record


REAL_TASKS: dict[str, RealTask] = {
    # sources: envs/custom_scenes/put_on_in_scene.py (model ids), scripts/octo_bridge.sh (env ids, overlay)
    "bridge_put_spoon_on_towel": RealTask({"spoon": "bridge_spoon_generated_modified", "towel": "table_cloth_generated_shorter"},
                                          "info_bridge_custom_v0.json", "real_inpainting/bridge_real_eval_1.png",
                                          "PutSpoonOnTableClothInScene-v0"),
    "bridge_put_carrot_on_plate": RealTask({"carrot": "bridge_carrot_generated_modified", "plate": "bridge_plate_objaverse_larger"},
                                           "info_bridge_custom_v0.json", "real_inpainting/bridge_real_eval_1.png",
                                           "PutCarrotOnPlateInScene-v0"),
    "bridge_stack_green_on_yellow": RealTask({"green_cube": "baked_green_cube_3cm", "yellow_cube": "baked_yellow_cube_3cm"},
                                             "info_bridge_custom_baked_tex_v0.json", "real_inpainting/bridge_real_eval_1.png",
                                             "StackGreenCubeOnYellowCubeBakedTexInScene-v0"),
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
    out = {}
    for name, pose in cfg.poses.items():
        dx, dy = BRIDGE_CENTRE[0] - pose.xy[0], -pose.xy[1]
        out[name] = (np.array([SIMPLER_CENTRE[0] + dx, SIMPLER_CENTRE[1] + dy]), np.array(pose.quat, dtype=float))
    return out


def widest_section(parts: list[Path], scale: float, bins: int = 12) -> np.ndarray:
    """Object-frame xy of the collision shape's widest cross-section along its long axis.

    Squeezing a convex hull where its sides slant pushes it out of the hand (MuJoCo's soft
    contacts let it creep out; PhysX's do not): the expert grasps where the sides are parallel.
    """
    verts = []
    for path in parts:
        for line in path.read_text().splitlines():
            if line.startswith("v "):
                verts.append([float(x) for x in line.split()[1:4]])
    v = np.asarray(verts) * scale
    ext = v.max(axis=0) - v.min(axis=0)
    long_i = 0 if ext[0] >= ext[1] else 1
    short_i = 1 - long_i
    edges = np.linspace(v[:, long_i].min(), v[:, long_i].max(), bins + 1)
    widths = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = v[(v[:, long_i] >= lo) & (v[:, long_i] <= hi)]
        if len(sel) >= 3:
            widths.append(((lo + hi) / 2, float(sel[:, short_i].max() - sel[:, short_i].min())))
    out = np.zeros(2)
    out[short_i] = float((v[:, short_i].max() + v[:, short_i].min()) / 2)
    if len(widths) < bins // 2:  # a coarse mesh (a cube): vertices only at the ends, use the middle
        out[long_i] = float((edges[0] + edges[-1]) / 2)
        return out
    best = max(widths, key=lambda cw: cw[1])[0]
    out[long_i] = best
    return out


def object_mjcf(assets: Path, model_json: str, db: dict, name: str, model_id: str, facts: dict[str, Any],
                friction: float, damping: float = 0.0) -> tuple[list[str], str]:
    """One SimplerEnv object model as MJCF assets and a free body named ``name``: visual meshes (group 2, no
    collision) from the converted ``textured.*``, collision hulls (group 3) from ``collision.obj``, at the
    ``info_*.json`` scale and density. Records the scaled bbox, model id and grasp point in ``facts``."""
    info = db.get(model_id)
    if info is None:
        raise KeyError(f"{model_json} has no model {model_id!r}")
    scale = float((info.get("scales") or [1.0])[0])
    density = float(info.get("density", 1000))
    facts.setdefault("bbox", {})[name] = (np.array(info["bbox"]["max"]) - np.array(info["bbox"]["min"])) * scale
    facts.setdefault("model", {})[name] = model_id
    model_dir = assets / "data" / "custom" / "models" / model_id
    asset_xml, geoms = [], []
    for i, part in enumerate(visual_parts(model_dir)):
        mesh = f"{name}_vis{i}"
        asset_xml.append(f'<mesh name="{mesh}" file="{part.obj}" scale="{scale} {scale} {scale}"/>')
        if part.texture is not None:
            asset_xml.append(f'<texture name="{mesh}_tex" type="2d" file="{part.texture}"/>')
            asset_xml.append(f'<material name="{mesh}_mat" texture="{mesh}_tex" rgba="{_fmt(part.rgba)}"/>')
        else:
            asset_xml.append(f'<material name="{mesh}_mat" rgba="{_fmt(part.rgba)}" emission="{part.emission}"/>')
        geoms.append(f'<geom type="mesh" mesh="{mesh}" material="{mesh}_mat" group="2" contype="0" conaffinity="0" density="0"/>')
    for i, path in enumerate(collision_parts(model_dir)):
        mesh = f"{name}_col{i}"
        asset_xml.append(f'<mesh name="{mesh}" file="{path}" scale="{scale} {scale} {scale}" inertia="convex"/>')
        geoms.append(f'<geom name="{mesh}" type="mesh" mesh="{mesh}" group="3" density="{density}" '
                     f'friction="{friction} 0.005 0.0001" contype="1" conaffinity="3" rgba="0 0 0 0"/>')
    facts.setdefault("grasp", {})[name] = widest_section(collision_parts(model_dir), scale)
    joint = f'<joint name="{name}_free" type="free" damping="{damping}"/>' if damping else f'<freejoint name="{name}_free"/>'
    return asset_xml, f'<body name="{name}" pos="0 0 2">{joint}{"".join(geoms)}</body>'


def build_bridge_xml(assets: Path, task: SimplerTask, real: RealTask) -> tuple[str, dict[str, Any]]:
    """The scene's MJCF and facts the env needs (model bboxes, names)."""
    db = json.loads((assets / "data" / "custom" / real.model_json).read_text())
    cam_rot = W.sapien_camera_axes(("look", W.CAMERA_LOOK))
    camera = (f'<camera name="3rd_view_camera" pos="{_fmt(W.CAMERA_POS)}" xyaxes="{_fmt(W.mujoco_xyaxes(cam_rot))}" '
              f'fovy="{W.fovy_degrees():.6f}"/>')
    robot = urdf_to_mjcf_parts(assets / W.URDF, prefix="", root_pos=(*W.BASE_XY, W.BASE_Z), root_quat=W.BASE_QUAT)
    body = robot.body.replace(">", ">" + camera, 1)  # the camera rides on base_link, as in SimplerEnv
    asset_xml = list(robot.assets)
    objects_xml = []
    facts: dict[str, Any] = {"bbox": {}, "model": {}}
    for name in [o.name for o in task.objects]:
        assets_i, body_i = object_mjcf(assets, real.model_json, db, name, real.models[name], facts, W.OBJECT_FRICTION)
        asset_xml += assets_i
        objects_xml.append(body_i)
    actuators = [
        f'<position name="act_{j}" joint="{j}" kp="{kp}" kv="{kv}" forcerange="{-f} {f}" forcelimited="true"/>'
        for j, kp, kv, f in zip(W.ARM_JOINTS, W.ARM_STIFFNESS, W.ARM_DAMPING, W.ARM_FORCE_LIMIT)
    ] + [
        f'<position name="act_{j}" joint="{j}" kp="{W.GRIPPER_STIFFNESS}" kv="{W.GRIPPER_DAMPING}" '
        f'forcerange="{-W.GRIPPER_FORCE_LIMIT} {W.GRIPPER_FORCE_LIMIT}" forcelimited="true" ctrlrange="0 0.05"/>'
        for j in W.FINGER_JOINTS
    ]
    xml = f"""<mujoco model="{task.name}_real">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{1.0 / W.SIM_HZ}" integrator="implicitfast" cone="pyramidal"><flag multiccd="enable"/></option>
  <visual><global offwidth="{W.CAMERA_SIZE[0]}" offheight="{W.CAMERA_SIZE[1]}"/><quality shadowsize="0"/>
    <headlight ambient="0.45 0.45 0.45" diffuse="0.5 0.5 0.5" specular="0 0 0"/></visual>
  <default><geom solref="0.004 1" solimp="0.95 0.99 0.001"/></default>
  <asset>{''.join(asset_xml)}</asset>
  <worldbody>
    <light name="sun" directional="true" dir="0 0 -1" pos="0 0 3" diffuse="0.3 0.3 0.3" castshadow="false"/>
    <geom name="table" type="box" pos="-0.2 0.1 {W.TABLE_HEIGHT - 0.05}" size="0.6 0.6 0.05" rgba="0.55 0.5 0.45 1"
          contype="1" conaffinity="3" friction="{W.OBJECT_FRICTION} 0.005 0.0001"/>
    {body}
    {''.join(objects_xml)}
  </worldbody>
  <actuator>{''.join(actuators)}</actuator>
</mujoco>"""
    return xml, facts


class BridgeRealEnv(RealSceneEnv):
    """One SimplerEnv Bridge visual-matching task on SimplerEnv's robot and assets (see module docstring)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": W.CONTROL_HZ}
    native_action_space = SIMPLER_WIDOWX_ACTION
    robot = W
    real_tasks = REAL_TASKS
    scene_label, camera_name, base_link, family = "Bridge", "3rd_view_camera", "base_link", "bridge_real"
    settle_s = SETTLE_S
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
                    # SimplerEnv's finger material (friction 2.0). Its patch_radius (PhysX torsional friction) is not
                    # modelled: condim 4 held the expert's grasps worse than condim 3 here (docs/simpler.md).
                    m.geom_friction[g, 0] = W.GRIPPER_FRICTION

    def _native_config(self, config_id: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return native_config(self.task, config_id)

    # ------------------------------------------------------------ control
    def _reset_robot(self) -> None:
        d = self.data
        d.qpos[self._arm_q] = W.INIT_QPOS[:6]
        d.qpos[self._finger_q] = W.INIT_QPOS[6:]
        d.ctrl[:6] = W.INIT_QPOS[:6]
        d.ctrl[6:8] = W.GRIPPER_HIGH

    def _actuate(self, dpos: np.ndarray, drot: np.ndarray, g: float) -> None:
        cur_p, _ = self.ee_pose_at_base()
        r = _rotvec_to_mat(drot)
        # ee_align2: T(p_cur) * delta * T(p_cur)^-1 * previous target
        self._target_pos = cur_p + r @ (self._target_pos - cur_p) + dpos
        self._target_mat = r @ self._target_mat
        q = self._ik(self._target_pos, self._target_mat)
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
        on = on_top(d.xpos[m.body(src).id], d.xpos[m.body(tgt).id], self.facts["bbox"][src] / 2, self.facts["bbox"][tgt] / 2,
                    float(rule.get("z_offset", 0.02)))
        if rule.get("clear", True):
            on = on and not self._touching_other(src, self._robot_geoms | self._obj_geoms[tgt])
        grasped = self.is_grasped(src)
        self._consecutive_grasp = self._consecutive_grasp + 1 if grasped else 0
        self._stats = {"is_src_obj_grasped": bool(grasped), "consecutive_grasp": self._consecutive_grasp >= 5, "src_on_target": bool(on)}
        return bool(on)
