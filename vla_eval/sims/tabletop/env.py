"""The built-in MuJoCo tabletop env: a Panda-like arm, one scene file, optional OOD perturbations.

Control: 20 Hz, 7-D ``[dx, dy, dz, drx, dry, drz, gripper]`` in [-1, 1] (LIBERO / robosuite
OSC_POSE convention): the position delta is ``a[:3] * 0.05`` m and the rotation delta
``a[3:6] * 0.5`` rad axis-angle in the world frame, both relative to the *current*
end-effector pose; gripper -1 = open, +1 = close. Differential IK turns the target pose
into joint position targets, then 25 physics substeps of 2 ms run.

Observation (numpy only):

* ``images``: {camera: HxWx3 uint8}, exactly as rendered (row 0 = top). Omitted when
  ``cameras=()`` so state-only use renders nothing; with ``set_render_cameras`` only the
  requested cameras are drawn (:class:`~vla_eval.sims.contract.RenderOnDemand`).
* ``depth``: {camera: HxW float32, metres along the optical axis} and ``camera_params``:
  {camera: {``intrinsics`` 3x3, ``extrinsics`` 4x4}} when ``depth=True``. Extrinsics are
  world-from-camera in the OpenCV convention (x right, y down, z forward), so a world
  point ``p`` projects as ``K @ (R.T @ (p - t))`` with pixel (u=column, v=row).
* ``state``: ``eef_pos`` (3, world metres), ``eef_quat`` (4, **wxyz**, world frame),
  ``gripper_qpos`` (2, finger slide positions, 0 = closed, 0.04 = open), ``joint_pos`` (7).
* ``instruction``: the task instruction (a paraphrase under the ``language`` perturbation).

``info["success"]`` comes from the scene's predicate every step; ``terminated`` equals it
and the env never truncates (step limits are the harness's job).
"""

from __future__ import annotations

import atexit
import math
import weakref
from pathlib import Path
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from vla_eval.actions.space import LIBERO_DELTA_EEF
from vla_eval.geometry import mat_to_quat, rotvec_to_mat, yaw_to_quat
from vla_eval.sims.contract import ObservationContract, RenderOnDemand
from vla_eval.sims.tabletop.builder import ARM_JOINTS, FINGER_JOINTS, build_scene
from vla_eval.sims.tabletop.controller import DiffIKController
from vla_eval.sims.tabletop.perturbations import (
    apply_to_model,
    apply_to_scene,
    language_template,
    noise_std,
    validate_perturbations,
)
from vla_eval.sims.tabletop.predicates import make_predicate
from vla_eval.sims.tabletop.scene import INSTRUCTION_CHARSET, SceneSpec, load_scene

CONTROL_HZ = 20
POS_SCALE = 0.05
ROT_SCALE = 0.5
GRIPPER_OPEN = 0.04
WORKSPACE_LO = np.array([0.1, -0.5, 0.005])
WORKSPACE_HI = np.array([0.9, 0.5, 0.6])
PLACEMENT_TRIES = 200

_LIVE_ENVS: "weakref.WeakSet[TabletopEnv]" = weakref.WeakSet()
_exit_hook_registered = False


def _close_live_renderers() -> None:
    for env in list(_LIVE_ENVS):
        env.close()


def _track_renderer(env: "TabletopEnv") -> None:
    """Close renderers of envs nobody closed before EGL terminates at interpreter exit.

    Registered after the first GL context exists, so (atexit being LIFO) it runs before
    MuJoCo's own ``eglTerminate`` hook; otherwise ``Renderer.__del__`` prints EGLError noise.
    """
    global _exit_hook_registered
    _LIVE_ENVS.add(env)
    if not _exit_hook_registered:
        atexit.register(_close_live_renderers)
        _exit_hook_registered = True


