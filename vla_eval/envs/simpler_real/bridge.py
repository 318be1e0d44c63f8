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
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from vla_eval.envs.simpler.rules import on_top
from vla_eval.envs.simpler.tasks import BRIDGE_CENTRE, SimplerTask, get_task
from vla_eval.envs.simpler_real import widowx as W
from vla_eval.envs.simpler_real.meshes import collision_parts, visual_parts
from vla_eval.envs.simpler_real.overlay import composite, resize_rgb
from vla_eval.envs.simpler_real.urdf import urdf_to_mjcf_parts
from vla_eval.policies.base import ActionSpace

SIMPLER_WIDOWX_ACTION = ActionSpace(kind="delta_eef", rotation="axis_angle", position_units="meters",
                                    gripper="open_positive", low=-1.0, high=1.0)
"""SimplerEnv's WidowX action: metres and radians in the base frame, gripper +1 open (as Octo / RT-1-X send it)."""

CONTACT_FORCE = 1e-6
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


def _fmt(v) -> str:
    return " ".join(f"{float(x):.9g}" for x in v)


def _quat_to_mat(q) -> np.ndarray:
    out = np.empty(9)
    mujoco.mju_quat2Mat(out, np.asarray(q, dtype=float))
    return out.reshape(3, 3)


def _mat_to_quat(m) -> np.ndarray:
    out = np.empty(4)
    mujoco.mju_mat2Quat(out, np.asarray(m, dtype=float).reshape(9))
    return out


def _rotvec_to_mat(v) -> np.ndarray:
    v = np.asarray(v, float)
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        return np.eye(3)
    q = np.empty(4)
    mujoco.mju_axisAngle2Quat(q, v / angle, angle)
    return _quat_to_mat(q)


