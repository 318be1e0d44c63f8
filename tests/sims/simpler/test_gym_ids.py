"""Every SimplerEnv task has a gymnasium id per engine, and the engine ids hand over SimplerEnv's full frame."""

from __future__ import annotations

import gymnasium as gym
import pytest

import vla_eval.sims.simpler as simpler
from vla_eval.backends import get_backend


def test_every_task_has_an_id_for_each_engine():
    ids = set(simpler.register_envs())
    port = get_backend("simpler_real").task_names()
    engine = get_backend("simpler_sapien").task_names()
    assert {simpler.engine_env_id(t, "Real") for t in port} <= ids
    assert {simpler.engine_env_id(t, "Sapien") for t in engine} <= ids
    assert {i for i in ids if i.endswith("-Sapien-v0")} == {simpler.engine_env_id(t, "Sapien") for t in engine}
    assert simpler.engine_env_id("google_pick_coke_can_standing", "Sapien") == (
        "vla_eval/SimplerGooglePickCokeCanStanding-Sapien-v0"
    )
    assert gym.spec("vla_eval/SimplerGooglePickCokeCanStanding-Real-v0").max_episode_steps == 80


@pytest.mark.slow
def test_port_id_makes_the_env_with_the_native_frame(simpler_assets, monkeypatch, tmp_path):
    monkeypatch.setenv("VLA_EVAL_CACHE", str(tmp_path / "cache"))
    env = gym.make("vla_eval/SimplerBridgePutCarrotOnPlate-Real-v0", disable_env_checker=True)
    try:
        obs, _ = env.reset(seed=0, options={"config_id": 0})
        assert obs["images"]["agentview"].shape == (480, 640, 3)  # SimplerEnv's 3rd_view_camera, not squashed
    finally:
        env.close()