class TabletopEnv(RenderOnDemand, gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": CONTROL_HZ}
    native_action_space = LIBERO_DELTA_EEF

    def __init__(
        self,
        scene: str | Path | SceneSpec,
        cameras: tuple[str, ...] | list[str] = ("agentview", "wrist"),
        image_size: tuple[int, int] = (128, 128),
        depth: bool = False,
        perturbations: list[dict] | None = None,
        render_mode: str | None = None,
    ):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode {render_mode!r} not supported; use None or 'rgb_array'")
        self.render_mode = render_mode
        self.base_scene = load_scene(scene)
        self.perturbations = validate_perturbations(perturbations)
        self.scene = apply_to_scene(self.base_scene, self.perturbations)
        self.cameras = tuple(cameras)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.depth = bool(depth)

        built = build_scene(self.scene, self.image_size)
        self.model = mujoco.MjModel.from_xml_string(built.xml)
        apply_to_model(self.model, self.perturbations)
        self._bind_model(built, CONTROL_HZ, "the tabletop has 'agentview' and 'wrist'")
        self.predicate = make_predicate(self.model, self.scene)
        self._placements = self._placement_table()

        self._renderer: mujoco.Renderer | None = None
        self._noise_std = noise_std(self.perturbations)
        self._start_frames(0)
        self.instruction = self.scene.render_instruction()

        self.action_space = spaces.Box(-1.0, 1.0, shape=(7,), dtype=np.float32)
        self.observation_space = self._make_observation_space()

    # ------------------------------------------------------------------ spaces
    def _make_observation_space(self) -> spaces.Dict:
        h, w = self.image_size
        box = lambda n, lim: spaces.Box(-lim, lim, shape=(n,), dtype=np.float32)  # noqa: E731
        obs: dict[str, spaces.Space] = {
            "state": spaces.Dict(
                {
                    "eef_pos": box(3, 3.0),
                    "eef_quat": box(4, 1.0),
                    "gripper_qpos": box(2, 0.1),
                    "joint_pos": box(7, 2 * math.pi),
                }
            ),
            "instruction": spaces.Text(max_length=512, min_length=1, charset=INSTRUCTION_CHARSET),
        }
        if self.cameras:
            obs["images"] = spaces.Dict({c: spaces.Box(0, 255, shape=(h, w, 3), dtype=np.uint8) for c in self.cameras})
        if self.depth and self.cameras:
            obs["depth"] = spaces.Dict({c: spaces.Box(0.0, 1e3, shape=(h, w), dtype=np.float32) for c in self.cameras})
            obs["camera_params"] = spaces.Dict(
                {
                    c: spaces.Dict(
                        {
                            "intrinsics": spaces.Box(-1e6, 1e6, shape=(3, 3), dtype=np.float32),
                            "extrinsics": spaces.Box(-1e3, 1e3, shape=(4, 4), dtype=np.float32),
                        }
                    )
                    for c in self.cameras
                }
            )
        return spaces.Dict(obs)

    # --------------------------------------------------------------- placement
    def _placement_table(self) -> list[dict[str, Any]]:
        """Everything re-placed at reset, in scene order (objects, then fixtures)."""
        m, table = self.model, []
        for obj in self.scene.objects:
            body = m.body(obj.name)
            jnt = body.jntadr[0] if body.jntnum[0] > 0 else -1
            table.append(
                dict(
                    name=obj.name,
                    footprint=obj.footprint,
                    pos=np.array(obj.pos),
                    x=obj.x,
                    y=obj.y,
                    yaw0=0.0,
                    yaw=obj.yaw,
                    body=body.id,
                    qadr=(m.jnt_qposadr[jnt] if jnt >= 0 else -1),
                )
            )
        for fx in self.scene.fixtures:
            table.append(
                dict(
                    name=fx.name,
                    footprint=fx.radius,
                    pos=np.array(fx.pos),
                    x=fx.x,
                    y=fx.y,
                    yaw0=fx.yaw,
                    yaw=fx.yaw_range,
                    body=m.body(fx.name).id,
                    qadr=-1,
                )
            )
        return table

    def _place_all(self, rng: np.random.Generator) -> None:
        placed: list[tuple[np.ndarray, float]] = []
        for item in self._placements:
            for _ in range(PLACEMENT_TRIES):
                xy = item["pos"][:2] + np.array([rng.uniform(*item["x"]), rng.uniform(*item["y"])])
                if all(
                    np.linalg.norm(xy - other) >= max(self.scene.min_separation, item["footprint"] + fp + 0.01)
                    for other, fp in placed
                ):
                    break
            yaw = item["yaw0"] + rng.uniform(*item["yaw"])
            placed.append((xy, item["footprint"]))
            pos = np.array([xy[0], xy[1], item["pos"][2]])
            quat = yaw_to_quat(yaw)
            if item["qadr"] >= 0:
                self.data.qpos[item["qadr"] : item["qadr"] + 3] = pos
                self.data.qpos[item["qadr"] + 3 : item["qadr"] + 7] = quat
            else:
                self.model.body_pos[item["body"]] = pos
                self.model.body_quat[item["body"]] = quat

    # -------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Full reset: fresh ``MjData`` state, home posture, object poses re-sampled from the seed.

        Independent streams (layout / language / image noise) are derived from one draw
        of ``np_random``, so a perturbation never shifts the layout of the same seed.
        """
        super().reset(seed=seed)
        episode_seed = int(self.np_random.integers(0, 2**63 - 1))
        layout_rng, language_rng = (np.random.default_rng([episode_seed, k]) for k in range(2))
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        d.qpos[self._arm_qadr] = self._home_qpos[:7]
        d.qpos[self._finger_qadr] = self._home_qpos[7:9]
        d.ctrl[:] = self._home_ctrl
        self._place_all(layout_rng)
        mujoco.mj_forward(m, d)
        self._start_frames(episode_seed)
        template = language_template(self.scene, self.perturbations, language_rng)
        self.instruction = self.scene.render_instruction(template)
        return self._observation(), {"success": bool(self.predicate(d))}

    def _bind_model(self, built, control_hz: float, camera_hint: str) -> None:
        """Index the compiled model: data, substeps, arm/finger addresses, IK, fixture joints and sites.

        Shared by every env built on this arm so they stay in step when the robot changes.
        """
        self.data = mujoco.MjData(self.model)
        self.n_substeps = int(round(1.0 / control_hz / self.model.opt.timestep))
        for cam in self.cameras:
            if mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, cam) < 0:
                raise ValueError(f"unknown camera {cam!r}; {camera_hint}")
        m = self.model
        self._arm_qadr = np.array([m.joint(j).qposadr[0] for j in ARM_JOINTS])
        self._finger_qadr = np.array([m.joint(j).qposadr[0] for j in FINGER_JOINTS])
        self._home_qpos = built.home_qpos
        self._home_ctrl = built.home_ctrl
        self._eef = m.site("eef").id
        self.ik = DiffIKController(m, "eef", ARM_JOINTS, home=built.home_qpos[:7])
        fixture_roots = {m.body(f.name).id for f in self.scene.fixtures}
        self._fixture_joints = [
            m.joint(j).name for j in range(m.njnt) if int(m.body_rootid[m.jnt_bodyid[j]]) in fixture_roots
        ]
        self._fixture_sites = [
            m.site(s).name
            for s in range(m.nsite)
            if m.site(s).name and int(m.body_rootid[m.site_bodyid[s]]) in fixture_roots
        ]

    def step(self, action):
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(7), -1.0, 1.0)
        m, d = self.model, self.data
        pos = d.site_xpos[self._eef].copy()
        mat = d.site_xmat[self._eef].reshape(3, 3).copy()
        target_pos = np.clip(pos + a[:3] * POS_SCALE, WORKSPACE_LO, WORKSPACE_HI)
        target_mat = rotvec_to_mat(a[3:6] * ROT_SCALE) @ mat
        d.ctrl[:7] = self.ik.solve(d.qpos, target_pos, target_mat)
        d.ctrl[7] = GRIPPER_OPEN * (1.0 - a[6]) / 2.0
        mujoco.mj_step(m, d, nstep=self.n_substeps)
        success = bool(self.predicate(d))
        return self._observation(), float(success), success, False, {"success": success}

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return self._render_rgb("agentview")

    def close(self):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # ----------------------------------------------------------- observation
    def _get_renderer(self) -> mujoco.Renderer:
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, self.image_size[0], self.image_size[1])
            _track_renderer(self)
        return self._renderer

    def _render_rgb(self, camera: str) -> np.ndarray:
        r = self._get_renderer()
        r.update_scene(self.data, camera=camera)
        return r.render()

    def _render_depth(self, camera: str) -> np.ndarray:
        r = self._get_renderer()
        r.enable_depth_rendering()
        try:
            r.update_scene(self.data, camera=camera)
            return r.render().astype(np.float32)
        finally:
            r.disable_depth_rendering()

    @property
    def observation_contract(self) -> ObservationContract:
        """MuJoCo's Python renderer delivers row 0 at the top of the view
        (checked in tests/sims/test_orientation.py)."""
        return ObservationContract(
            cameras=self.cameras,
            image_size=self.image_size,
            image_origin="top_left",
            depth=self.depth and bool(self.cameras),
        )

    def camera_params(self, camera: str) -> dict[str, np.ndarray]:
        """Pinhole intrinsics and world-from-camera extrinsics (OpenCV axes) for the current state."""
        h, w = self.image_size
        cid = self.model.camera(camera).id
        f = 0.5 * h / math.tan(math.radians(self.model.cam_fovy[cid]) / 2.0)
        intr = np.array([[f, 0.0, w / 2.0], [0.0, f, h / 2.0], [0.0, 0.0, 1.0]], dtype=np.float32)
        extr = np.eye(4, dtype=np.float32)
        extr[:3, :3] = self.data.cam_xmat[cid].reshape(3, 3) @ np.diag([1.0, -1.0, -1.0])
        extr[:3, 3] = self.data.cam_xpos[cid]
        return {"intrinsics": intr, "extrinsics": extr}

    def _state(self) -> dict[str, np.ndarray]:
        d = self.data
        quat = mat_to_quat(d.site_xmat[self._eef])
        return {
            "eef_pos": d.site_xpos[self._eef].astype(np.float32),
            "eef_quat": quat.astype(np.float32),
            "gripper_qpos": d.qpos[self._finger_qadr].astype(np.float32),
            "joint_pos": d.qpos[self._arm_qadr].astype(np.float32),
        }

    def _start_frames(self, episode_seed: int) -> None:
        """Image noise is keyed by (episode, observation index, camera), not drawn from one stream,
        so a frame's noise does not depend on which earlier frames were rendered."""
        self._noise_seed = int(episode_seed)
        self._obs_index = -1

    def _observation(self) -> dict[str, Any]:
        self._obs_index += 1
        obs: dict[str, Any] = {"state": self._state(), "instruction": self.instruction}
        obs.update(self._step_views())
        return obs

    def _render_views(self, cameras: tuple[str, ...]) -> dict[str, Any]:
        images = {}
        for cam in cameras:
            img = self._render_rgb(cam)
            if self._noise_std > 0:
                rng = np.random.default_rng([self._noise_seed, 2, self._obs_index, self.cameras.index(cam)])
                noisy = img.astype(np.float32) + rng.normal(0.0, self._noise_std, img.shape)
                img = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
            images[cam] = img
        out: dict[str, Any] = {"images": images}
        if self.depth:
            out["depth"] = {cam: self._render_depth(cam) for cam in cameras}
            out["camera_params"] = {cam: self.camera_params(cam) for cam in cameras}
        return out

    # ---------------------------------------------------------- privileged
    def privileged_state(self) -> dict[str, Any]:
        """Simulator ground truth for scripted experts: poses, fixture sites and joints, the task.

        Keys: ``task`` (the success predicate as a dict of strings/numbers), ``task_type``,
        ``<object>_pos`` / ``_quat`` (wxyz) / ``_size`` for every object (distractors too),
        ``<fixture>_pos`` / ``_quat``, ``<site>_pos`` for named fixture sites,
        ``<joint>_qpos`` / ``_axis`` (world) for fixture joints, ``eef_pos``, ``eef_mat``.
        """
        m, d = self.model, self.data
        out: dict[str, Any] = {"task": self.scene.success.model_dump(), "task_type": self.scene.success.type}
        for obj in self.scene.objects:
            bid = m.body(obj.name).id
            out[f"{obj.name}_pos"] = d.xpos[bid].copy()
            out[f"{obj.name}_quat"] = d.xquat[bid].copy()
            out[f"{obj.name}_size"] = np.array(obj.size, dtype=float)
        for fx in self.scene.fixtures:
            bid = m.body(fx.name).id
            out[f"{fx.name}_pos"] = d.xpos[bid].copy()
            out[f"{fx.name}_quat"] = d.xquat[bid].copy()
        for site in self._fixture_sites:
            out[f"{site}_pos"] = d.site(site).xpos.copy()
        for joint in self._fixture_joints:
            jid = m.joint(joint).id
            out[f"{joint}_qpos"] = d.qpos[m.jnt_qposadr[jid] : m.jnt_qposadr[jid] + 1].copy()
            out[f"{joint}_axis"] = d.xaxis[jid].copy()
        out["eef_pos"] = d.site_xpos[self._eef].copy()
        out["eef_mat"] = d.site_xmat[self._eef].reshape(3, 3).copy()
        return out
