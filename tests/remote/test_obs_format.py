"""Observation layouts on the wire: what the server decodes from an openpi LIBERO request.

Rotations are checked by what they DO to vectors, with the quaternion rotation formula
written out here (v' = v + 2w(u x v) + 2u x (u x v), q = (w, u)), so a scalar-first /
scalar-last mix-up or a wrong axis cannot pass. Every rotation used has an angle < pi,
where robosuite's ``quat2axisangle`` and scipy's rotation vector agree.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from vla_eval.remote.obs_format import OPENPI_IMAGE, OPENPI_STATE, OPENPI_WRIST, ObsFormat, decode_obs, encode_obs


def rotate_wxyz(q, v):
    w, u = q[0], np.asarray(q[1:], dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    return v + 2 * w * np.cross(u, v) + 2 * np.cross(u, np.cross(u, v))


def quat_about(axis, angle):
    axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    return np.concatenate([[math.cos(angle / 2)], math.sin(angle / 2) * axis])


def _request(state):
    return {
        OPENPI_IMAGE: np.zeros((4, 4, 3), np.uint8),
        OPENPI_WRIST: np.ones((4, 4, 3), np.uint8),
        OPENPI_STATE: np.asarray(state, np.float32),
        "prompt": "open the drawer",
    }


def test_server_decodes_a_hand_written_openpi_state():
    # 90 degrees about +z as an axis-angle (the same in robosuite's and scipy's convention)
    obs = decode_obs(_request([0.1, -0.2, 0.3, 0.0, 0.0, math.pi / 2, 0.04, -0.03]))
    st = obs["state"]
    np.testing.assert_allclose(st["eef_pos"], [0.1, -0.2, 0.3], atol=1e-7)
    np.testing.assert_allclose(st["gripper_qpos"], [0.04, -0.03], atol=1e-7)
    q = st["eef_quat"]  # wxyz
    np.testing.assert_allclose(q, [math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4)], atol=1e-6)
    np.testing.assert_allclose(rotate_wxyz(q, [1, 0, 0]), [0, 1, 0], atol=1e-6)
    assert obs["instruction"] == "open the drawer"
    assert obs["images"]["agentview"].sum() == 0 and obs["images"]["wrist"].sum() == 4 * 4 * 3


@pytest.mark.parametrize(
    "axis,angle", [((1, 0, 0), 0.7), ((0, 1, 0), -1.2), ((0.3, -0.5, 0.8), 2.9), ((1, 1, 0), 0.05)]
)
def test_server_decodes_axis_angle_about_any_axis(axis, angle):
    rotvec = np.asarray(axis, np.float64) / np.linalg.norm(axis) * angle
    q = decode_obs(_request([0, 0, 0, *rotvec, 0, 0]))["state"]["eef_quat"]
    expected = quat_about(axis, angle)
    assert min(np.abs(q - expected).max(), np.abs(q + expected).max()) < 1e-6
    for v in ([1, 0, 0], [0, 1, 0], [0, 0, 1]):
        np.testing.assert_allclose(rotate_wxyz(q, v), rotate_wxyz(expected, v), atol=1e-6)


@pytest.mark.parametrize("axis,angle", [((0, 0, 1), 0.4), ((1, -2, 0.5), 2.0), ((0.2, 0.9, -0.4), 3.0)])
def test_client_encode_then_server_decode_keeps_the_rotation(axis, angle):
    q = quat_about(axis, angle)
    obs = {
        "images": {"agentview": np.zeros((4, 4, 3), np.uint8), "wrist": np.zeros((4, 4, 3), np.uint8)},
        "state": {"eef_pos": np.array([0.5, 0.0, 0.2]), "eef_quat": q, "gripper_qpos": np.array([0.02, -0.02])},
        "instruction": "push it",
    }
    msg = encode_obs(obs, ObsFormat(kind="openpi_libero"))
    assert msg[OPENPI_STATE].dtype == np.float32 and msg[OPENPI_STATE].shape == (8,)
    np.testing.assert_allclose(np.linalg.norm(msg[OPENPI_STATE][3:6]), angle, atol=1e-5)  # angle < pi: |rotvec| = angle
    back = decode_obs(msg)["state"]
    for v in ([1, 0, 0], [0, 1, 0], [0, 0, 1]):
        np.testing.assert_allclose(rotate_wxyz(back["eef_quat"], v), rotate_wxyz(q, v), atol=1e-5)
    np.testing.assert_allclose(back["eef_pos"], [0.5, 0.0, 0.2], atol=1e-6)
    np.testing.assert_allclose(back["gripper_qpos"], [0.02, -0.02], atol=1e-6)


def test_encode_openpi_keys_and_prompt():
    obs = {
        "images": {"agentview": np.full((4, 4, 3), 7, np.uint8), "wrist": np.full((4, 4, 3), 9, np.uint8)},
        "state": {
            "eef_pos": np.zeros(3),
            "eef_quat": np.array([1.0, 0, 0, 0]),
            "gripper_qpos": np.array([0.01, -0.01, 5.0]),
        },
        "instruction": "stack",
    }
    msg = encode_obs(obs, ObsFormat(kind="openpi_libero"))
    assert set(msg) == {OPENPI_IMAGE, OPENPI_WRIST, OPENPI_STATE, "prompt"} and msg["prompt"] == "stack"
    assert msg[OPENPI_IMAGE].max() == 7 and msg[OPENPI_WRIST].max() == 9
    np.testing.assert_allclose(msg[OPENPI_STATE], [0, 0, 0, 0, 0, 0, 0.01, -0.01], atol=1e-7)  # only 2 gripper values
    no_wrist = encode_obs(obs, ObsFormat(kind="openpi_libero", wrist_camera=None))
    assert OPENPI_WRIST not in no_wrist


def test_vla_eval_layout_round_trip_and_depth_opt_in():
    obs = {
        "images": {"agentview": np.full((4, 4, 3), 3, np.uint8)},
        "state": {"eef_pos": np.arange(3.0)},
        "instruction": "lift",
        "depth": {"agentview": np.ones((4, 4), np.float32)},
        "camera_params": {"agentview": {"fovy": 45}},
    }
    msg = encode_obs(obs, ObsFormat())
    assert msg["prompt"] == msg["instruction"] == "lift" and "depth" not in msg and "camera_params" not in msg
    with_depth = encode_obs(obs, ObsFormat(send_depth=True))
    assert with_depth["camera_params"] == {"agentview": {"fovy": 45}} and with_depth["depth"]["agentview"].shape == (
        4,
        4,
    )
    back = decode_obs({**msg, "reset": True})
    assert "reset" not in back and "prompt" not in back and back["instruction"] == "lift"
    np.testing.assert_array_equal(back["state"]["eef_pos"], [0, 1, 2])
    assert decode_obs({"images": {}, "prompt": "only a prompt"})["instruction"] == "only a prompt"


def test_openpi_request_without_state_decodes_a_zero_state():
    obs = decode_obs({OPENPI_IMAGE: np.zeros((2, 2, 3), np.uint8), "prompt": "x"}, image_camera="front")
    assert list(obs["images"]) == ["front"]
    np.testing.assert_array_equal(obs["state"]["eef_quat"], [1, 0, 0, 0])  # identity, scalar first
    np.testing.assert_array_equal(obs["state"]["eef_pos"], [0, 0, 0])
    short = decode_obs({OPENPI_IMAGE: np.zeros((2, 2, 3), np.uint8), OPENPI_STATE: np.zeros(5, np.float32)})
    assert "state" not in short  # fewer than 6 values carry no pose


def test_vla_eval_layout_carries_images_and_defaults():
    img = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    msg = encode_obs({"images": {"agentview": img}, "state": {}}, ObsFormat())
    np.testing.assert_array_equal(msg["images"]["agentview"], img)
    assert msg["instruction"] == "" and msg["prompt"] == "" and msg["state"] == {}
    assert encode_obs({}, ObsFormat())["images"] == {}
    back = decode_obs({"images": {"agentview": img}, "instruction": "lift it", "prompt": "other"})
    assert back["instruction"] == "lift it"  # the vla_eval layout's own field wins over prompt
    assert decode_obs({OPENPI_IMAGE: img})["instruction"] == ""


def test_openpi_state_shapes():
    obs = {
        "images": {"agentview": np.zeros((2, 2, 3), np.uint8)},
        "state": {"eef_pos": [[0.1, 0.2, 0.3]], "eef_quat": [1.0, 0, 0, 0], "gripper_qpos": [[0.01], [-0.02]]},
    }
    msg = encode_obs(obs, ObsFormat(kind="openpi_libero", wrist_camera=None))
    np.testing.assert_allclose(msg[OPENPI_STATE], [0.1, 0.2, 0.3, 0, 0, 0, 0.01, -0.02], atol=1e-7)
    st = decode_obs(_request([[1, 2, 3, 0, 0, 0, 0.5, 0.6, 9.0]]))["state"]  # 2-D and a ninth value
    np.testing.assert_allclose(st["eef_pos"], [1, 2, 3])
    np.testing.assert_allclose(st["gripper_qpos"], [0.5, 0.6])
    assert st["gripper_qpos"].shape == (2,)
