"""Bridge proof on the real env: the expert's 3D waypoints, projected into the agentview image and
written exactly as VLA-R1 would (``<output>[[x, y], ...]</output>``, normalised), go through the
VLA-R1 parser and the planner bridge (depth lift + waypoint follower) and must solve pick-and-place."""

from __future__ import annotations

import numpy as np
import pytest

from vla_eval.policies.planner_bridge import CameraModel
from vla_eval.policies.vla_r1 import ImagePlannerPolicy, PlannerSettings

EPISODES = 10


@pytest.mark.slow
def test_projected_expert_path_through_parser_and_bridge_solves_pick_place():
    env_mod = pytest.importorskip("vla_eval.sims.tabletop.env")
    env = env_mod.TabletopEnv(scene="pick_place_cube", cameras=("agentview",), image_size=(128, 128), depth=True)
    successes = 0
    try:
        for ep in range(EPISODES):
            obs, info = env.reset(seed=ep)

            def as_vla_r1(obs_batch, prompts):
                o, p = obs_batch[0], env.privileged_state()
                task = p["task"]
                cam = CameraModel.from_params(o["camera_params"]["agentview"], o["depth"]["agentview"].shape)
                if prompts[0].startswith("PLACE"):
                    sup = p[f"{task['support']}_pos"]
                    pts = np.array([[sup[0], sup[1], sup[2] + p[f"{task['support']}_size"][-1]]])
                else:  # from the gripper to the top of the object, as the expert approaches it
                    obj = p[f"{task['object']}_pos"]
                    pts = np.array([o["state"]["eef_pos"], [obj[0], obj[1], obj[2] + p[f"{task['object']}_size"][-1]]])
                uv, _ = cam.project(pts)
                xy = cam.pixels_to_normalized(uv)
                body = ", ".join(f"[{x:.3f}, {y:.3f}]" for x, y in xy)
                return [f"<think>Move to the object.</think><output>[{body}]</output>"]

            policy = ImagePlannerPolicy(
                PlannerSettings(task_mode="pick_place", place_instruction="PLACE {instruction}"), text_source=as_vla_r1
            )
            policy.reset([obs["instruction"]])
            for _ in range(200):
                chunk = policy.predict([obs])
                assert all(e.get("parse_failure", 0) == 0 for e in chunk.extras)
                obs, _, _, _, info = env.step(chunk.actions[0, 0].astype(np.float32))
                if info.get("success"):
                    break
            successes += bool(info.get("success"))
    finally:
        env.close()
    assert successes / EPISODES >= 0.8, f"bridge proof: {successes}/{EPISODES}"
