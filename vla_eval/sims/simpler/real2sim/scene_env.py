"""What every SimplerEnv-robot visual-matching scene does the same way, whichever robot stands in it.

:class:`RealSceneEnv` loads a scene's MJCF, finds the robot's arm, fingers, end effector, base and
camera by the robot's names, lets the robot collide with objects and table but not with itself,
composites SimplerEnv's real photo wherever the segmentation shows neither robot nor object, solves
IK for base-frame end-effector targets, places a configuration's objects on the table and lets them
settle, and lays out observations and the privileged state. Each robot's env (:mod:`.bridge`: the
WidowX; :mod:`.google_env`: the Google robot) supplies its facts module, scene builder, controller
(how a clipped delta pose and gripper command drive the joints), grasp test and success rule as
small overrides; that is where its SimplerEnv sources are cited.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from vla_eval.geometry import quat_to_mat, rotation_error
from vla_eval.sims.contract import RenderOnDemand
from vla_eval.sims.simpler.real2sim.overlay import composite_drawn, resize_rgb
from vla_eval.sims.simpler.rules import touching_other
from vla_eval.sims.simpler.tasks import get_task


class RealSceneEnv(RenderOnDemand, gym.Env):
    """One SimplerEnv visual-matching task on SimplerEnv's robot and assets; a subclass per robot (module docstring).

    A subclass sets the class attributes below and overrides the hooks ``_build_xml`` (the scene),
    ``_tune_robot`` (drives and finger materials), ``_native_config`` (object placement in SimplerEnv's world),
    ``_reset_robot`` (start joints and targets), ``_actuate`` (the controller), ``is_grasped`` and ``_evaluate``.
    """

    robot: ModuleType
    """The robot's facts (:mod:`.widowx`, :mod:`.google`): joint and link names, rates, bounds, camera size,
    table height."""
    real_tasks: dict[str, Any]
    """Task name -> how it is staged with SimplerEnv's assets (models, model json, overlay photo, SimplerEnv env id)."""
    scene_label: str
    camera_name: str
    """SimplerEnv's name of the scene's one camera (served as ``agentview``)."""
    base_link: str
    family: str
    """``privileged_state()["family"]``: which scripted expert drives the scene."""
    settle_s: float
    ik_iters: int
    gripper_qpos_limit: float
    initial_rule_state: dict[str, Any] = {}

    def __init__(
        self,
        task: str,
        assets: Path | str | None = None,
        cameras=("agentview",),
        image_size: tuple[int, int] = (256, 256),
        render_mode: str | None = None,
        render_scale: float = 1.0,
    ):
        """``render_scale`` < 1 renders (and composites) below SimplerEnv's camera size before the resize to
        ``image_size``: cheaper on a CPU, but not SimplerEnv's pipeline (which renders at full size)."""
        from vla_eval.assets import SIMPLER, require_pack

        R = self.robot
        if task not in self.real_tasks:
            raise ValueError(f"task {task!r} has no SimplerEnv-asset staging yet; available: {sorted(self.real_tasks)}")
        self.task = get_task(task)
        self.real = self.real_tasks[task]
        self._check_scene_options()
        self.render_mode = render_mode
        if not 0.1 <= float(render_scale) <= 1.0:
            raise ValueError(f"render_scale {render_scale!r}: expected a number in [0.1, 1.0]")
        self.render_wh = (int(round(R.CAMERA_SIZE[0] * render_scale)), int(round(R.CAMERA_SIZE[1] * render_scale)))
        self.assets = Path(assets) if assets is not None else require_pack(SIMPLER)
        bad = [c for c in cameras if c != "agentview"]
        if bad:
            raise ValueError(
                f"cameras {bad}: the {self.scene_label} visual-matching scene has one camera, 'agentview' "
                f"(SimplerEnv's {self.camera_name})"
            )
        self.cameras = tuple(cameras)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        xml, self.facts = self._build_xml()
        self.model = mujoco.MjModel.from_xml_string(xml)
        self.data = mujoco.MjData(self.model)
        self._scratch = mujoco.MjData(self.model)
        m = self.model
        self._arm_q = np.array([m.joint(j).qposadr[0] for j in R.ARM_JOINTS])
        self._arm_v = np.array([m.joint(j).dofadr[0] for j in R.ARM_JOINTS])
        self._finger_q = np.array([m.joint(j).qposadr[0] for j in R.FINGER_JOINTS])
        self._ee = m.body(R.EE_LINK).id
        self._base = m.body(self.base_link).id
        self._cam = m.camera(self.camera_name).id
        self._robot_geoms = {g for g in range(m.ngeom) if int(m.body_rootid[m.geom_bodyid[g]]) == self._base}
        for g in self._robot_geoms:
            if m.geom_contype[g]:
                m.geom_contype[g], m.geom_conaffinity[g] = 2, 1  # robot: no self-collision; collides with objects/table
        self._tune_robot()
        self._obj_names = [o.name for o in self.task.objects] + list(getattr(self.real, "extra_objects", None) or ())
        self._obj_geoms = {n: {g for g in range(m.ngeom) if m.geom_bodyid[g] == m.body(n).id} for n in self._obj_names}
        self._foreground = set(self._robot_geoms).union(*self._obj_geoms.values())
        self._obj_collision = {
            g: (int(m.geom_contype[g]), int(m.geom_conaffinity[g])) for gs in self._obj_geoms.values() for g in gs
        }
        self._episode_objects = list(self._obj_names)
        self._damp_objects()
        self._init_half: dict[str, np.ndarray] = {}
        self._photos: dict[str, np.ndarray] = {}
        self._use_photo(self._overlay_for(0))
        self._renderer: mujoco.Renderer | None = None
        self._seg_renderer: mujoco.Renderer | None = None
        self.n_substeps = round(R.SIM_HZ / R.CONTROL_HZ)
        self.instruction = self.task.instruction
        self.rule = self._staged_rule(dict(self.task.success))
        self.config_id = 0
        self._target_pos, self._target_mat = np.zeros(3), np.eye(3)
        self._stats: dict[str, Any] = {}
        self._rule_state: dict[str, Any] = {}
        self._init_xyz: dict[str, np.ndarray] = {}
        self._consecutive_grasp = 0
        self.elapsed_steps = 0
        self.last_ik_ok = True
        self.ik_failures = 0
        self.action_space = spaces.Box(-1.0, 1.0, shape=(7,), dtype=np.float32)
        h, w = self.image_size
        box = lambda n, lim: spaces.Box(-lim, lim, shape=(n,), dtype=np.float32)  # noqa: E731
        obs: dict[str, spaces.Space] = {
            "state": spaces.Dict(
                {
                    "eef_pos": box(3, 3.0),
                    "eef_quat": box(4, 1.0),
                    "gripper_qpos": box(2, self.gripper_qpos_limit),
                    "joint_pos": box(len(R.ARM_JOINTS), 2 * math.pi),
                }
            ),
            "instruction": spaces.Text(
                max_length=512,
                min_length=1,
                charset="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,'-_",
            ),
        }
        if self.cameras:
            obs["images"] = spaces.Dict({c: spaces.Box(0, 255, shape=(h, w, 3), dtype=np.uint8) for c in self.cameras})
        self.observation_space = spaces.Dict(obs)

    # -------------------------------------------------------------- hooks
    def _check_scene_options(self) -> None:
        """Reject a robot-specific constructor option before any work (none by default)."""

    def _build_xml(self) -> tuple[str, dict[str, Any]]:
        """The scene's MJCF and facts the env needs (model bboxes, names, grasp points)."""
        raise NotImplementedError

    def _tune_robot(self) -> None:
        """Drive armature, finger materials and any robot-specific joint indices, on the loaded model."""

    def _native_config(self, config_id: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Object name -> (xy, quat wxyz) in SimplerEnv's world for configuration ``config_id``."""
        raise NotImplementedError

    def _reset_robot(self) -> None:
        """Start joints, drive targets and controller state (after ``mj_resetData``)."""
        raise NotImplementedError

    def _overlay_for(self, config_id: int) -> str:
        """The real photo (path under ``data/``) composited behind configuration ``config_id``: one per task by
        default; the drawer tasks have one per robot pose."""
        return self.real.overlay

    def _place_base(self, config_id: int) -> None:
        """Move the (fixed) robot base to configuration ``config_id``'s pose; the base stays where the scene put it
        by default."""

    def _reset_fixtures(self, config_id: int) -> None:
        """Joint positions of articulated fixtures (the cabinet's drawers) at the start of ``config_id``."""

    def _staged_rule(self, rule: dict[str, Any]) -> dict[str, Any]:
        """The shared task's rule with its names as this scene stages them (a target the scene replaces)."""
        targets = getattr(self.real, "targets", None) or {}
        if rule.get("target") in targets:
            rule = {**rule, "target": targets[rule["target"]]}
        return rule

    def _support_z(self, name: str, xy: np.ndarray, quat: np.ndarray) -> float:
        """Height of the surface object ``name`` (at orientation ``quat``) starts on at ``xy`` (the table; the apple
        task: the cabinet top)."""
        return self.robot.TABLE_HEIGHT

    def _before_step(self) -> None:
        """Called at the start of every step, before the action runs (two-subtask tasks switch here)."""

    def _actuate(self, dpos: np.ndarray, drot: np.ndarray, g: float) -> None:
        """Drive the robot through one control step: base-frame ``dpos`` (clipped) and axis-angle ``drot`` (clipped
        by its norm), gripper command ``g`` in [-1, 1]; steps the simulation."""
        raise NotImplementedError

    def is_grasped(self, name: str) -> bool:
        raise NotImplementedError

    def _evaluate(self) -> bool:
        """The task's success rule this step; sets ``self._stats`` (the info SimplerEnv's evaluate reports)."""
        raise NotImplementedError

    def _use_photo(self, overlay: str) -> None:
        """Composite ``overlay`` from now on (each photo is read and resized once per env)."""
        if overlay not in self._photos:
            from PIL import Image

            with Image.open(self.assets / "data" / overlay) as im:
                self._photos[overlay] = resize_rgb(np.asarray(im.convert("RGB")), self.render_wh[1], self.render_wh[0])
        self._photo = self._photos[overlay]
        self.overlay = overlay

    # ------------------------------------------------------------ frames
    def _base_pose(self) -> tuple[np.ndarray, np.ndarray]:
        return self.data.xpos[self._base].copy(), self.data.xmat[self._base].reshape(3, 3).copy()

    def ee_pose_at_base(self, data: mujoco.MjData | None = None) -> tuple[np.ndarray, np.ndarray]:
        d = data or self.data
        bp, br = d.xpos[self._base], d.xmat[self._base].reshape(3, 3)
        return br.T @ (d.xpos[self._ee] - bp), br.T @ d.xmat[self._ee].reshape(3, 3)

    # ------------------------------------------------------------ control
    IK_TOLERANCE = 1e-4
    """SimplerEnv's controllers ask pinocchio's IK for the target (``pd_ee_pose.py`` ``compute_ik``, SAPIEN's
    ``compute_inverse_kinematics`` with its default ``eps`` 1e-4 on the 6-D error) and, when it reports no
    solution, keep the joints where they are (``set_action`` L114-116: ``_target_qpos = _start_qpos``). The port's
    IK below counts as failed when its pose error stays above this after its iterations (it clamps to the joint
    limits, so a target past a limit is where it fails)."""

    def _ik_or_hold(self, pos_b: np.ndarray, mat_b: np.ndarray) -> np.ndarray:
        """The arm's joint goal for the base-frame target pose, as SimplerEnv's controller picks it (``pd_ee_pose.py``
        ``compute_ik`` / ``set_action`` L97-116). pinocchio's CLIK does not know the joint limits, so its solution may
        put a joint past its limit; the goal stays there and the joint limit stops that joint while the others reach
        their goals, so the hand falls short. With no solution the arm's goal is its measured joints. Solving with
        the limits instead (as the port did) lets the other joints make up for the stopped one and reached targets
        SAPIEN's arm never reaches (move near's far objects)."""
        q = self._ik(pos_b, mat_b, clamp=False)
        if not self.last_ik_ok:
            self.ik_failures += 1
            return self.data.qpos[self._arm_q].copy()
        return q

    def _ik(self, pos_b: np.ndarray, mat_b: np.ndarray, iters: int | None = None, clamp: bool = True) -> np.ndarray:
        """Damped least squares over the arm joints from the current joints to the base-frame target pose
        (``ik_iters`` iterations at most); ``last_ik_ok`` says whether it converged within :attr:`IK_TOLERANCE`."""
        m, s = self.model, self._scratch
        s.qpos[:] = self.data.qpos
        bp, br = self._base_pose()
        pos_w, mat_w = bp + br @ pos_b, br @ mat_b
        jp, jr = np.zeros((3, m.nv)), np.zeros((3, m.nv))
        lo, hi = m.jnt_range[[m.joint(j).id for j in self.robot.ARM_JOINTS]].T
        for _ in range(self.ik_iters if iters is None else iters):
            mujoco.mj_kinematics(m, s)
            mujoco.mj_comPos(m, s)
            err = np.concatenate([pos_w - s.xpos[self._ee], rotation_error(mat_w, s.xmat[self._ee].reshape(3, 3))])
            if np.linalg.norm(err[:3]) < 1e-5 and np.linalg.norm(err[3:]) < 1e-4:
                break
            mujoco.mj_jacBody(m, s, jp, jr, self._ee)
            jac = np.vstack([jp, jr])[:, self._arm_v]
            dq = jac.T @ np.linalg.solve(jac @ jac.T + 1e-4 * np.eye(6), err)
            q = s.qpos[self._arm_q] + dq
            s.qpos[self._arm_q] = np.clip(q, lo, hi) if clamp else q
        mujoco.mj_kinematics(m, s)
        err = np.concatenate([pos_w - s.xpos[self._ee], rotation_error(mat_w, s.xmat[self._ee].reshape(3, 3))])
        self.last_ik_ok = bool(np.linalg.norm(err) < self.IK_TOLERANCE)
        return s.qpos[self._arm_q].copy()

    def step(self, action):
        R = self.robot
        a = np.asarray(action, dtype=np.float64).reshape(7)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action has non-finite values: {a.tolist()}")
        dpos = np.clip(a[:3], -R.POS_BOUND, R.POS_BOUND)
        drot = a[3:6]
        norm = float(np.linalg.norm(drot))
        if norm > R.ROT_BOUND:  # pd_ee_pose.py clips the rotation by its norm
            drot = drot / norm * R.ROT_BOUND
        self._before_step()
        self._actuate(dpos, drot, float(np.clip(a[6], -1.0, 1.0)))
        self.elapsed_steps += 1
        success = self._evaluate()
        return self._observation(), float(success), success, False, {"success": success, **self._stats}

    # ------------------------------------------------------------- reset
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        cid = options.get("config_id")
        self.config_id = int(cid if cid is not None else self.np_random.integers(len(self.task.configs)))
        cfg = self.task.config(self.config_id)
        self.rule = self._staged_rule(dict(cfg.success or self.task.success))  # move near: each configuration its pair
        self.instruction = cfg.instruction or self.task.instruction
        m, d = self.model, self.data
        self._use_photo(self._overlay_for(self.config_id))
        self._place_base(self.config_id)
        mujoco.mj_resetData(m, d)
        self._reset_robot()
        self._reset_fixtures(self.config_id)
        placed = self._native_config(self.config_id)
        for name, (xy, quat) in placed.items():
            adr = m.joint(f"{name}_free").qposadr[0]
            half = self.facts["bbox"][name] / 2
            d.qpos[adr : adr + 3] = [
                xy[0],
                xy[1],
                self._support_z(name, xy, quat) + float(np.abs(quat_to_mat(quat)[2]) @ half) + 0.002,
            ]
            d.qpos[adr + 3 : adr + 7] = quat
        self._park(set(self._obj_names) - set(placed))
        mujoco.mj_forward(m, d)
        self._settle(placed)
        self._target_pos, self._target_mat = self.ee_pose_at_base()
        self._init_xyz = {n: d.xpos[m.body(n).id].copy() for n in self._obj_names}
        # SimplerEnv's bbox in the world at the start: the model's extents rotated by the settled pose (move near)
        self._init_half = {n: quat_to_mat(d.xquat[m.body(n).id]) @ (self.facts["bbox"][n] / 2) for n in self._obj_names}
        self._consecutive_grasp = 0
        self._rule_state = dict(self.initial_rule_state)
        self.elapsed_steps = 0
        self.last_ik_ok, self.ik_failures = True, 0
        success = self._evaluate()
        return self._observation(), {
            "success": success,
            "config_id": self.config_id,
            "overlay": self.overlay,
            **self._stats,
        }

    object_damping = 0.1
    """SimplerEnv's ``obj.set_damping(0.1, 0.1)`` on every task object (``move_near_in_scene.py`` ``_load_actors``
    L132-135, which the Bridge tasks inherit; ``grasp_single_in_scene.py`` L86; ``place_in_closed_drawer_in_scene.py``
    L97): PhysX's linear and angular damping, a velocity decay of 0.1 per second whatever the mass."""

    def _damp_objects(self) -> None:
        """PhysX damping ``dv/dt = -c v`` as MuJoCo dof damping (a force ``-b v``): ``b = c M_ii`` on each of the
        free joint's six dofs, ``M_ii`` the joint-space inertia (the object's whole mass on a translation, its
        inertia about the body axis on a rotation; the free joint's angular velocity is in the body frame, so this
        is exact where the principal axes are the body's and close otherwise)."""
        m = self.model
        scratch = mujoco.MjData(m)
        mujoco.mj_forward(m, scratch)
        full = np.zeros((m.nv, m.nv))
        mujoco.mj_fullM(m, scratch, full)
        for name in self._obj_names:
            try:
                dof = m.joint(f"{name}_free").dofadr[0]
            except KeyError:
                continue  # a static object (the sink): nothing moves
            m.dof_damping[dof : dof + 6] = self.object_damping * np.diag(full)[dof : dof + 6]

    settle_lock_s = 0.0
    """Seconds at the start of the settle with the objects' rotation about the world x and y axes locked (SimplerEnv's
    ``lock_motion(0, 0, 0, 1, 1, 0)`` for its first 0.5 s), so a round object does not roll off its start spot."""

    def _settle(self, placed: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """Let the placed objects come to rest (SimplerEnv settles 0.5 + 0.5 s after dropping them; here they start
        on their support surface). The locked part zeroes each object's world x / y angular velocity after every
        physics step; then the velocities are zeroed, as SimplerEnv does when it unlocks, and the rest runs free."""
        m, d = self.model, self.data
        locked = int(self.settle_lock_s * self.robot.SIM_HZ)
        dofs = [m.joint(f"{n}_free").dofadr[0] for n in placed]
        bodies = [m.body(n).id for n in placed]
        for _ in range(locked):
            mujoco.mj_step(m, d)
            for dof, body in zip(dofs, bodies):
                rot = d.xmat[body].reshape(3, 3)
                w = rot @ d.qvel[dof + 3 : dof + 6]  # free-joint angular velocity is in the body frame
                d.qvel[dof + 3 : dof + 6] = rot.T @ np.array([0.0, 0.0, w[2]])
        if locked:
            for dof in dofs:
                d.qvel[dof : dof + 6] = 0.0
        mujoco.mj_step(m, d, nstep=int(self.settle_s * self.robot.SIM_HZ) - locked)
        # "Some objects need longer time to settle" (move_near_in_scene.py L315-322, grasp_single_in_scene.py
        # L312-316): summed speeds over 1e-3 m/s or 1e-2 rad/s get another 1.5 s
        lin = sum(float(np.linalg.norm(d.qvel[dof : dof + 3])) for dof in dofs)
        ang = sum(float(np.linalg.norm(d.qvel[dof + 3 : dof + 6])) for dof in dofs)
        self.settled_longer = lin > 1e-3 or ang > 1e-2
        if self.settled_longer:
            mujoco.mj_step(m, d, nstep=int(1.5 * self.robot.SIM_HZ))

    def _park(self, unused: set[str]) -> None:
        """Task objects this configuration does not use (move near: 5 of 8) wait 2 m below the floor and 5 m behind
        the cameras (which look towards -x) with collisions off and gravity compensated, touching nothing and out of
        view; the rest collide again."""
        m, d = self.model, self.data
        for k, name in enumerate(self._obj_names):
            parked = name in unused
            for g in self._obj_geoms[name]:
                m.geom_contype[g], m.geom_conaffinity[g] = (0, 0) if parked else self._obj_collision[g]
            body = m.body(name).id
            m.body_gravcomp[body] = 1.0 if parked else 0.0
            if parked:
                adr = m.joint(f"{name}_free").qposadr[0]
                d.qpos[adr : adr + 7] = [5.0 + 0.3 * k, 0.0, -2.0, 1.0, 0.0, 0.0, 0.0]  # behind both robots' cameras
        self._episode_objects = [n for n in self._obj_names if n not in unused]

    # ----------------------------------------------------------- success
    def _touching_other(self, name: str, allowed: set[int]) -> bool:
        return touching_other(self.model, self.data, self._obj_geoms[name], allowed)

    # --------------------------------------------------------- rendering
    def _renderers(self, segmentation: bool = True) -> tuple[mujoco.Renderer, mujoco.Renderer | None]:
        """The colour renderer, and (``segmentation``) a segmentation renderer for tests and pictures."""
        w, h = self.render_wh
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, height=h, width=w)
            self._depth_buf = np.empty((h, w), dtype=np.float32)
            self._opt = mujoco.MjvOption()
            self._opt.geomgroup[:] = [1, 1, 1, 0, 0, 0]  # visual meshes only (not collision hulls, table, floor)
        if segmentation and self._seg_renderer is None:
            self._seg_renderer = mujoco.Renderer(self.model, height=h, width=w)
            self._seg_renderer.enable_segmentation_rendering()
        return self._renderer, self._seg_renderer

    def render_native(self) -> np.ndarray:
        """The composite at SimplerEnv's camera size (times ``render_scale``): real photo where the sim shows
        neither robot nor object.

        One render pass: the table and floor are in a geom group the camera does not draw, and parked objects wait
        behind the camera, so every pixel the pass draws (depth buffer off its cleared value) shows the robot, a
        task object or an articulated fixture (the drawer tasks' cabinet) -- the pixels SimplerEnv's segmentation
        keeps, at half the cost of a second, segmentation pass (tests compare the two masks on real frames: they
        differ on ~0.1% of the pixels, at
        antialiased edges, which the colour pass blends and the segmentation pass does not)."""
        rgb_r, _ = self._renderers(segmentation=False)
        rgb_r.update_scene(self.data, camera=self._cam, scene_option=self._opt)
        rgb = rgb_r.render()
        mujoco.mjr_readPixels(
            None, self._depth_buf, rgb_r._rect, rgb_r._mjr_context
        )  # same pass, context still current
        return composite_drawn(rgb, np.flipud(self._depth_buf), self._photo)

    def _observation(self) -> dict[str, Any]:
        d = self.data
        obs: dict[str, Any] = {
            "state": {
                "eef_pos": d.xpos[self._ee].astype(np.float32),
                "eef_quat": d.xquat[self._ee].astype(np.float32),
                "gripper_qpos": d.qpos[self._finger_q].astype(np.float32),
                "joint_pos": d.qpos[self._arm_q].astype(np.float32),
            },
            "instruction": self.instruction,
        }
        obs.update(self._step_views())
        return obs

    def _render_views(self, cameras: tuple[str, ...]) -> dict[str, Any]:
        h, w = self.image_size
        return {"images": {cam: resize_rgb(self.render_native(), h, w) for cam in cameras}}

    def render(self):
        return self.render_native()

    @property
    def observation_contract(self):
        """Row 0 at the top of the view (MuJoCo's renderer, and the photo as stored); ``joint_pos`` holds the robot's
        arm joints (the WidowX has 6, the Google robot 7)."""
        from vla_eval.sims.contract import STANDARD_STATE, ObservationContract

        return ObservationContract(
            cameras=self.cameras,
            image_size=self.image_size,
            image_origin="top_left",
            state_fields={**STANDARD_STATE, "joint_pos": len(self.robot.ARM_JOINTS)},
        )

    def privileged_state(self) -> dict[str, Any]:
        """Ground truth for the scripted expert: object poses, bbox sizes, EEF pose, base pose, the rule."""
        m, d = self.model, self.data
        bp, br = self._base_pose()
        out: dict[str, Any] = {
            "task": dict(self.rule),
            "task_type": self.rule["type"],
            "family": self.family,
            "control_hz": self.robot.CONTROL_HZ,
            "config_id": self.config_id,
            "base_pos": bp,
            "base_mat": br,
            "eef_pos": d.xpos[self._ee].copy(),
            "eef_mat": d.xmat[self._ee].reshape(3, 3).copy(),
            "gripper_qpos": d.qpos[self._finger_q].copy(),
            "ee_target_pos": self._target_pos.copy(),
            "ee_target_mat": self._target_mat.copy(),
            **self._stats,
        }
        for n in self._obj_names:
            out[f"{n}_pos"] = d.xpos[m.body(n).id].copy()
            out[f"{n}_com"] = d.xipos[m.body(n).id].copy()
            off = np.array([*self.facts["grasp"][n], 0.0])
            out[f"{n}_grasp"] = d.xpos[m.body(n).id] + d.xmat[m.body(n).id].reshape(3, 3) @ off
            out[f"{n}_quat"] = d.xquat[m.body(n).id].copy()
            out[f"{n}_bbox"] = self.facts["bbox"][n].copy()
            out[f"{n}_init_pos"] = self._init_xyz[n].copy()
            out[f"{n}_init_half"] = self._init_half[n].copy()
        return out

    def close(self):
        for r in (self._renderer, self._seg_renderer):
            if r is not None:
                r.close()
        self._renderer = self._seg_renderer = None
