"""SimplerEnv's own environment classes (ManiSkill2_real2sim on SAPIEN 2.2.2), served physics-only over stdin/stdout.

Runs in SimplerEnv's own interpreter, never in vla-eval's (sapien 2.2.2 needs numpy < 2; vla-eval runs numpy 2):
``<engine python> server.py``, started by :class:`vla_eval.sims.simpler.sapien.engine.EngineProcess`. It imports
only the standard library, numpy, SAPIEN, gymnasium < 1 and ManiSkill2_real2sim, plus ``wire.py`` beside it.

Physics only, because SAPIEN 2.2.2's renderer refuses software Vulkan (lavapipe, SwiftShader): the renderer object,
visual shapes, cameras and lights are stubbed out before any env is built, as ``shared/probes/
simpler_sapien_physics_only.py`` measured; PhysX, SimplerEnv's controllers, objects and ``evaluate()`` run unchanged.
The only scene change: a named static box (``scene: {"box": ...}``) may stand in for the scene stage, whose mesh
(``data/hab2_bench_assets/stages/*.glb``) is not in the asset pack.

Requests (see ``wire.py`` for framing): ``make`` {env_id, kwargs, box}, ``reset`` {seed, options}, ``step``
{action}, ``advance`` (to the task's next subtask), ``close``. Every reply to reset/step/advance carries the state
vla-eval needs: robot joint positions by name, the TCP and base poses, every non-static actor's pose, the task's
source/target actor names, ``evaluate()``'s info, the language instruction, whether this is the task's last subtask,
the arm's and gripper's controller targets (what the scripted expert steers) and, where the task has a source object,
SimplerEnv's grasp check on it.
"""

from __future__ import annotations

import os
import sys
import time
import traceback

# Replies go to the real stdout; anything SAPIEN or ManiSkill prints (Python or C level) goes to stderr instead, so
# it cannot corrupt a frame.
_REPLIES = os.fdopen(os.dup(1), "wb")
os.dup2(2, 1)
sys.stdout = sys.stderr

import wire  # noqa: E402 -- after the stdout redirect on purpose: no import may print into the reply stream


def _physics_only():
    """Stub out everything in SAPIEN and ManiSkill2_real2sim that needs a Vulkan device (probe: module docstring)."""
    import mani_skill2_real2sim.envs.sapien_env as se
    import sapien.core as sapien

    class NoRenderer:
        def __init__(self, *a, **k):
            pass

        def set_log_level(self, *a):
            pass

        def create_material(self):
            return type("Material", (), {})()

    sapien.SapienRenderer = NoRenderer
    for name in dir(sapien.ActorBuilder):
        if "visual" in name and name.startswith("add_"):
            setattr(sapien.ActorBuilder, name, lambda self, *a, **k: self)
    sapien.Engine.set_renderer = lambda self, r: None
    se.BaseEnv._setup_cameras = lambda self: None
    se.BaseEnv._setup_lighting = lambda self: None
    se.BaseEnv._register_cameras = lambda self: []
    se.BaseEnv._register_render_cameras = lambda self: []
    import mani_skill2_real2sim.envs.custom_scenes  # noqa: F401  (registers the env ids)
    from mani_skill2_real2sim.envs.custom_scenes.base_env import CustomSceneEnv

    def subclasses(c):
        for k in c.__subclasses__():
            yield k
            yield from subclasses(k)

    for k in subclasses(se.BaseEnv):
        k._setup_lighting = lambda self: None
        k._setup_cameras = lambda self: None

    original_arena = CustomSceneEnv._load_arena_helper

    def arena(self, add_collision=True):
        box = getattr(self, "_vla_eval_box", None)
        if box is None:
            return original_arena(self, add_collision)
        cx, cy, hx, hy, top = box
        builder = self._scene.create_actor_builder()
        builder.add_box_collision(pose=sapien.Pose([cx, cy, top / 2]), half_size=[hx, hy, top / 2])
        self.arena = builder.build_static(name="arena")

    CustomSceneEnv._load_arena_helper = arena
    return sapien, CustomSceneEnv


def _jsonable(x):
    import numpy as np

    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if np.isfinite(x) else None
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if hasattr(x, "p") and hasattr(x, "q"):  # sapien.Pose
        return _pose(x)
    if x is None or isinstance(x, str):
        return x
    return repr(x)


def _pose(p):
    return [float(v) for v in p.p] + [float(v) for v in p.q]