def _rot_error(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Rotation vector taking ``current`` to ``target`` (world frame)."""
    r = target @ current.T
    q = _mat_to_quat(r)
    v = np.empty(3)
    mujoco.mju_quat2Vel(v, q, 1.0)
    return v


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
        model_id = real.models[name]
        info = db.get(model_id)
        if info is None:
            raise KeyError(f"{real.model_json} has no model {model_id!r}")
        scale = float((info.get("scales") or [1.0])[0])
        density = float(info.get("density", 1000))
        bbox = (np.array(info["bbox"]["max"]) - np.array(info["bbox"]["min"])) * scale
        facts["bbox"][name] = bbox
        facts["model"][name] = model_id
        model_dir = assets / "data" / "custom" / "models" / model_id
        geoms = []
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
                         f'friction="{W.OBJECT_FRICTION} 0.005 0.0001" contype="1" conaffinity="3" rgba="0 0 0 0"/>')
        facts.setdefault("grasp", {})[name] = widest_section(collision_parts(model_dir), scale)
        objects_xml.append(f'<body name="{name}" pos="0 0 2"><freejoint name="{name}_free"/>{"".join(geoms)}</body>')
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


class BridgeRealEnv(gym.Env):
    """One SimplerEnv Bridge visual-matching task on SimplerEnv's robot and assets (see module docstring)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": W.CONTROL_HZ}
    native_action_space = SIMPLER_WIDOWX_ACTION

    def __init__(self, task: str, assets: Path | str | None = None, cameras=("agentview",),
                 image_size: tuple[int, int] = (256, 256), render_mode: str | None = None, render_scale: float = 1.0):
        """``render_scale`` < 1 renders (and composites) below SimplerEnv's 640x480 before the resize to
        ``image_size``: cheaper on a CPU, but not SimplerEnv's pipeline (which renders 640x480)."""
        from vla_eval.assets import SIMPLER, require_pack

        if task not in REAL_TASKS:
            raise ValueError(f"task {task!r} has no SimplerEnv-asset staging yet; available: {sorted(REAL_TASKS)}")
        self.task = get_task(task)
        self.real = REAL_TASKS[task]
        self.render_mode = render_mode
        if not 0.1 <= float(render_scale) <= 1.0:
            raise ValueError(f"render_scale {render_scale!r}: expected a number in [0.1, 1.0]")
        self.render_wh = (int(round(W.CAMERA_SIZE[0] * render_scale)), int(round(W.CAMERA_SIZE[1] * render_scale)))
        self.assets = Path(assets) if assets is not None else require_pack(SIMPLER)
        bad = [c for c in cameras if c != "agentview"]
        if bad:
            raise ValueError(f"cameras {bad}: the Bridge visual-matching scene has one camera, 'agentview' (SimplerEnv's 3rd_view_camera)")
        self.cameras = tuple(cameras)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        xml, self.facts = build_bridge_xml(self.assets, self.task, self.real)
        self.model = mujoco.MjModel.from_xml_string(xml)
        self.data = mujoco.MjData(self.model)
        self._scratch = mujoco.MjData(self.model)
        m = self.model
        for j in W.ARM_JOINTS:
            m.dof_armature[m.joint(j).dofadr[0]] = W.ARM_ARMATURE
        self._arm_q = np.array([m.joint(j).qposadr[0] for j in W.ARM_JOINTS])
        self._arm_v = np.array([m.joint(j).dofadr[0] for j in W.ARM_JOINTS])
        self._finger_q = np.array([m.joint(j).qposadr[0] for j in W.FINGER_JOINTS])
        self._ee = m.body(W.EE_LINK).id
        self._base = m.body("base_link").id
        self._cam = m.camera("3rd_view_camera").id
        robot_root = self._base
        self._robot_geoms = {g for g in range(m.ngeom) if int(m.body_rootid[m.geom_bodyid[g]]) == robot_root}
        for g in range(m.ngeom):
            if g in self._robot_geoms and m.geom_contype[g]:
                m.geom_contype[g], m.geom_conaffinity[g] = 2, 1  # robot: no self-collision, collides with objects/table
        for link in ("left_finger_link", "right_finger_link"):
            for g in range(m.ngeom):
                if m.geom_bodyid[g] == m.body(link).id and m.geom_contype[g]:
                    # SimplerEnv's finger material (friction 2.0). Its patch_radius (PhysX torsional friction) is not
                    # modelled: condim 4 held the expert's grasps worse than condim 3 here (docs/simpler.md).
                    m.geom_friction[g, 0] = W.GRIPPER_FRICTION
        self._obj_names = [o.name for o in self.task.objects]
        self._obj_geoms = {n: {g for g in range(m.ngeom) if m.geom_bodyid[g] == m.body(n).id} for n in self._obj_names}
        self._foreground = set(self._robot_geoms).union(*self._obj_geoms.values())
        from PIL import Image

        with Image.open(self.assets / "data" / self.real.overlay) as im:
            self._photo_native = np.asarray(im.convert("RGB"))
        self._photo = resize_rgb(self._photo_native, self.render_wh[1], self.render_wh[0])
        self._renderer: mujoco.Renderer | None = None
        self._seg_renderer: mujoco.Renderer | None = None
        self.n_substeps = W.SIM_HZ // W.CONTROL_HZ
        self.instruction = self.task.instruction
        self.rule = dict(self.task.success)
        self.config_id = 0
        self._target_pos = np.zeros(3)
        self._target_mat = np.eye(3)
        self._stats: dict[str, Any] = {}
        self._init_xyz: dict[str, np.ndarray] = {}
        self._consecutive_grasp = 0
        self.action_space = spaces.Box(-1.0, 1.0, shape=(7,), dtype=np.float32)
        h, w = self.image_size
        box = lambda n, lim: spaces.Box(-lim, lim, shape=(n,), dtype=np.float32)  # noqa: E731
        obs: dict[str, spaces.Space] = {
            "state": spaces.Dict({"eef_pos": box(3, 3.0), "eef_quat": box(4, 1.0), "gripper_qpos": box(2, 0.1),
                                  "joint_pos": box(6, 2 * math.pi)}),
            "instruction": spaces.Text(max_length=512, min_length=1,
                                       charset="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,'-_"),
        }
        if self.cameras:
            obs["images"] = spaces.Dict({c: spaces.Box(0, 255, shape=(h, w, 3), dtype=np.uint8) for c in self.cameras})
        self.observation_space = spaces.Dict(obs)

    # ------------------------------------------------------------ frames
    def _base_pose(self) -> tuple[np.ndarray, np.ndarray]:
        return self.data.xpos[self._base].copy(), self.data.xmat[self._base].reshape(3, 3).copy()

    def ee_pose_at_base(self, data: mujoco.MjData | None = None) -> tuple[np.ndarray, np.ndarray]:
        d = data or self.data
        bp, br = d.xpos[self._base], d.xmat[self._base].reshape(3, 3)
        return br.T @ (d.xpos[self._ee] - bp), br.T @ d.xmat[self._ee].reshape(3, 3)

    # ------------------------------------------------------------ control
    def _ik(self, pos_b: np.ndarray, mat_b: np.ndarray, iters: int = 40) -> np.ndarray:
        """Damped least squares from the current joints to the base-frame target pose."""
        m, s = self.model, self._scratch
        s.qpos[:] = self.data.qpos
        bp, br = self._base_pose()
        pos_w, mat_w = bp + br @ pos_b, br @ mat_b
        jp, jr = np.zeros((3, m.nv)), np.zeros((3, m.nv))
        lo, hi = m.jnt_range[[m.joint(j).id for j in W.ARM_JOINTS]].T
        for _ in range(iters):
            mujoco.mj_kinematics(m, s)
            mujoco.mj_comPos(m, s)
            err = np.concatenate([pos_w - s.xpos[self._ee], _rot_error(mat_w, s.xmat[self._ee].reshape(3, 3))])
            if np.linalg.norm(err[:3]) < 1e-5 and np.linalg.norm(err[3:]) < 1e-4:
                break
            mujoco.mj_jacBody(m, s, jp, jr, self._ee)
            jac = np.vstack([jp, jr])[:, self._arm_v]
            dq = jac.T @ np.linalg.solve(jac @ jac.T + 1e-4 * np.eye(6), err)
            s.qpos[self._arm_q] = np.clip(s.qpos[self._arm_q] + dq, lo, hi)
        return s.qpos[self._arm_q].copy()

    def step(self, action):
        a = np.asarray(action, dtype=np.float64).reshape(7)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action has non-finite values: {a.tolist()}")
        dpos = np.clip(a[:3], -W.POS_BOUND, W.POS_BOUND)
        drot = a[3:6]
        norm = float(np.linalg.norm(drot))
        if norm > W.ROT_BOUND:  # pd_ee_pose.py clips the rotation by its norm
            drot = drot / norm * W.ROT_BOUND
        cur_p, _ = self.ee_pose_at_base()
        r = _rotvec_to_mat(drot)
        # ee_align2: T(p_cur) * delta * T(p_cur)^-1 * previous target
        self._target_pos = cur_p + r @ (self._target_pos - cur_p) + dpos
        self._target_mat = r @ self._target_mat
        q = self._ik(self._target_pos, self._target_mat)
        self.data.ctrl[:6] = q
        g = float(np.clip(a[6], -1.0, 1.0))
        self.data.ctrl[6:8] = W.GRIPPER_LOW + (g + 1.0) / 2.0 * (W.GRIPPER_HIGH - W.GRIPPER_LOW)
        mujoco.mj_step(self.model, self.data, nstep=self.n_substeps)
        success = self._evaluate()
        return self._observation(), float(success), success, False, {"success": success, **self._stats}

    # ------------------------------------------------------------- reset
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        cid = options.get("config_id")
        self.config_id = int(cid if cid is not None else self.np_random.integers(len(self.task.configs)))
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        d.qpos[self._arm_q] = W.INIT_QPOS[:6]
        d.qpos[self._finger_q] = W.INIT_QPOS[6:]
        d.ctrl[:6] = W.INIT_QPOS[:6]
        d.ctrl[6:8] = W.GRIPPER_HIGH
        for name, (xy, quat) in native_config(self.task, self.config_id).items():
            adr = m.joint(f"{name}_free").qposadr[0]
            half = self.facts["bbox"][name] / 2
            d.qpos[adr:adr + 3] = [xy[0], xy[1], W.TABLE_HEIGHT + float(np.abs(_quat_to_mat(quat)[2]) @ half) + 0.002]
            d.qpos[adr + 3:adr + 7] = quat
        mujoco.mj_forward(m, d)
        mujoco.mj_step(m, d, nstep=int(SETTLE_S * W.SIM_HZ))
        self._target_pos, self._target_mat = self.ee_pose_at_base()
        self._init_xyz = {n: d.xpos[m.body(n).id].copy() for n in self._obj_names}
        self._consecutive_grasp = 0
        success = self._evaluate()
        return self._observation(), {"success": success, "config_id": self.config_id, **self._stats}

    # ----------------------------------------------------------- success
    def _touching_other(self, name: str, allowed: set[int]) -> bool:
        m, d = self.model, self.data
        own = self._obj_geoms[name]
        force = np.zeros(6)
        for i in range(d.ncon):
            c = d.contact[i]
            g1, g2 = int(c.geom1), int(c.geom2)
            other = g2 if g1 in own else g1 if g2 in own else None
            if other is None or other in allowed or other in own:
                continue
            mujoco.mj_contactForce(m, d, i, force)
            if np.linalg.norm(force[:3]) > CONTACT_FORCE:
                return True
        return False

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

    # --------------------------------------------------------- rendering
    def _renderers(self) -> tuple[mujoco.Renderer, mujoco.Renderer]:
        if self._renderer is None:
            w, h = self.render_wh
            self._renderer = mujoco.Renderer(self.model, height=h, width=w)
            self._seg_renderer = mujoco.Renderer(self.model, height=h, width=w)
            self._seg_renderer.enable_segmentation_rendering()
            self._opt = mujoco.MjvOption()
            self._opt.geomgroup[:] = [1, 1, 1, 0, 0, 0]  # visual meshes only
        return self._renderer, self._seg_renderer

    def render_native(self) -> np.ndarray:
        """The composite at SimplerEnv's 640x480 (times ``render_scale``): real photo where the sim shows neither robot nor object."""
        rgb_r, seg_r = self._renderers()
        rgb_r.update_scene(self.data, camera=self._cam, scene_option=self._opt)
        rgb = rgb_r.render()
        seg_r.update_scene(self.data, camera=self._cam, scene_option=self._opt)
        seg = seg_r.render()
        return composite(rgb, seg, self._photo, self._foreground)

    def _observation(self) -> dict[str, Any]:
        d = self.data
        obs: dict[str, Any] = {"state": {
            "eef_pos": d.xpos[self._ee].astype(np.float32),
            "eef_quat": d.xquat[self._ee].astype(np.float32),
            "gripper_qpos": d.qpos[self._finger_q].astype(np.float32),
            "joint_pos": d.qpos[self._arm_q].astype(np.float32),
        }, "instruction": self.instruction}
        if self.cameras:
            h, w = self.image_size
            obs["images"] = {"agentview": resize_rgb(self.render_native(), h, w)}
        return obs

    def render(self):
        return self.render_native()

    @property
    def observation_contract(self):
        """Row 0 at the top of the view (MuJoCo's renderer, and the photo as stored); the WidowX has 6 arm joints."""
        from vla_eval.envs.contract import STANDARD_STATE, ObservationContract

        return ObservationContract(cameras=self.cameras, image_size=self.image_size, image_origin="top_left",
                                   state_fields={**STANDARD_STATE, "joint_pos": len(W.ARM_JOINTS)})

    def privileged_state(self) -> dict[str, Any]:
        """Ground truth for the scripted expert: object poses, bbox sizes, EEF pose, base pose, the rule."""
        m, d = self.model, self.data
        bp, br = self._base_pose()
        out: dict[str, Any] = {"task": dict(self.rule), "task_type": self.rule["type"], "family": "bridge_real",
                               "control_hz": W.CONTROL_HZ, "config_id": self.config_id,
                               "base_pos": bp, "base_mat": br, "eef_pos": d.xpos[self._ee].copy(),
                               "eef_mat": d.xmat[self._ee].reshape(3, 3).copy(), "gripper_qpos": d.qpos[self._finger_q].copy(),
                               "ee_target_pos": self._target_pos.copy(), "ee_target_mat": self._target_mat.copy(),
                               **self._stats}
        for n in self._obj_names:
            out[f"{n}_pos"] = d.xpos[m.body(n).id].copy()
            out[f"{n}_com"] = d.xipos[m.body(n).id].copy()
            off = np.array([*self.facts["grasp"][n], 0.0])
            out[f"{n}_grasp"] = d.xpos[m.body(n).id] + d.xmat[m.body(n).id].reshape(3, 3) @ off
            out[f"{n}_quat"] = d.xquat[m.body(n).id].copy()
            out[f"{n}_bbox"] = self.facts["bbox"][n].copy()
            out[f"{n}_init_pos"] = self._init_xyz[n].copy()
        return out

    def close(self):
        for r in (self._renderer, self._seg_renderer):
            if r is not None:
                r.close()
        self._renderer = self._seg_renderer = None
