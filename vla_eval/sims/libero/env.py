"""LIBERO tasks as gymnasium envs that follow the observation contract (docs/architecture.md §4).

Wraps ``libero.libero.envs.env_wrapper.ControlEnv`` (the base of LIBERO's
``OffScreenRenderEnv``; same robot, controller, BDDL scene and success predicate).

Observation (numpy only):

* ``images[cam]`` — ``H x W x 3`` uint8 for each requested camera (``agentview``,
  ``wrist`` = robosuite ``robot0_eye_in_hand``), **exactly as LIBERO renders them**:
  robosuite's OpenGL convention, rows bottom-to-top, i.e. upside down (``img[::-1]`` is
  the upright view). Nothing is flipped here: the env declares ``image_origin="bottom_left"``
  in its :attr:`observation_contract` and the harness (:mod:`vla_eval.sims.orientation`)
  converts to the orientation each policy declares.
  Omitted entirely when no camera is requested (state-only policies pay no rendering).
  With ``set_render_cameras`` only the requested cameras are drawn
  (:class:`~vla_eval.sims.contract.RenderOnDemand`): robosuite's camera sensors are gated,
  not disabled, so their sampling clock (a frame is taken at the first physics substep of
  each control step) runs exactly as in eager rendering and a rendered frame is the one
  LIBERO would have delivered on that step.
* ``state`` — ``eef_pos`` (3, world metres), ``eef_quat`` (4, **w, x, y, z**; robosuite's
  ``robot0_eef_quat`` is x, y, z, w and is reordered here), ``gripper_qpos`` (2, finger
  joint positions, ~±0.04 open, ~0 closed), ``joint_pos`` (7 arm joints, rad).
* ``instruction`` — the task's language (or a paraphrase from the shipped table in a
  paraphrase split).
* with ``depth=True``: ``depth[cam]`` (``H x W`` float32 metres along the optical axis, same
  row order as the image) and ``camera_params[cam]`` = ``{"intrinsics": 3x3, "extrinsics": 4x4}``
  (the key every env uses, :data:`vla_eval.sims.contract.CAMERA_PARAMS_KEY`).
  ``extrinsics`` is the camera-to-world pose in the OpenCV convention (x right, y down,
  z forward). ``intrinsics`` maps camera coordinates to pixel coordinates *of the arrays as
  delivered* (bottom-up rows), so ``fy`` is negative and ``cy = H - H/2``; flip it with the
  image (``K[1,1] *= -1; K[1,2] = H - K[1,2]``) when you flip rows.

Actions: 7-D delta EEF (OSC_POSE, 1.0 = 5 cm / 0.5 rad per step) + gripper in [-1, 1],
-1 = open, +1 = close; no-op ``[0,0,0,0,0,0,-1]``. ``info["success"]`` is LIBERO's own BDDL
goal check (``check_success``) after every step.
"""

from __future__ import annotations

import contextlib
import io
import string
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from vla_eval.actions.space import LIBERO_DELTA_EEF
from vla_eval.geometry import euler_to_quat, quat_mul, quat_normalize
from vla_eval.sims.contract import ObservationContract, RenderOnDemand
from vla_eval.sims.libero.perturbations import make_texture, validate_perturbations
from vla_eval.sims.libero.tasks import CAMERA_MAP, find_task, load_init_states, pro_task

RENDER_QUALITIES = ("reference", "fast")
INSTRUCTION_CHARSET = string.ascii_letters + string.digits + " .,;:'\"!?-_()/&"


