"""The observation contract: real observations of every built-in backend pass, each kind of breakage is named.

LIBERO's real observations are checked in tests/sims/libero/test_libero.py (slow; one shared env).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from vla_eval.sims.contract import ContractViolation, ObservationContract, check_observation, contract_of
from vla_eval.sims.simpler.env import SimplerEnv
from vla_eval.sims.tabletop.env import TabletopEnv

HW = (48, 64)


@pytest.fixture(scope="module")
def tabletop_obs():
    env = TabletopEnv("open_drawer", cameras=("agentview", "wrist"), image_size=HW, depth=True)
    obs, _ = env.reset(seed=1)
    obs = env.step(np.array([0.3, 0, -0.2, 0, 0, 0, 1.0], dtype=np.float32))[0]
    yield env, obs
    env.close()


def test_tabletop_declares_and_passes(tabletop_obs):
    env, obs = tabletop_obs
    c = contract_of(env)
    assert c.image_origin == "top_left" and c.depth and c.cameras == ("agentview", "wrist") and c.image_size == HW
    assert check_observation(obs, env) == []


@pytest.mark.parametrize("task", ["google_pick_coke_can_standing", "bridge_put_carrot_on_plate"])
def test_simpler_declares_and_passes(task):
    env = SimplerEnv(task, cameras=("agentview",), image_size=HW, depth=True)
    try:
        obs, _ = env.reset(seed=0)
        assert contract_of(env).image_origin == "top_left"
        assert check_observation(obs, env) == []
        obs = env.step(np.zeros(7, dtype=np.float32))[0]
        assert check_observation(obs, env) == []
    finally:
        env.close()


def test_state_only_tabletop_passes():
    env = TabletopEnv("push_block", cameras=(), image_size=HW)
    try:
        obs, _ = env.reset(seed=0)
        assert "images" not in obs and check_observation(obs, env) == []
    finally:
        env.close()


def _break(obs, how):
    o = copy.deepcopy(obs)
    if how == "camera_key":  # LIBERO's old layout (issue 10, defect 1)
        o["camera"] = o.pop("camera_params")
    elif how == "fy_sign":
        o["camera_params"]["agentview"]["intrinsics"][1, 1] *= -1
    elif how == "image_dtype":
        o["images"]["wrist"] = o["images"]["wrist"].astype(np.float32)
    elif how == "image_shape":
        o["images"]["agentview"] = o["images"]["agentview"][:, :10]
    elif how == "missing_depth":
        del o["depth"]["wrist"]
    elif how == "extrinsics":
        o["camera_params"]["agentview"]["extrinsics"][:3, :3] *= 2
    elif how == "quat":
        o["state"]["eef_quat"] = o["state"]["eef_quat"] * 3
    elif how == "state_field":
        del o["state"]["gripper_qpos"]
    elif how == "instruction":
        o["instruction"] = ""
    return o


@pytest.mark.parametrize(
    "how,words",
    [
        ("camera_key", "'camera_params'"),
        ("fy_sign", "fy"),
        ("image_dtype", "images']['wrist'] is float32"),
        ("image_shape", "expected uint8 (48, 64, 3)"),
        ("missing_depth", "obs['depth'] has no camera 'wrist'"),
        ("extrinsics", "not a proper rotation"),
        ("quat", "unit quaternion"),
        ("state_field", "'gripper_qpos'"),
        ("instruction", "instruction"),
    ],
)
def test_each_breakage_is_named(tabletop_obs, how, words):
    env, obs = tabletop_obs
    problems = check_observation(_break(obs, how), env)
    assert problems and any(words in p for p in problems), problems
    with pytest.raises(ContractViolation) as err:
        check_observation(_break(obs, how), env, raise_on_error=True)
    assert words in str(err.value)


def test_bottom_left_contract_expects_negative_fy(tabletop_obs):
    env, obs = tabletop_obs
    c = ObservationContract(cameras=env.cameras, image_size=HW, image_origin="bottom_left", depth=True)
    problems = check_observation(obs, contract=c)
    assert len(problems) == 2 and all("fy" in p and "bottom_left" in p for p in problems)


def test_env_without_contract_is_reported():
    class Bare:
        pass

    assert "declares no observation_contract" in check_observation({}, Bare())[0]
