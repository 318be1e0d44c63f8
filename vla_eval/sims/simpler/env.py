"""SimplerEnv-style tasks as a gymnasium env, built on the tabletop env's arm, IK and observations.

``SimplerEnv`` subclasses :class:`~vla_eval.sims.tabletop.env.TabletopEnv` and reuses its
observation, rendering, camera-parameter and privileged-state code; what differs is here:

* the scene comes from a :class:`~vla_eval.sims.simpler.tasks.SimplerTask` (composed with
  the tabletop builder, then decorated: family camera, backdrop, table skin, robot colours);
* control rate per family: 3 Hz (Google robot) or 5 Hz (Bridge), i.e. 167 / 100 physics
  substeps of 2 ms per action. The action is the tabletop's 7-D delta EEF pose + gripper in
  [-1, 1] (``a[:3] * 0.05`` m, ``a[3:6] * 0.5`` rad axis-angle, world frame);
* ``gripper_mode``: ``absolute`` (a[6] = -1 open ... +1 closed, as LIBERO) or ``relative``
  (SimplerEnv's Google-robot ``gripper_pd_joint_target_delta_pos``: normalised a[6] in [-1, 1]
  moves a *sticky* gripper target by ``a[6]`` x full stroke, clipped to the stroke, and the
  target persists while a[6] = 0). Default (``None``): relative for the Google family,
  absolute for Bridge, as SimplerEnv's controllers;
* reset places items from the task's configuration grid (``options={"config_id": i}``; without
  it the id is drawn from the seed), sets drawer joints, settles 0.3 s, then records what the
  success rule needs (settled positions);
* ``info["success"]`` comes from the task's rule, evaluated every step and stateful where
  SimplerEnv's is (coke can: lift latch and cumulative lift count; apple: subtask id and
  cumulative drawer contact). ``info`` also carries the rule's sub-statistics (SimplerEnv's
  ``episode_stats``). Each rule and threshold is checked from both sides in
  tests/sims/simpler/test_simpler_rules.py;
* two-subtask tasks (apple into drawer) switch instruction and subtask at step ``switch_step``
  (SimplerEnv's ``force_advance_subtask_time_steps`` = 100) or when :meth:`advance_to_next_subtask`
  is called; ``obs["instruction"]`` carries the current one.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from vla_eval.actions.space import LIBERO_DELTA_EEF
from vla_eval.geometry import quat_to_mat, rotvec_to_mat, yaw_to_quat
from vla_eval.sims.simpler.looks import (
    BG_SIZE,
    CABINET_RGBA,
    FAMILY_VIEW,
    TABLE_SIZE,
    NoDistractor,
    background_image,
    look_at_xyaxes,
    resolve_look,
    robot_rgba,
    split_variants,
    table_image,
)
from vla_eval.sims.simpler.rules import (  # noqa: F401  (re-exported)
    APPLE_DRAWER_OPEN,
    DRAWER_OPEN,
    ON_TOP_XY_MARGIN,  # noqa: F401  (re-exported)
    drawer_evaluate,
    in_drawer_update,
    lift_evaluate,
    near_evaluate,
    on_top,
    touching,
    touching_other,
)
from vla_eval.sims.simpler.tasks import SimplerTask, get_task
from vla_eval.sims.tabletop.builder import build_scene
from vla_eval.sims.tabletop.env import TabletopEnv
from vla_eval.sims.tabletop.perturbations import (
    Language,
    ObjectLayout,
    apply_to_model,
    apply_to_scene,
    noise_std,
    validate_perturbations,
)
from vla_eval.sims.tabletop.scene import JointAtLeast, SceneSpec

POS_SCALE = 0.05
ROT_SCALE = 0.5
GRIPPER_OPEN = 0.04
WORKSPACE_LO = np.array([0.1, -0.6, 0.005])
WORKSPACE_HI = np.array([0.95, 0.6, 0.7])
SETTLE_SUBSTEPS = 150
GRIPPER_MODES = ("absolute", "relative")
DISTRACTOR_AREA = {"x": (0.32, 0.66), "y": (-0.34, 0.34)}
PARK_Z = -2.0
IDENTITY_QUAT = (1.0, 0.0, 0.0, 0.0)
FAMILY_GRIPPER = {"google": "relative", "bridge": "absolute"}


def world_half_extents(shape: str, size, quat) -> np.ndarray:
    """Half extents of the world-axis-aligned bounding box of a primitive at orientation ``quat`` (wxyz)."""
    r = quat_to_mat(quat)
    if shape == "box":
        return np.abs(r) @ np.asarray(size, float)
    if shape == "cylinder":
        rad, hh = size[0], size[1]
        axis = r[:, 2]
        return np.array([abs(axis[i]) * hh + math.sqrt(max(0.0, 1 - axis[i] ** 2)) * rad for i in range(3)])
    return np.full(3, float(size[0]))


def half_z(shape: str, size, quat) -> float:
    """Half extent along world z of a primitive with MuJoCo half-sizes ``size`` at orientation ``quat`` (wxyz)."""
    r = quat_to_mat(quat)
    if shape == "box":
        return float(sum(abs(r[2, i]) * size[i] for i in range(3)))
    if shape == "cylinder":
        c = abs(r[2, 2])
        return float(c * size[1] + math.sqrt(max(0.0, 1 - c * c)) * size[0])
    return float(size[0])


class SimplerEnv(TabletopEnv):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 3}
    native_action_space = LIBERO_DELTA_EEF

    def __init__(
        self,
        task: str | SimplerTask,
        look: str = "visual_matching",
        cameras: tuple[str, ...] | list[str] = ("agentview",),
        image_size: tuple[int, int] = (128, 128),
        depth: bool = False,
        perturbations: list[dict] | None = None,
        render_mode: str | None = None,
        gripper_mode: str | None = None,
    ):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode {render_mode!r} not supported; use None or 'rgb_array'")
        self.task = get_task(task) if isinstance(task, str) else task
        gripper_mode = gripper_mode or FAMILY_GRIPPER[self.task.family]
        if gripper_mode not in GRIPPER_MODES:
            raise ValueError(f"gripper_mode {gripper_mode!r}: expected one of {list(GRIPPER_MODES)}")
        self.render_mode = render_mode
        self.look_name = look
        self.gripper_mode = gripper_mode
        self.variants, rest = split_variants(perturbations)
        self.perturbations = validate_perturbations(rest)
        for p in self.perturbations:
            if isinstance(p, (ObjectLayout, Language)):
                raise ValueError(
                    f"perturbation {p.type!r} is not supported by simpler tasks "
                    "(fixed configuration grids, no paraphrases)"
                )
        self.look = resolve_look(self.task.family, look, self.variants)
        self.no_distractor = any(isinstance(v, NoDistractor) for v in self.variants)
        self.metadata = {**type(self).metadata, "render_fps": self.task.control_hz}

        self.base_scene = SceneSpec(
            name=self.task.name,
            description=self.task.description,
            instruction=self.task.instruction,
            objects=self.task.objects,
            fixtures=self.task.fixtures,
            min_separation=0.0,
            success=JointAtLeast(type="joint_at_least", joint="_simpler_rule_", value=0.0),
        )
        self.scene = apply_to_scene(self.base_scene, self.perturbations)
        self.cameras = tuple(cameras)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.depth = bool(depth)

        built = build_scene(self.scene, self.image_size)
        self.model = mujoco.MjModel.from_xml_string(self._decorate(built.xml))
        self._paint()
        apply_to_model(self.model, self.perturbations)
        self._bind_model(built, self.task.control_hz, "simpler tasks have 'agentview' and 'wrist'")
        m = self.model
        self._geom_cache: dict[str, set[int]] = {}
        self._pads = (m.geom("left_pad").id, m.geom("right_pad").id)
        self._renderer = None
        self._noise_std = noise_std(self.perturbations)
        self._start_frames(0)
        self.instruction = self.task.instruction
        self.rule: dict[str, Any] = dict(self.task.success)
        self.config_id = 0
        self._grip_target = GRIPPER_OPEN
        self._stats: dict[str, Any] = {}
        self._init_xyz: dict[str, np.ndarray] = {}
        self._consecutive_grasp = 0
        self._rule_state: dict[str, Any] = {}
        self._episode_objects: list[str] = []
        self._parked: set[str] = set()
        self._collision = {g: (int(m.geom_contype[g]), int(m.geom_conaffinity[g])) for g in range(m.ngeom)}
        self._robot_geoms = self._geoms_of("link0")
        self._steps = 0

        self.action_space = spaces.Box(-1.0, 1.0, shape=(7,), dtype=np.float32)
        self.observation_space = self._make_observation_space()

    # ------------------------------------------------------------- model
    def _decorate(self, xml: str) -> str:
        """Family camera, backdrop and table skin planes with writable textures."""
        root = ET.fromstring(xml)
        view = FAMILY_VIEW[self.task.family]
        cam = root.find("worldbody/camera[@name='agentview']")
        cam.set("pos", " ".join(map(str, view["camera_pos"])))
        cam.set("xyaxes", look_at_xyaxes(view["camera_pos"], view["camera_target"]))
        cam.set("fovy", str(view["fovy"]))
        asset = root.find("asset")
        if asset is None:
            asset = ET.SubElement(root, "asset")
        (bh, bw), (th, tw) = BG_SIZE, TABLE_SIZE
        ET.SubElement(
            asset,
            "texture",
            name="backdrop_tex",
            type="2d",
            builtin="flat",
            width=str(bw),
            height=str(bh),
            rgb1="0.5 0.5 0.5",
        )
        ET.SubElement(
            asset,
            "texture",
            name="table_tex",
            type="2d",
            builtin="flat",
            width=str(tw),
            height=str(th),
            rgb1="0.5 0.5 0.5",
        )
        ET.SubElement(
            asset,
            "material",
            name="backdrop_mat",
            texture="backdrop_tex",
            texrepeat="1 1",
            texuniform="false",
            emission="0.6",
            specular="0",
            shininess="0",
        )
        ET.SubElement(
            asset,
            "material",
            name="table_mat",
            texture="table_tex",
            texrepeat="1 1",
            texuniform="false",
            specular="0.05",
            shininess="0",
        )
        world = root.find("worldbody")
        spheres = {o.name for o in self.scene.objects if o.shape == "sphere" and o.free}
        for body in world.iter("body"):
            if body.get("name") in spheres:
                for geom in body.findall("geom"):
                    geom.set("condim", "6")  # rolling friction: a released apple / orange must not roll away forever
        w, h = view["backdrop_size"]
        ET.SubElement(
            world,
            "geom",
            name="backdrop",
            type="plane",
            pos=" ".join(map(str, view["backdrop_pos"])),
            xyaxes=view["backdrop_xyaxes"],
            size=f"{w} {h} 0.1",
            material="backdrop_mat",
            contype="0",
            conaffinity="0",
            group="1",
        )
        ET.SubElement(
            world,
            "geom",
            name="table_skin",
            type="plane",
            pos="0.45 0 0.0005",
            size="0.55 0.6 0.1",
            material="table_mat",
            contype="0",
            conaffinity="0",
            group="1",
        )
        return ET.tostring(root, encoding="unicode")

    def _paint(self) -> None:
        m = self.model
        for tex, img in (
            ("backdrop_tex", background_image(self.look["background"])),
            ("table_tex", table_image(self.look["table"])),
        ):
            tid = m.texture(tex).id
            adr, n = int(m.tex_adr[tid]), int(m.tex_height[tid] * m.tex_width[tid] * m.tex_nchannel[tid])
            # MuJoCo's texture row 0 is the bottom of the plane: flip so image row 0 is the top.
            m.tex_data[adr : adr + n] = np.ascontiguousarray(img[::-1]).reshape(-1)
        main, accent = robot_rgba(self.look["robot"])
        arm_root = m.body("link0").id
        for g in range(m.ngeom):
            if int(m.body_rootid[m.geom_bodyid[g]]) == arm_root:
                m.geom_rgba[g] = main if m.geom_rgba[g][:3].mean() > 0.5 else accent
        station = CABINET_RGBA.get(self.look.get("cabinet", "mk_station"))
        if station is not None and "cabinet" in [f.name for f in self.task.fixtures]:
            cab = m.body("cabinet").id
            for g in range(m.ngeom):
                name = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_GEOM, g) or ""
                if int(m.body_rootid[m.geom_bodyid[g]]) == cab and "knob" not in name:
                    m.geom_rgba[g] = station

    # ------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        gym.Env.reset(self, seed=seed)
        episode_seed = int(self.np_random.integers(0, 2**63 - 1))
        layout_rng = np.random.default_rng([episode_seed, 0])
        options = options or {}
        config_id = options.get("config_id")
        self.config_id = int(config_id if config_id is not None else episode_seed % len(self.task.configs))
        cfg = self.task.config(self.config_id)
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        d.qpos[self._arm_qadr] = self._home_qpos[:7]
        d.qpos[self._finger_qadr] = self._home_qpos[7:9]
        d.ctrl[:] = self._home_ctrl
        if self.task.robot_init is not None:
            q = self._start_posture()
            d.qpos[self._arm_qadr] = q
            d.ctrl[:7] = q
        self._grip_target = GRIPPER_OPEN
        self.rule = dict(cfg.success or self.task.success)
        self._park_unused(cfg)
        placed = self._place_config(cfg)
        self._place_distractors(layout_rng, placed)
        for joint, q in cfg.joints.items():
            d.qpos[m.joint(joint).qposadr[0]] = q
        mujoco.mj_forward(m, d)
        mujoco.mj_step(m, d, nstep=SETTLE_SUBSTEPS)
        self._start_frames(episode_seed)
        self.instruction = cfg.instruction or self.task.instruction
        self._init_xyz = {
            o.name: d.xpos[m.body(o.name).id].copy() for o in self.scene.objects if o.name not in self._parked
        }
        self._init_half = {
            o.name: world_half_extents(o.shape, o.size, d.xquat[m.body(o.name).id])
            for o in self.scene.objects
            if o.name not in self._parked
        }
        self._consecutive_grasp = 0
        self._rule_state = {"lifted": False, "n_lift_significant": 0, "has_contact": 0, "subtask": 0}
        self._steps = 0
        success = self._evaluate()
        return self._observation(), {"success": success, "config_id": self.config_id, **self._stats}

    def step(self, action):
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(7), -1.0, 1.0)
        m, d = self.model, self.data
        pos = d.site_xpos[self._eef].copy()
        mat = d.site_xmat[self._eef].reshape(3, 3).copy()
        target_pos = np.clip(pos + a[:3] * POS_SCALE, WORKSPACE_LO, WORKSPACE_HI)
        target_mat = rotvec_to_mat(a[3:6] * ROT_SCALE) @ mat
        d.ctrl[:7] = self.ik.solve(d.qpos, target_pos, target_mat)
        if self.gripper_mode == "absolute":
            self._grip_target = GRIPPER_OPEN * (1.0 - a[6]) / 2.0
        else:
            self._grip_target = float(np.clip(self._grip_target - a[6] * GRIPPER_OPEN, 0.0, GRIPPER_OPEN))
        d.ctrl[7] = self._grip_target
        switch = self.rule.get("switch_step")
        if switch is not None and self._steps >= int(switch):
            self.advance_to_next_subtask()
        mujoco.mj_step(m, d, nstep=self.n_substeps)
        self._steps += 1
        success = self._evaluate()
        return self._observation(), float(success), success, False, {"success": success, **self._stats}

    # ------------------------------------------------------------ subtasks
    def is_final_subtask(self) -> bool:
        return "second_instruction" not in self.rule or self._rule_state.get("subtask", 0) == 1

    def advance_to_next_subtask(self) -> None:
        """Second subtask of a two-stage task (SimplerEnv ``advance_to_next_subtask``): new instruction."""
        if "second_instruction" in self.rule and self._rule_state.get("subtask", 0) == 0:
            self._rule_state["subtask"] = 1
            self.instruction = self.rule["second_instruction"]

    def _start_posture(self) -> np.ndarray:
        """Arm joints putting the gripper (pointing down) at the task's ``robot_init``; solved once, cached."""
        if getattr(self, "_start_q", None) is None:
            scratch = self.data.qpos.copy()
            scratch[self._arm_qadr] = self._home_qpos[:7]
            down = np.diag([1.0, -1.0, -1.0])
            for _ in range(30):
                scratch[self._arm_qadr] = self.ik.solve(scratch, np.asarray(self.task.robot_init, float), down)
            self._start_q = scratch[self._arm_qadr].copy()
        return self._start_q

    # ----------------------------------------------------------- placement
    def _place_config(self, cfg) -> list[tuple[np.ndarray, float]]:
        m, d = self.model, self.data
        placed = []
        items = {o.name: o for o in self.scene.objects}
        for name, pose in cfg.poses.items():
            if name in self._parked:
                continue
            body = m.body(name)
            pos = np.array([pose.xy[0], pose.xy[1], pose.z])
            if body.jntnum[0] > 0:
                adr = m.jnt_qposadr[body.jntadr[0]]
                d.qpos[adr : adr + 3] = pos
                d.qpos[adr + 3 : adr + 7] = pose.quat
            else:
                m.body_pos[body.id] = pos
                m.body_quat[body.id] = pose.quat
            fp = (
                items[name].footprint
                if name in items
                else next(f.radius for f in self.scene.fixtures if f.name == name)
            )
            placed.append((pos[:2], fp))
        return placed

    def _park_unused(self, cfg) -> None:
        """Task objects this configuration does not use (move near: 3 of 8; 2 with ``no_distractor``) go
        2 m below the table with collisions off and gravity compensated, so they touch nothing."""
        m, d = self.model, self.data
        unused = {o.name for o in self.task.objects} - set(cfg.poses)
        if self.no_distractor and self.rule.get("type") == "near":
            unused |= set(self.rule.get("others", []))
        for k, obj in enumerate(self.task.objects):
            body = m.body(obj.name)
            parked = obj.name in unused
            for g in self._geoms_of(obj.name):
                m.geom_contype[g], m.geom_conaffinity[g] = (0, 0) if parked else self._collision[g]
            m.body_gravcomp[body.id] = 1.0 if parked else 0.0
            if parked and body.jntnum[0] > 0:
                adr = m.jnt_qposadr[body.jntadr[0]]
                d.qpos[adr : adr + 3] = [0.3 * k, 0.0, PARK_Z]
                d.qpos[adr + 3 : adr + 7] = IDENTITY_QUAT
        self._parked = unused
        self._episode_objects = [o.name for o in self.task.objects if o.name not in unused]

    def _keepout(self, xy) -> bool:
        if not self.task.keepout or not self.task.fixtures:
            return False
        ref = self.model.body_pos[self.model.body(self.task.fixtures[0].name).id]
        return any(x0 <= xy[0] - ref[0] <= x1 and y0 <= xy[1] - ref[1] <= y1 for x0, x1, y0, y1 in self.task.keepout)

    def _place_distractors(self, rng, placed) -> None:
        m, d = self.model, self.data
        for obj in self.scene.objects[len(self.task.objects) :]:
            xy = None
            for _ in range(200):
                xy = np.array([rng.uniform(*DISTRACTOR_AREA["x"]), rng.uniform(*DISTRACTOR_AREA["y"])])
                if not self._keepout(xy) and all(
                    np.linalg.norm(xy - p) >= fp + obj.footprint + 0.03 for p, fp in placed
                ):
                    break
            placed.append((xy, obj.footprint))
            adr = m.jnt_qposadr[m.body(obj.name).jntadr[0]]
            d.qpos[adr : adr + 3] = [xy[0], xy[1], obj.half_height + 0.001]
            yaw = rng.uniform(-math.pi, math.pi)
            d.qpos[adr + 3 : adr + 7] = yaw_to_quat(yaw)

    # ------------------------------------------------------------- success
    def _contact(self, geoms_a: set[int], geoms_b: set[int]) -> bool:
        for c in self.data.contact[: self.data.ncon]:
            g1, g2 = int(c.geom1), int(c.geom2)
            if (g1 in geoms_a and g2 in geoms_b) or (g2 in geoms_a and g1 in geoms_b):
                return True
        return False

    def _geoms_of(self, body: str) -> set[int]:
        """Geoms of ``body``'s whole subtree (a fixture's drawers included)."""
        if body not in self._geom_cache:
            m, bid = self.model, self.model.body(body).id
            self._geom_cache[body] = {g for g in range(m.ngeom) if int(m.body_rootid[m.geom_bodyid[g]]) == bid}
        return self._geom_cache[body]

    def is_grasped(self, name: str) -> bool:
        geoms = self._geoms_of(name)
        return all(self._contact({pad}, geoms) for pad in self._pads)

    def _touching_other(self, name: str, allowed: set[int]) -> bool:
        """Whether ``name`` has a contact with force > CONTACT_FORCE against any geom outside ``allowed``."""
        return touching_other(self.model, self.data, self._geoms_of(name), allowed)

    def _touching(self, name: str, geoms: set[int]) -> bool:
        return touching(self.model, self.data, self._geoms_of(name), geoms)

    def _evaluate(self) -> bool:
        m, d, rule, st = self.model, self.data, self.rule, self._rule_state
        kind = rule["type"]
        stats: dict[str, Any] = {}
        if kind == "lift":
            # SimplerEnv grasp_single_in_scene.py GraspSingleInSceneEnv.evaluate
            success, stats = lift_evaluate(self, rule["object"])
        elif kind == "near":
            # SimplerEnv move_near_in_scene.py MoveNearInSceneEnv.evaluate
            names = [n for n in self._episode_objects if n in self._init_xyz]
            success, stats = near_evaluate(
                {n: d.xpos[m.body(n).id] for n in names},
                self._init_xyz,
                self._init_half,
                rule["object"],
                rule["target"],
            )
        elif kind in ("drawer_open", "drawer_close"):
            # SimplerEnv open_drawer_in_scene.py OpenDrawerInSceneEnv / CloseDrawerInSceneEnv.evaluate
            success, stats = drawer_evaluate(kind, float(d.qpos[m.joint(rule["joint"]).qposadr[0]]))
        elif kind == "in_drawer":
            # SimplerEnv place_in_closed_drawer_in_scene.py PlaceObjectInClosedDrawerInSceneEnv.evaluate
            q = float(d.qpos[m.joint(rule["joint"]).qposadr[0]])
            floor = {m.geom(f"{rule['drawer']}_drawer_floor").id}
            success, stats = in_drawer_update(st, q, self._touching(rule["object"], floor))
        elif kind == "on_top":
            # SimplerEnv put_on_in_scene.py PutOnInSceneEnv.evaluate
            src, tgt = rule["object"], rule["target"]
            p_src = d.xpos[m.body(src).id]
            p_tgt = d.xpos[m.body(tgt).id].copy()
            if tgt in self.task.fixture_sizes:
                hx, hy, top = self.task.fixture_sizes[tgt]
                p_tgt[2] += top
                tgt_half = np.array([hx, hy, 0.0])
                allowed = self._robot_geoms | self._geoms_of(tgt)
            else:
                tgt_half = self._init_half[tgt]
                allowed = self._robot_geoms | self._geoms_of(tgt)
            on = on_top(p_src, p_tgt, self._init_half[src], tgt_half, float(rule.get("z_offset", 0.02)))
            if rule.get("clear", True):
                on = on and not self._touching_other(src, allowed)
            grasped = self.is_grasped(src)
            stats = {"is_src_obj_grasped": grasped, "src_on_target": on}
            success = on
        else:
            raise ValueError(f"unknown success rule {kind!r}")
        self._stats = {k: (bool(v) if isinstance(v, (bool, np.bool_)) else v) for k, v in stats.items()}
        return bool(success)

    # ----------------------------------------------------------- privileged
    def privileged_state(self) -> dict[str, Any]:
        """The tabletop keys plus ``task`` (this episode's rule), ``<object>_shape``, target sizes
        and ``control_hz``."""
        out = super().privileged_state()
        out["task"] = dict(self.rule)
        out["task_type"] = self.rule["type"]
        out["family"] = self.task.family
        out["control_hz"] = self.task.control_hz
        out["config_id"] = self.config_id
        out["gripper_qpos"] = self.data.qpos[self._finger_qadr].copy()
        for obj in self.scene.objects:
            out[f"{obj.name}_shape"] = obj.shape
        for name, size in self.task.fixture_sizes.items():
            out[f"{name}_size"] = np.array(size, dtype=float)
        for name in self._init_xyz:
            out[f"{name}_init_pos"] = self._init_xyz[name].copy()
        return out