class LiberoEnv(RenderOnDemand, gym.Env):
    """One LIBERO task, kept alive across episodes (soft reset + ``set_init_state``)."""

    metadata = {"render_modes": []}
    native_action_space = LIBERO_DELTA_EEF
    late_render_exact = False  # robosuite takes a step's frame at its first substep (see _render_views)

    def __init__(
        self,
        task: str,
        suite: str | None = None,
        cameras: tuple[str, ...] | list[str] = ("agentview", "wrist"),
        image_size: tuple[int, int] = (128, 128),
        depth: bool = False,
        render_quality: str = "reference",
        perturbations: list[dict[str, Any]] | None = None,
        paraphrases: list[str] | None = None,
    ):
        super().__init__()
        pro = [p for p in validate_perturbations(list(perturbations or [])) if p["type"] == "libero_pro"]
        # a LIBERO-PRO split swaps in the variant's own BDDL scene, init states and instruction
        self.task = pro_task(pro[0]["suite"], find_task(task, suite).name) if pro else find_task(task, suite)
        self.cameras = tuple(cameras)
        for cam in self.cameras:
            if cam not in CAMERA_MAP:
                raise ValueError(f"unknown camera {cam!r}, expected one of {list(CAMERA_MAP)}")
        if render_quality not in RENDER_QUALITIES:
            raise ValueError(f"render_quality must be one of {RENDER_QUALITIES}, got {render_quality!r}")
        self.depth = bool(depth) and bool(self.cameras)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.render_quality = render_quality
        self.perturbations = validate_perturbations(list(perturbations or []))
        self._pert = {p["type"]: p for p in self.perturbations if p["type"] != "camera"}
        self._cam_perts = [p for p in self.perturbations if p["type"] == "camera"]
        self.paraphrases = list(paraphrases or [])
        if "paraphrase" in self._pert and not self.paraphrases:
            raise ValueError(f"paraphrase split but no paraphrases for task {self.task.name!r}")
        self._init_states = load_init_states(self.task)
        self._lib_cams = [CAMERA_MAP[c] for c in self.cameras]

        from libero.libero.envs.env_wrapper import ControlEnv

        h, w = self.image_size
        with contextlib.redirect_stdout(io.StringIO()):
            self._env = ControlEnv(
                bddl_file_name=self.task.bddl_file,
                camera_names=self._lib_cams,
                camera_heights=h,
                camera_widths=w,
                camera_depths=self.depth,
                use_camera_obs=bool(self.cameras),
                has_offscreen_renderer=bool(self.cameras),
                hard_reset=False,
                ignore_done=True,
            )
        self._sim = self._env.env.sim
        self._gate_camera_sensors()
        self._setup_model()
        self.instruction = self.task.language
        self._noise_seed, self._obs_index = 0, -1
        self._geom_cache: dict[str, np.ndarray] = {}
        self._fixture_rng: tuple[int, int, Any] | None = (
            None  # (seed, draws done, numpy RNG state) after the last reset
        )
        self._fixture_pending: tuple[int, int] | None = None
        self.observation_space = self._make_obs_space()
        self.action_space = spaces.Box(-1.0, 1.0, shape=(7,), dtype=np.float32)

    # ------------------------------------------------------------------ spaces
    def _make_obs_space(self) -> spaces.Dict:
        h, w = self.image_size
        vec = lambda n: spaces.Box(-np.inf, np.inf, shape=(n,), dtype=np.float64)  # noqa: E731
        d: dict[str, spaces.Space] = {
            "state": spaces.Dict({"eef_pos": vec(3), "eef_quat": vec(4), "gripper_qpos": vec(2), "joint_pos": vec(7)}),
            "instruction": spaces.Text(max_length=512, min_length=1, charset=INSTRUCTION_CHARSET),
        }
        if self.cameras:
            d["images"] = spaces.Dict({c: spaces.Box(0, 255, shape=(h, w, 3), dtype=np.uint8) for c in self.cameras})
        if self.depth:
            d["depth"] = spaces.Dict({c: spaces.Box(0.0, np.inf, shape=(h, w), dtype=np.float32) for c in self.cameras})
            d["camera_params"] = spaces.Dict(
                {
                    c: spaces.Dict(
                        {
                            "intrinsics": spaces.Box(-np.inf, np.inf, shape=(3, 3), dtype=np.float64),
                            "extrinsics": spaces.Box(-np.inf, np.inf, shape=(4, 4), dtype=np.float64),
                        }
                    )
                    for c in self.cameras
                }
            )
        return spaces.Dict(d)

    # ------------------------------------------------------------------ model-level setup
    @property
    def _ctx(self):
        return getattr(self._sim, "_render_context_offscreen", None)

    def _setup_model(self) -> None:
        m = self._sim.model._model
        for p in self._cam_perts:
            cid = self._sim.model.camera_name2id(CAMERA_MAP[p["camera"]])
            m.cam_pos[cid] += np.asarray(p["dpos"])
            q = quat_mul(m.cam_quat[cid], euler_to_quat(np.deg2rad(p["drot_deg"]), "rxyz"))
            m.cam_quat[cid] = quat_normalize(q)
            m.cam_fovy[cid] = float(np.clip(m.cam_fovy[cid] + p["dfovy_deg"], 5.0, 170.0))
        if "lighting" in self._pert:
            p = self._pert["lighting"]
            scale = p["diffuse_scale"] * np.asarray(p["tint"])
            m.light_diffuse[:] = np.clip(m.light_diffuse * scale, 0, None)
            m.light_specular[:] = np.clip(m.light_specular * scale, 0, None)
            m.vis.headlight.diffuse[:] = np.clip(np.asarray(m.vis.headlight.diffuse) * scale, 0, None)
            if p["ambient"] is not None:
                m.vis.headlight.ambient[:] = p["ambient"]
            m.light_pos[:] = m.light_pos + np.asarray(p["dpos"])
        if "table_texture" in self._pert:
            self._retexture_surface(self._pert["table_texture"])
        if self.render_quality == "fast" and self._ctx is not None:
            m.mat_reflectance[:] = 0.0
            m.vis.quality.offsamples = 0
            ctx = self._ctx
            ctx.gl_ctx.make_current()
            ctx.con.free()
            ctx._set_mujoco_context_and_buffers()
        self._sim.forward()

    def surface_texture_id(self) -> int:
        """The texture of the surface objects stand on (the table, or the floor in floor scenes)."""
        import mujoco

        m = self._sim.model._model
        candidates = []
        for g in range(m.ngeom):
            name = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_GEOM, g) or ""
            mat = m.geom_matid[g]
            if mat < 0:
                continue
            tex = int(m.mat_texid[mat][1]) if m.mat_texid.ndim == 2 else int(m.mat_texid[mat])
            if tex < 0:
                continue
            if name == "table_visual" or (name.endswith("_visual") and "table" in name and "leg" not in name):
                candidates.insert(0, tex)
            elif name in ("floor", "floor_visual"):
                candidates.append(tex)
        if not candidates:
            raise RuntimeError(f"no table or floor texture found in task {self.task.name!r}")
        return candidates[0]

    def _retexture_surface(self, p: dict[str, Any]) -> None:
        m = self._sim.model._model
        tex = self.surface_texture_id()
        adr = int(m.tex_adr[tex])
        end = int(m.tex_adr[tex + 1]) if tex + 1 < m.ntex else m.tex_data.shape[0]
        nch = int(m.tex_nchannel[tex])
        width = int(m.tex_width[tex])
        rows = (end - adr) // (width * nch)
        img = make_texture(p["pattern"], p["color_a"], p["color_b"], p["cells"], rows, width, np.random.default_rng(1))
        if nch == 4:
            img = np.concatenate([img, np.full(img.shape[:2] + (1,), 255, np.uint8)], axis=-1)
        m.tex_data[adr:end] = img[..., :nch].reshape(-1)
        if self._ctx is not None:
            import mujoco

            self._ctx.gl_ctx.make_current()
            mujoco.mjr_uploadTexture(m, self._ctx.con, tex)  # robosuite 1.4's upload_texture passes its wrapper

    # ------------------------------------------------------------------ gym API
    @property
    def n_init_states(self) -> int:
        return int(len(self._init_states))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        k = int(options.get("init_state_id", (seed or 0) % self.n_init_states)) % self.n_init_states
        fixture_seed = options.get("fixture_seed")
        if fixture_seed is not None:
            self._seed_fixtures(int(fixture_seed), int(options.get("fixture_draw", k)))
        elif seed is not None:
            self._env.seed(seed)  # LIBERO seeds numpy's global RNG (its placement samplers use it)
        ss = np.random.SeedSequence([0 if seed is None else seed, k])
        pert_rng, noise_seed = np.random.default_rng(ss.spawn(1)[0]), ss.generate_state(1)[0]
        self._noise_seed, self._obs_index = int(noise_seed), -1
        self._make_current()
        with contextlib.redirect_stdout(io.StringIO()):
            self._env.reset()
        if self._fixture_pending is not None:
            self._fixture_rng = (*self._fixture_pending, np.random.get_state())
            self._fixture_pending = None
        # A soft reset keeps the gripper's integrated command (robosuite's PandaGripper.current_action)
        # from the last episode; a hard reset rebuilds it as zeros. Match the hard reset so a reused
        # env gives bit-identical episodes to a fresh one (1 worker == 8 workers).
        for robot in self._env.env.robots:
            robot.gripper.current_action = np.zeros(robot.gripper.dof)
        state = np.array(self._init_states[k], dtype=np.float64, copy=True)
        draws: dict[str, Any] = {}
        if "robot_init" in self._pert or "object_init" in self._pert:
            state, draws = self._perturb_state(state, pert_rng)
        raw = self._env.set_init_state(state)
        self.instruction = self._pick_instruction(seed)
        success = bool(self._env.check_success())
        info = {
            "success": success,
            "init_state_id": k,
            "instruction": self.instruction,
            "render_quality": self.render_quality,
        }
        if fixture_seed is not None:
            info["fixture_seed"] = int(fixture_seed)
        if draws:
            info["perturbation_draws"] = draws
        return self._obs(raw), info

    def _seed_fixtures(self, fixture_seed: int, draw: int) -> None:
        """Put numpy's global RNG where the reference evaluations have it before episode ``draw``'s reset.

        OpenVLA (``experiments/robot/libero/libero_utils.py``, ``get_libero_env``: ``env.seed(0)``)
        and openpi (``examples/libero/main.py``, ``_get_libero_env``: ``env.seed(7)``) seed the env
        once per task and reset it once per episode. The init state fixes every movable object,
        but LIBERO's placement sampler also moves fixtures (cabinets, stoves: model ``body_pos``,
        not part of the state) on every reset, so episode ``i`` gets the layout of the
        ``(i+1)``-th reset after seeding. That is replayed here, so the layout depends only on
        ``(fixture_seed, draw)``, never on worker count or episode order; the RNG state after
        each episode is kept so consecutive episodes cost one draw each.
        """
        cached = self._fixture_rng
        if cached is not None and cached[0] == fixture_seed and cached[1] <= draw:
            np.random.set_state(cached[2])
            done = cached[1]
        else:
            self._env.seed(fixture_seed)
            done = 0
        for _ in range(draw - done):
            self._draw_layout()
        self._fixture_rng = None
        self._fixture_pending = (fixture_seed, draw + 1)

    def _draw_layout(self) -> None:
        """The random part of one LIBERO reset (robosuite ``MujocoEnv.reset`` minus observations and rendering)."""
        from robosuite.utils.errors import RandomizationError  # LIBERO's ControlEnv.reset retries on it too

        e = self._env.env
        while True:
            try:
                e.sim.reset()
                e._reset_internal()
                e.sim.forward()
                return
            except RandomizationError:
                continue

    def _gate_camera_sensors(self) -> None:
        """Wrap each camera's robosuite sensor so it draws only while its camera is requested.

        The observables stay enabled: disabling one resets its sampling clock, which would move
        the substep a later frame is taken at. A skipped sample returns a black placeholder that
        :meth:`_obs` never shows.
        """
        h, w = self.image_size
        for cam, lc in zip(self.cameras, self._lib_cams):
            observable = self._env.env._observables.get(f"{lc}_image")
            if observable is None:
                continue
            blank = np.zeros((h, w, 3), dtype=np.uint8)

            def gated(obs_cache, _draw=observable._sensor, _cam=cam, _blank=blank):
                return _draw(obs_cache) if _cam in self.render_cameras else _blank

            gated.__modality__ = getattr(observable._sensor, "__modality__", "image")
            observable._sensor = gated

    def _make_current(self) -> None:
        # robosuite makes its GL context current only when it is created; with several envs (or any
        # other renderer) in one process, images would be drawn into whichever context is current.
        if self._ctx is not None:
            self._ctx.gl_ctx.make_current()

    def step(self, action):
        self._make_current()
        raw, reward, done, _ = self._env.step(np.asarray(action, dtype=np.float64))
        success = bool(done)  # LIBERO's step returns done = check_success()
        return self._obs(raw), float(reward), success, False, {"success": success}

    def close(self) -> None:
        env = getattr(self, "_env", None)
        if env is not None:
            try:
                env.close()
            except Exception:
                pass
            self._env = None

    # ------------------------------------------------------------------ observations
    def _obs(self, raw: dict[str, Any]) -> dict[str, Any]:
        q = raw["robot0_eef_quat"]
        obs: dict[str, Any] = {
            "state": {
                "eef_pos": np.asarray(raw["robot0_eef_pos"], dtype=np.float64),
                "eef_quat": np.array([q[3], q[0], q[1], q[2]], dtype=np.float64),
                "gripper_qpos": np.asarray(raw["robot0_gripper_qpos"], dtype=np.float64),
                "joint_pos": np.asarray(raw["robot0_joint_pos"], dtype=np.float64),
            },
            "instruction": self.instruction,
        }
        self._obs_index += 1
        cams = self.render_cameras
        if cams:
            obs.update(
                self._views_from(
                    cams,
                    {c: raw[f"{CAMERA_MAP[c]}_image"] for c in cams},
                    {c: raw[f"{CAMERA_MAP[c]}_depth"][..., 0] for c in cams} if self.depth else {},
                )
            )
        return obs

    def _views_from(self, cams: tuple[str, ...], rgb: dict[str, np.ndarray], depth: dict[str, np.ndarray]):
        noise = self._pert.get("image_noise")
        out: dict[str, Any] = {"images": {c: self._add_noise(rgb[c], noise, c) if noise else rgb[c] for c in cams}}
        if self.depth:
            out["depth"] = {c: self._metric_depth(depth[c]) for c in cams}
            out["camera_params"] = {c: self.camera_params(c) for c in cams}
        return out

    def _render_views(self, cameras: tuple[str, ...]) -> dict[str, Any]:
        """The current state drawn now. robosuite samples a step's frame at its first physics substep,
        so a frame drawn after the step shows the arm up to one control step further on; the rollout
        therefore asks for cameras before the step (``set_render_cameras``) and uses this only as a fallback."""
        h, w = self.image_size
        self._make_current()
        rgb, depth = {}, {}
        for c in cameras:
            out = self._sim.render(camera_name=CAMERA_MAP[c], width=w, height=h, depth=self.depth)
            if self.depth:
                rgb[c], depth[c] = out[0], out[1]
            else:
                rgb[c] = out
        return self._views_from(cameras, rgb, depth)

    def _add_noise(self, img: np.ndarray, p: dict[str, Any], cam: str) -> np.ndarray:
        """Noise keyed by (episode, observation index, camera), so skipping frames never shifts it."""
        rng = np.random.default_rng([self._noise_seed, self._obs_index, self.cameras.index(cam)])
        out = img.astype(np.float32)
        if p["std"] > 0:
            out += rng.normal(0.0, p["std"], size=out.shape).astype(np.float32)
        out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
        if p["salt_pepper"] > 0:
            mask = rng.random(out.shape[:2]) < p["salt_pepper"]
            vals = np.where(rng.random(out.shape[:2]) < 0.5, 0, 255).astype(np.uint8)
            out[mask] = vals[mask][:, None]
        return out

    def _metric_depth(self, z: np.ndarray) -> np.ndarray:
        """MuJoCo's normalised z-buffer -> metres (as robosuite's ``get_real_depth_map``)."""
        m = self._sim.model._model
        extent = m.stat.extent
        near, far = m.vis.map.znear * extent, m.vis.map.zfar * extent
        z = np.clip(z.astype(np.float64), 0.0, 1.0)
        return (near / (1.0 - z * (1.0 - near / far))).astype(np.float32)

    @property
    def observation_contract(self) -> ObservationContract:
        """robosuite renders through OpenGL: row 0 is the bottom of the view."""
        return ObservationContract(
            cameras=self.cameras, image_size=self.image_size, image_origin="bottom_left", depth=self.depth
        )

    def camera_params(self, cam: str) -> dict[str, np.ndarray]:
        """Intrinsics for the delivered (bottom-up) arrays and camera-to-world extrinsics (OpenCV axes)."""
        h, w = self.image_size
        m, d = self._sim.model._model, self._sim.data._data
        cid = self._sim.model.camera_name2id(CAMERA_MAP[cam])
        f = 0.5 * h / np.tan(np.deg2rad(m.cam_fovy[cid]) / 2)
        K = np.array([[f, 0.0, w / 2], [0.0, -f, h - h / 2], [0.0, 0.0, 1.0]])
        E = np.eye(4)
        E[:3, :3] = d.cam_xmat[cid].reshape(3, 3) @ np.diag([1.0, -1.0, -1.0])  # MuJoCo (y up, -z view) -> OpenCV
        E[:3, 3] = d.cam_xpos[cid]
        return {"intrinsics": K, "extrinsics": E}

    # ------------------------------------------------------------------ perturbations per episode
    def _perturb_state(self, state: np.ndarray, rng: np.random.Generator):
        import mujoco

        m, d = self._sim.model._model, self._sim.data._data
        qpos = state[1 : 1 + m.nq]  # view into state: [time, qpos, qvel]
        draws: dict[str, Any] = {}
        if "robot_init" in self._pert:
            std = self._pert["robot_init"]["joint_std_rad"]
            robot = self._env.env.robots[0]
            idx = np.asarray(robot._ref_joint_pos_indexes)
            delta = rng.normal(0.0, std, size=len(idx))
            lo, hi = m.jnt_range[robot._ref_joint_indexes].T
            qpos[idx] = np.clip(qpos[idx] + delta, lo + 1e-3, hi - 1e-3)
            draws["robot_joint_delta"] = [round(float(x), 5) for x in delta]
        if "object_init" in self._pert:
            p = self._pert["object_init"]
            names = list(self._env.env.objects_dict) if p["objects"] == "all" else p["objects"]
            shifts = {}
            for name in names:
                obj = self._env.env.objects_dict.get(name)
                if obj is None or not obj.joints:
                    continue
                jid = self._sim.model.joint_name2id(obj.joints[-1])
                if m.jnt_type[jid] != mujoco.mjtJoint.mjJNT_FREE:
                    continue
                adr = m.jnt_qposadr[jid]
                base = qpos[adr : adr + 2].copy()
                for _ in range(20):  # reject shifts that make objects interpenetrate
                    r = p["max_shift_m"] * np.sqrt(rng.random())
                    th = rng.random() * 2 * np.pi
                    dxy = np.array([r * np.cos(th), r * np.sin(th)])
                    qpos[adr : adr + 2] = base + dxy
                    d.qpos[:] = qpos
                    mujoco.mj_forward(m, d)
                    if not self._penetrating():
                        break
                else:
                    dxy = np.zeros(2)
                    qpos[adr : adr + 2] = base
                shifts[name] = [round(float(dxy[0]), 5), round(float(dxy[1]), 5)]
            draws["object_xy_shift"] = shifts
        return state, draws

    def _penetrating(self, tol: float = 0.004) -> bool:
        d = self._sim.data._data
        m = self._sim.model._model
        for i in range(d.ncon):
            c = d.contact[i]
            if c.dist < -tol:
                b1, b2 = m.body_rootid[m.geom_bodyid[c.geom1]], m.body_rootid[m.geom_bodyid[c.geom2]]
                if b1 != b2:
                    return True
        return False

    def _pick_instruction(self, seed: int | None) -> str:
        p = self._pert.get("paraphrase")
        if p is None:
            return self.task.language
        variant = p["variant"]
        if variant == "seeded":
            variant = int(np.random.default_rng([0 if seed is None else seed, 7]).integers(len(self.paraphrases)))
        return self.paraphrases[variant % len(self.paraphrases)]

    # ------------------------------------------------------------------ privileged state (experts only)
    def _object_geoms(self, body_id: int) -> np.ndarray:
        key = str(body_id)
        if key not in self._geom_cache:
            m = self._sim.model._model
            roots = m.body_rootid[m.geom_bodyid]
            collide = (m.geom_contype != 0) | (m.geom_conaffinity != 0)
            self._geom_cache[key] = np.nonzero((roots == body_id) & collide)[0]
        return self._geom_cache[key]

    def _geom_boxes(self, geoms: np.ndarray) -> np.ndarray:
        """World AABBs ``(n, 6)`` = min xyz, max xyz of the given geoms."""
        m, d = self._sim.model._model, self._sim.data._data
        aabb = m.geom_aabb[geoms]  # (n, 6): centre, half-size in the geom frame
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)
        local = aabb[:, None, :3] + signs[None] * aabb[:, None, 3:]
        rot = d.geom_xmat[geoms].reshape(-1, 3, 3)
        world = np.einsum("nij,nkj->nki", rot, local) + d.geom_xpos[geoms][:, None, :]
        return np.concatenate([world.min(axis=1), world.max(axis=1)], axis=1)

    def _bbox(self, body_id: int) -> tuple[np.ndarray, np.ndarray] | None:
        geoms = self._object_geoms(body_id)
        if len(geoms) == 0:
            return None
        boxes = self._geom_boxes(geoms)
        return boxes[:, :3].min(axis=0), boxes[:, 3:].max(axis=0)

    def privileged_state(self) -> dict[str, Any]:
        """Simulator ground truth for scripted experts (never shown to learned policies).

        ``objects`` / ``fixtures``: name -> ``pos`` (3), ``quat`` (w, x, y, z), ``bbox_min`` /
        ``bbox_max`` (world AABB of the collision geoms; fixtures also ``geom_boxes``, one
        ``[min xyz, max xyz]`` row per collision geom, e.g. drawer panels); ``sites``: region name -> ``pos``;
        ``goal``: the BDDL goal, e.g. ``[["on", "akita_black_bowl_1", "plate_1"]]``.
        """
        e = self._env.env
        d = self._sim.data._data
        out: dict[str, Any] = {"objects": {}, "fixtures": {}, "sites": {}}
        for group, table in (("objects", e.objects_dict), ("fixtures", e.fixtures_dict)):
            for name, obj in table.items():
                bid = self._sim.model.body_name2id(obj.root_body)
                entry = {"pos": d.xpos[bid].copy(), "quat": d.xquat[bid].copy()}
                bb = self._bbox(bid)
                if bb is not None:
                    entry["bbox_min"], entry["bbox_max"] = bb
                    if group == "fixtures":
                        entry["geom_boxes"] = self._geom_boxes(self._object_geoms(bid))
                out[group][name] = entry
        for name in e.object_sites_dict:
            try:
                out["sites"][name] = d.site_xpos[self._sim.model.site_name2id(name)].copy()
            except Exception:
                pass
        out["goal"] = [list(g) for g in e.parsed_problem["goal_state"]]
        out["obj_of_interest"] = list(e.obj_of_interest)
        eef_site = e.robots[0].eef_site_id
        out["eef_pos"] = d.site_xpos[eef_site].copy()
        out["gripper_qpos"] = d.qpos[e.robots[0]._ref_gripper_joint_pos_indexes].copy()
        out["task"] = self.task.name
        return out
