"""A gymnasium env whose physics, controllers and success rule are SimplerEnv's own, run in SimplerEnv's interpreter.

:class:`SapienSimplerEnv` starts one engine server (:mod:`.engine`) and forwards reset/step to SimplerEnv's
environment class for the task (:mod:`.tasks`). It keeps the observation contract of the MuJoCo real-asset port
(:class:`~vla_eval.sims.simpler.real2sim.scene_env.RealSceneEnv`): ``state`` with the TCP pose in the world frame,
the two finger joints and the arm joints, ``instruction``, and ``images.agentview``. Success is SimplerEnv's
``evaluate()["success"]`` each step; the suite's ``success_rule: final_step`` judges the last one, as SimplerEnv's
evaluator does.

Images: SAPIEN's cameras need a Vulkan device; without one, each frame is the MuJoCo port's scene posed from
SAPIEN's state (robot joints by name, task objects by role, the robot base where the configuration puts it) and
drawn with the port's real-photo overlay. ``image_source`` says which (``"mujoco_posed"``; ``"none"`` when the env
was made without cameras); the physics behind the picture is SAPIEN's either way.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from vla_eval.sims.contract import RenderOnDemand
from vla_eval.sims.simpler.sapien.engine import EngineProcess
from vla_eval.sims.simpler.sapien.tasks import sapien_task


class SapienSimplerEnv(RenderOnDemand, gym.Env):
    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"]}

    def __init__(
        self,
        task: str,
        cameras=("agentview",),
        image_size: tuple[int, int] | None = None,
        urdf_version: str = "",
        render_scale: float = 1.0,
        engine: EngineProcess | None = None,
    ):
        from vla_eval.sims.simpler.real2sim import google_robot, widowx_robot
        from vla_eval.sims.simpler.tasks import get_task

        self.spec_task = sapien_task(task)
        self.task_name = task
        self.task = get_task(task)
        self.robot = google_robot if self.spec_task.robot == "google" else widowx_robot
        self.policy_setup = "google_robot" if self.spec_task.robot == "google" else "widowx_bridge"
        bad = [c for c in cameras if c != "agentview"]
        if bad:
            raise ValueError(f"cameras {bad}: SimplerEnv's visual-matching scene has one camera, 'agentview'")
        self.cameras = tuple(cameras)
        if image_size is None:  # SimplerEnv's full camera frame: overhead_camera 640x512, 3rd_view_camera 640x480
            image_size = (512, 640) if self.spec_task.robot == "google" else (480, 640)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.render_scale = float(render_scale)
        if urdf_version and not self.spec_task.urdf_versions:
            raise ValueError(f"urdf_version {urdf_version!r}: task {task!r} has one robot URDF")
        if urdf_version:
            self.robot.urdf_for(urdf_version)  # rejects a colouring SimplerEnv does not have
        self.urdf_version = urdf_version
        self.image_source = "mujoco_posed" if self.cameras else "none"
        self.native_action_space = self._native_action_space()
        self.engine = engine or EngineProcess()
        kwargs = dict(self.spec_task.kwargs)
        if self.spec_task.urdf_versions:
            kwargs["urdf_version"] = urdf_version
        made = self.engine.request(
            "make",
            env_id=self.spec_task.env_id,
            kwargs=kwargs,
            box=list(self.spec_task.box) if self.spec_task.box else None,
        )
        missing = [j for j in (*self.robot.ARM_JOINTS, *self.robot.FINGER_JOINTS) if j not in made["joints"]]
        if missing:
            raise RuntimeError(f"SimplerEnv's {kwargs['robot']} has no joints {missing}: not the robot vla-eval knows")
        self.tcp_link = made["tcp_link"]
        self._port = None
        self._port_config: int | None = None
        self._init_objects: dict[str, list[float]] = {}
        self._last: dict[str, Any] = {}
        self.config_id = 0
        self.instruction = self.task.instruction
        self.elapsed_steps = 0
        self.action_space = spaces.Box(-1.0, 1.0, shape=(7,), dtype=np.float32)
        h, w = self.image_size

        def box(n, lim):
            return spaces.Box(-lim, lim, shape=(n,), dtype=np.float32)

        obs: dict[str, spaces.Space] = {
            "state": spaces.Dict(
                {
                    "eef_pos": box(3, 3.0),
                    "eef_quat": box(4, 1.0),
                    "gripper_qpos": box(2, 2.0),
                    "joint_pos": box(len(self.robot.ARM_JOINTS), 2 * math.pi),
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

    def _native_action_space(self):
        if self.spec_task.robot == "google":
            from vla_eval.sims.simpler.real2sim.google_env import SIMPLER_GOOGLE_ACTION

            return SIMPLER_GOOGLE_ACTION
        from vla_eval.sims.simpler.real2sim.widowx_env import SIMPLER_WIDOWX_ACTION

        return SIMPLER_WIDOWX_ACTION

    # ------------------------------------------------------------------ gym
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        cid = options.get("config_id")
        self.config_id = int(cid if cid is not None else self.np_random.integers(len(self.task.configs)))
        self.task.config(self.config_id)  # range check, as the port does
        request = {
            "robot_init_options": self.spec_task.robot_init_options_for(self.config_id),
            "obj_init_options": self.spec_task.obj_init_options(self.task_name, self.config_id),
            # SimplerEnv's evaluator builds a new env for every episode (simpler_env/evaluation/
            # maniskill2_evaluator.py L60, reset once at L85); a reused env carries PhysX state from the episodes
            # before (move near 55 succeeded after 50 and failed after 49), so results would depend on which
            # episodes a worker ran first. Rebuilding the scene gives each episode the fresh env's result.
            "reconfigure": True,
        }
        seed = int(seed) if seed is not None else self.config_id
        self._last = self.engine.request("reset", seed=seed, options=request)
        self.instruction = self._last["instruction"]
        self.elapsed_steps = 0
        self._port_config = None  # the port's scene follows on first use (a frame or the privileged state)
        self._init_objects = {role: s_pose[:3] for role, s_pose in self._role_poses().items()}
        info = {
            "success": False,
            "config_id": self.config_id,
            "image_source": self.image_source,
            "simpler_env_id": self.spec_task.env_id,
            **self._last["info"],
        }
        return self._observation(), info

    def step(self, action):
        a = np.asarray(action, dtype=np.float64).reshape(7)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action has non-finite values: {a.tolist()}")
        self._last = self.engine.request("step", action=a.tolist())
        self.elapsed_steps += 1
        self.instruction = self._last["instruction"]
        info = dict(self._last["info"])
        success = bool(info.get("success", False))
        info["success"] = success
        return self._observation(), float(success), success, False, info

    def is_final_subtask(self) -> bool:
        return bool(self._last.get("final_subtask", True))

    def advance_to_next_subtask(self) -> None:
        """SimplerEnv's env moves to its next subtask and instruction (the apple task's "place apple into top
        drawer"), as its evaluator does when a policy terminates before the last subtask."""
        self._last = self.engine.request("advance")
        self.instruction = self._last["instruction"]

    # ---------------------------------------------------------- observation
    def sapien_state(self) -> dict[str, Any]:
        """The engine's last reply: joint positions by name, TCP / base / link / actor poses ([x y z qw qx qy qz])."""
        return self._last

    def _observation(self) -> dict[str, Any]:
        s = self._last
        tcp = np.asarray(s["tcp"], dtype=np.float32)
        q = s["qpos"]
        obs: dict[str, Any] = {
            "state": {
                "eef_pos": tcp[:3],
                "eef_quat": tcp[3:],
                "gripper_qpos": np.array([q[j] for j in self.robot.FINGER_JOINTS], dtype=np.float32),
                "joint_pos": np.array([q[j] for j in self.robot.ARM_JOINTS], dtype=np.float32),
            },
            "instruction": self.instruction,
        }
        obs.update(self._step_views())
        return obs

    def _render_views(self, cameras: tuple[str, ...]) -> dict[str, Any]:
        from vla_eval.sims.simpler.real2sim.overlay import resize_rgb

        h, w = self.image_size
        return {"images": {cam: resize_rgb(self.render_native(), h, w) for cam in cameras}}

    # ------------------------------------------------------------- pictures
    def _port_env(self):
        if self._port is None:
            if self.spec_task.robot == "google":
                from vla_eval.sims.simpler.real2sim.google_env import GoogleRealEnv

                self._port = GoogleRealEnv(
                    self.task_name,
                    cameras=("agentview",),
                    image_size=self.image_size,
                    render_scale=self.render_scale,
                    urdf_version=self.urdf_version,
                )
            else:
                from vla_eval.sims.simpler.real2sim.widowx_env import BridgeRealEnv

                self._port = BridgeRealEnv(
                    self.task_name, cameras=("agentview",), image_size=self.image_size, render_scale=self.render_scale
                )
            self._port.set_render_cameras(())  # its frames are drawn here, from SAPIEN's poses
        return self._port

    def _role_poses(self) -> dict[str, list[float]]:
        """Role (``source`` / ``target``) -> SAPIEN's pose of that actor in the last state."""
        s = self._last
        return {role: s["objects"][actor] for role, actor in s.get("roles", {}).items() if actor in s["objects"]}

    def pose_port(self):
        """The MuJoCo port's scene posed from SAPIEN's last state: joints by name, task objects by role (the port is
        first reset to the episode's configuration: its base pose, photo and parked objects)."""
        import mujoco

        port = self._port_env()
        if self._port_config != self.config_id:
            port.reset(options={"config_id": self.config_id})
            self._port_config = self.config_id
        m, d = port.model, port.data
        s = self._last
        from vla_eval.sims.simpler.real2sim.google_env import STATION_PREFIX

        # the robot's joints by their own names; SimplerEnv's cabinet joints under the port's station prefix
        for prefix, joints in (("", s["qpos"]), (STATION_PREFIX, s.get("cabinet_qpos", {}))):
            for name, value in joints.items():
                jid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, prefix + name)
                if jid >= 0:
                    d.qpos[m.jnt_qposadr[jid]] = value
        roles = {"source": port.rule.get("object"), "target": port.rule.get("target")}
        placed = {}
        for role, actor in s["roles"].items():
            if roles.get(role) is not None and actor in s["objects"]:
                placed[roles[role]] = s["objects"][actor]
        # the other objects of the episode (move near's third one) by model: SimplerEnv's -v0 ids and the port's
        # -v1 ones name the same object once "baked_" and "_v2" are dropped
        by_model = {_model_key(mid): body for body, mid in getattr(port.real, "models", {}).items()}
        for actor, pose in s["objects"].items():
            body = by_model.get(_model_key(actor))
            if body is not None and body not in placed and body in port._episode_objects:
                placed[body] = pose
        for body, pose in placed.items():
            if mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, f"{body}_free") < 0:
                continue
            adr = m.joint(f"{body}_free").qposadr[0]
            d.qpos[adr : adr + 7] = pose
        mujoco.mj_kinematics(m, d)
        return port

    def privileged_state(self) -> dict[str, Any]:
        """The port's privileged-state layout (what ``simpler_scripted`` reads), filled from SAPIEN's state.

        Poses, frames, bounding boxes and grasp points come from the port's scene posed from SAPIEN's joints and
        objects (:meth:`pose_port`); SAPIEN's own controller targets (the arm's target EE pose in the base frame,
        the gripper's target), its ``evaluate()`` info and its objects' poses after its settle replace the port's.
        The expert therefore sees SimplerEnv's state, in the fields it reads on the port."""
        import mujoco

        port = self.pose_port()
        out = port.privileged_state()
        s = self._last
        if "arm_target" in s:
            t = np.asarray(s["arm_target"], dtype=float)
            mat = np.zeros(9)
            mujoco.mju_quat2Mat(mat, t[3:])
            out["ee_target_pos"], out["ee_target_mat"] = t[:3], mat.reshape(3, 3)
        if "gripper_target" in s:
            out["gripper_target"] = float(s["gripper_target"][0])
        info = s.get("info", {})
        out.update({k: v for k, v in info.items() if isinstance(v, (bool, int, float))})
        if "is_src_obj_grasped" not in info:
            # the coke can's evaluate() says is_grasped; move near's says nothing, so the server's own check_grasp on
            # the source stands in (the posed port scene has no contacts to judge a grasp by)
            grasped = info.get("is_grasped", s.get("source_grasped"))
            if grasped is not None:
                out["is_src_obj_grasped"] = bool(grasped)
        bodies = {"source": port.rule.get("object"), "target": port.rule.get("target")}
        for role, pos in self._init_objects.items():
            if bodies.get(role):
                out[f"{bodies[role]}_init_pos"] = np.asarray(pos, dtype=float)
        out["engine"] = "sapien"
        return out

    def render_native(self) -> np.ndarray:
        return self.pose_port().render_native()

    def render(self):
        return self.render_native()

    @property
    def observation_contract(self):
        from vla_eval.sims.contract import STANDARD_STATE, ObservationContract

        return ObservationContract(
            cameras=self.cameras,
            image_size=self.image_size,
            image_origin="top_left",
            state_fields={**STANDARD_STATE, "joint_pos": len(self.robot.ARM_JOINTS)},
        )

    def close(self):
        if self._port is not None:
            self._port.close()
            self._port = None
        self.engine.close()


def _model_key(model_id: str) -> str:
    return model_id.removeprefix("baked_").removesuffix("_v2")
