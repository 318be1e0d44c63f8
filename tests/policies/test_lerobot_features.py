"""The harness observation -> LeRobot input features (vla_eval/policies/lerobot_features.py), without lerobot.

The defaults must be what LeRobot 0.4.4's LIBERO evaluation feeds a policy; tests/policies/test_lerobot.py checks
them against LeRobot's own pipeline where the lerobot environment is built."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vla_eval.errors import ConfigError
from vla_eval.policies.lerobot_features import (
    FeatureMapping,
    build_inputs,
    check_features,
    image_array,
    state_vector,
)

LIBERO_FEATURES = {
    "observation.images.image": {"type": "VISUAL", "shape": [3, 32, 32]},
    "observation.images.image2": {"type": "VISUAL", "shape": [3, 32, 32]},
    "observation.state": {"type": "STATE", "shape": [8]},
}


def _obs(size=32):
    rng = np.random.default_rng(0)
    return {
        "images": {
            "agentview": rng.integers(0, 255, (size, size, 3), dtype=np.uint8),
            "wrist": rng.integers(0, 255, (size, size, 3), dtype=np.uint8),
        },
        "state": {
            "eef_pos": np.array([0.1, -0.2, 0.9]),
            # w < 0: robosuite's quat2axisangle gives an angle above pi (LeRobot's LiberoProcessorStep copies it)
            "eef_quat": np.array([-0.2, 0.7, 0.1, np.sqrt(1 - 0.04 - 0.49 - 0.01)]),
            "gripper_qpos": np.array([0.03, -0.03]),
            "joint_pos": np.zeros(7),
        },
        "instruction": "put the bowl on the plate",
    }


def test_defaults_fill_lerobot_libero_features():
    cams = check_features(FeatureMapping(), LIBERO_FEATURES, "test")
    assert cams == {"observation.images.image": "agentview", "observation.images.image2": "wrist"}
    inputs = build_inputs(_obs(), FeatureMapping(), cams, LIBERO_FEATURES)
    assert set(inputs) == {"observation.images.image", "observation.images.image2", "observation.state", "task"}
    assert inputs["task"] == "put the bowl on the plate"
    img = inputs["observation.images.image"]
    assert img.shape == (3, 32, 32) and img.dtype == np.float32 and 0.0 <= img.min() and img.max() <= 1.0
    # channels first, /255, no flip: the harness has already converted the image to the declared orientation
    np.testing.assert_allclose(img, _obs()["images"]["agentview"].transpose(2, 0, 1) / 255.0, atol=1e-7)


def test_state_is_eef_pos_robosuite_axis_angle_gripper():
    obs = _obs()
    s = state_vector(obs["state"], FeatureMapping().state)
    assert s.shape == (8,) and s.dtype == np.float32
    w, x, y, z = obs["state"]["eef_quat"]
    angle = 2 * math.acos(w)  # robosuite's, in [0, 2 pi]: above pi here
    assert angle > math.pi
    axis_angle = np.array([x, y, z]) / math.sqrt(1 - w * w) * angle
    expected = np.concatenate([obs["state"]["eef_pos"], axis_angle, [0.03, -0.03]])
    np.testing.assert_allclose(s, expected, rtol=1e-6)


def test_other_state_layouts():
    st = _obs()["state"]
    wxyz = state_vector(st, ("eef_quat_wxyz",))
    xyzw = state_vector(st, ("eef_quat_xyzw",))
    np.testing.assert_allclose(xyzw, np.roll(wxyz, -1))
    assert state_vector(st, ("eef_pos", "joint_pos")).shape == (10,)


def test_a_visual_feature_without_a_camera_names_the_argument():
    feats = {**LIBERO_FEATURES, "observation.images.top": {"type": "VISUAL", "shape": [3, 32, 32]}}
    with pytest.raises(ConfigError, match=r"image feature 'observation.images.top' and no camera fills it; add "):
        check_features(FeatureMapping(), feats, "policy lerobot (path=X)")
    mapping = FeatureMapping(
        cameras={
            "observation.images.top": "agentview",
            "observation.images.image": "agentview",
            "observation.images.image2": "wrist",
        }
    )
    assert check_features(mapping, feats, "t")["observation.images.top"] == "agentview"


def test_cameras_the_policy_does_not_take_are_not_read():
    one_cam = {"observation.images.image": {"type": "VISUAL", "shape": [3, 32, 32]}}
    assert check_features(FeatureMapping(), one_cam, "t") == {"observation.images.image": "agentview"}


def test_state_size_must_match_the_policy():
    feats = {**LIBERO_FEATURES, "observation.state": {"type": "STATE", "shape": [9]}}
    with pytest.raises(ConfigError, match=r"observation.state has shape \[9\] but state=.* builds 8 values"):
        check_features(FeatureMapping(), feats, "t")
    with pytest.raises(ConfigError, match=r"state part 'eef_euler' is unknown"):
        check_features(FeatureMapping(state=("eef_euler",)), LIBERO_FEATURES, "t")


def test_environment_state_has_no_counterpart():
    feats = {**LIBERO_FEATURES, "observation.environment_state": {"type": "ENV", "shape": [10]}}
    with pytest.raises(ConfigError, match=r"'observation.environment_state' \(ENV\) has no harness counterpart"):
        check_features(FeatureMapping(), feats, "t")


def test_resize_to_the_declared_size_or_not():
    obs = _obs(size=48)
    cams = check_features(FeatureMapping(), LIBERO_FEATURES, "t")
    assert build_inputs(obs, FeatureMapping(), cams, LIBERO_FEATURES)["observation.images.image"].shape == (3, 32, 32)
    kept = build_inputs(obs, FeatureMapping(resize="none"), cams, LIBERO_FEATURES)
    assert kept["observation.images.image"].shape == (3, 48, 48)


def test_malformed_images_are_a_policy_error_not_a_crash():
    with pytest.raises(ValueError, match="expected an H x W x 3 uint8 image"):
        image_array(np.zeros((8, 8), np.uint8), None)
    obs = _obs()
    del obs["images"]["wrist"]
    cams = check_features(FeatureMapping(), LIBERO_FEATURES, "t")
    with pytest.raises(ValueError, match=r"reads camera 'wrist', which the observation lacks"):
        build_inputs(obs, FeatureMapping(), cams, LIBERO_FEATURES)


def test_declared_orientation_is_lerobot_libero_rotation():
    """LeRobot's LiberoProcessorStep flips both axes of LIBERO's raw render; the harness does that conversion
    for an adapter declaring libero_rot180, and nothing else touches the image."""
    from vla_eval.policies.lerobot import LeRobotConfig, LeRobotPolicy
    from vla_eval.sims.orientation import conversion

    assert LeRobotPolicy.image_orientation == "libero_rot180" == LeRobotConfig(path="x").image_orientation
    conv = conversion("bottom_left", "libero_rot180")
    raw = np.arange(2 * 3 * 3).reshape(2, 3, 3).astype(np.uint8)
    np.testing.assert_array_equal(conv.image(raw), raw[::-1, ::-1])
    assert LeRobotPolicy.environment == "lerobot" and LeRobotPolicy.slot_aware
    assert LeRobotPolicy.checkpoint_location({"path": "/ckpt"}) == "/ckpt"