class Server:
    def __init__(self):
        self.sapien, self.scene_env = _physics_only()
        self.env = None
        self._info = {}

    def make(self, env_id, kwargs, box=None):
        import gymnasium as gym

        if self.env is not None:
            self.env.close()
        if box is not None:  # read by the patched _load_arena_helper while the env builds its scene
            self.scene_env._vla_eval_box = tuple(float(v) for v in box)
        else:
            self.scene_env._vla_eval_box = None
        self.env = gym.make(env_id, obs_mode="state", **kwargs)
        u = self.env.unwrapped
        joints = [j.name for j in u.agent.robot.get_active_joints()]
        return {"joints": joints, "tcp_link": u.tcp.name, "max_episode_steps": self.env.spec.max_episode_steps}

    def _state(self, info):
        u = self.env.unwrapped
        robot = u.agent.robot
        names = [j.name for j in robot.get_active_joints()]
        objects = {a.name: _pose(a.pose) for a in u._scene.get_all_actors() if a.type != "static"}
        roles = {}
        for role, attr in (("source", "obj"), ("source", "episode_source_obj"), ("target", "episode_target_obj")):
            actor = getattr(u, attr, None)
            if actor is not None:
                roles[role] = actor.name
        links = {link.name: _pose(link.pose) for link in robot.get_links()}
        # SimplerEnv's own grasp check on the source object (agents/robots/*.py check_grasp, with the robot's default
        # max_angle as put_on_in_scene.py L68 calls it): move near's evaluate() reports none, and the scripted expert
        # needs it to tell a held object from a slipped one
        src = getattr(u, "episode_source_obj", None)
        grasped = {"source_grasped": bool(u.agent.check_grasp(src))} if src is not None else {}
        art = getattr(u, "art_obj", None)  # the drawer tasks' cabinet: its joints pose the port's cabinet
        cabinet = {}
        if art is not None:
            cabinet["cabinet_qpos"] = dict(zip([j.name for j in art.get_active_joints()], map(float, art.get_qpos())))
        return {
            **grasped,
            **cabinet,
            "qpos": dict(zip(names, [float(v) for v in robot.get_qpos()])),
            "tcp": _pose(u.tcp.pose),
            "base": _pose(robot.pose),
            "links": links,
            "objects": objects,
            "roles": roles,
            "info": _jsonable(info),
            "instruction": u.get_language_instruction(),
            "final_subtask": bool(u.is_final_subtask()),
            **self._targets(),
        }

    def _targets(self):
        """The controllers' goals, which the scripted expert steers (a ``*_target_delta_pose`` arm adds each action to
        its previous target pose, not to the measured one): the arm's target EE pose in the robot base frame
        (``pd_ee_pose.py`` ``_target_pose``) and the gripper's target joint positions (``_target_qpos``)."""
        controllers = getattr(self.env.unwrapped.agent.controller, "controllers", {})
        out = {}
        arm = controllers.get("arm")
        if getattr(arm, "_target_pose", None) is not None:
            out["arm_target"] = _pose(arm._target_pose)
        gripper = controllers.get("gripper")
        if getattr(gripper, "_target_qpos", None) is not None:
            out["gripper_target"] = [float(v) for v in gripper._target_qpos]
        return out

    def reset(self, seed=None, options=None):
        _, info = self.env.reset(seed=seed, options=options or {})
        self._info = info
        return self._state(info)

    def advance(self):
        """A policy's terminate on a task with a next subtask (SimplerEnv's evaluator, ``maniskill2_evaluator.py``
        L110-126: ``advance_to_next_subtask()`` when ``is_final_subtask()`` is false)."""
        self.env.unwrapped.advance_to_next_subtask()
        return self._state(self._info)  # the last step's evaluate() info: evaluating again would count its contacts

    def step(self, action):
        import numpy as np

        t = time.perf_counter()
        _, reward, terminated, truncated, info = self.env.step(np.asarray(action, dtype=np.float64))
        self._info = info
        out = self._state(info)
        out.update(
            reward=float(reward), terminated=bool(terminated), truncated=bool(truncated), step_s=time.perf_counter() - t
        )
        return out


def main():
    stdin = sys.stdin.buffer
    server = None
    while True:
        try:
            request = wire.read_frame(stdin)
        except wire.WireError:
            return  # vla-eval closed the pipe: nothing left to serve
        op = request.pop("op", None)
        try:
            if op == "close":
                wire.write_frame(_REPLIES, {"ok": True})
                return
            if server is None:
                server = Server()
            if op == "hello":
                import importlib.metadata as md

                names = ("mani_skill2_real2sim", "sapien", "numpy", "gymnasium")
                reply = {"versions": {d: md.version(d) for d in names}}
            elif op in ("make", "reset", "step", "advance"):
                reply = getattr(server, op)(**request)
            else:
                raise ValueError(f"unknown request {op!r}")
            wire.write_frame(_REPLIES, {"ok": True, **reply})
        except Exception as e:  # noqa: BLE001  (reported to vla-eval, which raises it with this traceback)
            wire.write_frame(
                _REPLIES, {"ok": False, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}
            )


if __name__ == "__main__":
    main()
