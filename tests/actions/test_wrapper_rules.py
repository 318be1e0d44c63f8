"""SimplerEnv's wrapper rules against the wrappers' own formulas.

Each ``upstream_*`` function below is a line-by-line transcription of the post-processing in a SimplerEnv wrapper
(simpler-env/SimplerEnv @ 4ab7178 ``simpler_env/policies/rt1/rt1_model.py`` ``step`` L163-230 and
``octo/octo_model.py`` ``step`` L172-242; the OpenVLA wrapper @ e4545d2 ``openvla/openvla_model.py`` ``step``
L102-145 is the same as Octo's after the model call), using transforms3d's ``euler2axangle`` as they do, with the
TensorFlow calls replaced by their numpy equivalents. The rules must agree with them on hand-made raw outputs, and
a few values are also written out by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from transforms3d.euler import euler2axangle

from vla_eval.actions.space import PolicyOutputError
from vla_eval.actions.wrapper_rules import (
    ACTION_RULES,
    euler2axangle_sxyz,
    make_rule,
)


# ----------------------------------------------------------------------------- upstream transcriptions
def upstream_rt1(raw: np.ndarray, policy_setup: str) -> tuple[np.ndarray, bool]:
    a = {
        "world_vector": raw[:3].copy(),
        "rotation_delta": raw[3:6].copy(),
        "gripper_closedness_action": raw[6:7].copy(),
        "terminate_episode": raw[7:8].copy(),
    }
    if policy_setup == "google_robot":  # _small_action_filter_google_robot(arm_movement=False, gripper=True)
        g = a["gripper_closedness_action"]
        a["gripper_closedness_action"] = np.where(np.abs(g) < 1e-2, np.zeros_like(g), g)
        rotation_mode, invert = "axis_angle", False
    else:  # _unnormalize_action_widowx_bridge
        def rescale(x, low, high, post_min, post_max):
            r = (x - low) / (high - low) * (post_max - post_min) + post_min
            return np.clip(r, post_min, post_max)

        a["world_vector"] = rescale(a["world_vector"], -1.75, 1.75, -0.05, 0.05)
        a["rotation_delta"] = rescale(a["rotation_delta"], -1.4, 1.4, -0.25, 0.25)
        rotation_mode, invert = "rpy", True
    out = {"world_vector": np.asarray(a["world_vector"], dtype=np.float64) * 1.0}
    if rotation_mode == "axis_angle":
        d = np.asarray(a["rotation_delta"], dtype=np.float64)
        angle = np.linalg.norm(d)
        ax = d / angle if angle > 1e-6 else np.array([0.0, 1.0, 0.0])
        out["rot_axangle"] = ax * angle * 1.0
    else:
        roll, pitch, yaw = np.asarray(a["rotation_delta"], dtype=np.float64)
        ax, angle = euler2axangle(roll, pitch, yaw)
        out["rot_axangle"] = ax * angle * 1.0
    g = a["gripper_closedness_action"]
    if invert:
        g = -g
    if policy_setup == "google_robot":
        out["gripper"] = np.asarray(g, dtype=np.float64)
    else:
        out["gripper"] = 2.0 * (np.asarray(g, dtype=np.float64) > 0.0) - 1.0
    terminated = bool(a["terminate_episode"][0] > 0)  # maniskill2_evaluator.py L114
    return np.concatenate([out["world_vector"], out["rot_axangle"], out["gripper"]]), terminated


class UpstreamOctoLike:
    """``octo_model.py`` / ``openvla_model.py``: the state and the step after the model call."""

    def __init__(self, policy_setup: str):
        self.policy_setup = policy_setup
        self.sticky_gripper_num_repeat = 15 if policy_setup == "google_robot" else 1
        self.sticky_action_is_on = False
        self.gripper_action_repeat = 0
        self.sticky_gripper_action = 0.0
        self.previous_gripper_action = None

    def step(self, raw7: np.ndarray) -> np.ndarray:
        raw_action = {
            "world_vector": np.array(raw7[:3]),
            "rotation_delta": np.array(raw7[3:6]),
            "open_gripper": np.array(raw7[6:7]),
        }
        action = {"world_vector": raw_action["world_vector"] * 1.0}
        roll, pitch, yaw = np.asarray(raw_action["rotation_delta"], dtype=np.float64)
        ax, angle = euler2axangle(roll, pitch, yaw)
        action["rot_axangle"] = ax * angle * 1.0
        if self.policy_setup == "google_robot":
            current_gripper_action = raw_action["open_gripper"]
            if self.previous_gripper_action is None:
                relative_gripper_action = np.array([0])
            else:
                relative_gripper_action = self.previous_gripper_action - current_gripper_action
            self.previous_gripper_action = current_gripper_action
            if np.abs(relative_gripper_action) > 0.5 and self.sticky_action_is_on is False:
                self.sticky_action_is_on = True
                self.sticky_gripper_action = relative_gripper_action
            if self.sticky_action_is_on:
                self.gripper_action_repeat += 1
                relative_gripper_action = self.sticky_gripper_action
            if self.gripper_action_repeat == self.sticky_gripper_num_repeat:
                self.sticky_action_is_on = False
                self.gripper_action_repeat = 0
                self.sticky_gripper_action = 0.0
            action["gripper"] = relative_gripper_action
        else:
            action["gripper"] = 2.0 * (raw_action["open_gripper"] > 0.5) - 1.0
        return np.concatenate(
            [action["world_vector"], action["rot_axangle"], np.asarray(action["gripper"], dtype=np.float64).reshape(1)]
        )


class Env:
    def __init__(self, policy_setup):
        self.policy_setup = policy_setup

    @property
    def unwrapped(self):
        return self


def _raw8(rng):
    raw = np.concatenate([rng.uniform(-2.5, 2.5, 3), rng.uniform(-2.0, 2.0, 3), rng.uniform(-1, 1, 1), [0.0]])
    raw[7] = rng.choice([-1.0, 0.0, 1.0])
    return raw


# ----------------------------------------------------------------------------- tests
def test_euler2axangle_is_transforms3d_including_angles_past_pi_and_identity():
    rng = np.random.default_rng(0)
    cases = [*rng.uniform(-np.pi, np.pi, (200, 3)), (0.0, 0.0, 0.0), (1e-12, 0, 0), (np.pi, 0.3, -0.2), (3.0, 2.5, 3)]
    for r, p, y in cases:
        ax, angle = euler2axangle(r, p, y)
        np.testing.assert_allclose(euler2axangle_sxyz(r, p, y), ax * angle, atol=1e-12)


@pytest.mark.parametrize("setup", ["google_robot", "widowx_bridge"])
def test_rt1_rule_is_the_rt1_wrapper(setup):
    rng = np.random.default_rng(1)
    rule = make_rule("simpler_rt1", Env(setup))
    raws = [_raw8(rng) for _ in range(300)]
    raws += [np.array([0.1, 0, 0, 1e-7, 0, 0, 0.005, 0]), np.array([0, 0, 0, 0, 0, 0, -0.009, 1.0])]
    for raw in raws:
        out = rule.apply(raw)
        want, terminated = upstream_rt1(raw, setup)
        np.testing.assert_allclose(out.action, want, atol=1e-12)
        assert out.terminate == terminated


def test_rt1_by_hand():
    google = make_rule("simpler_rt1_google")
    out = google.apply(np.array([0.01, -0.02, 0.03, 0.0, 0.0, 5e-7, 0.009, 0.0]))
    # closedness below 0.01 becomes 0; a rotation of norm <= 1e-6 is rebuilt about (0, 1, 0)
    np.testing.assert_allclose(out.action, [0.01, -0.02, 0.03, 0.0, 5e-7, 0.0, 0.0])
    assert not out.terminate
    assert google.apply(np.array([0, 0, 0, 0, 0, 0, 0.5, 1.0])).terminate
    bridge = make_rule("simpler_rt1_bridge")
    out = bridge.apply(np.array([1.75, 0.875, 9.0, 0.0, 0.0, 0.0, 0.3, 0.0]))
    # +-1.75 -> +-0.05 m, clipped; closedness 0.3 (closing) -> WidowX -1 (closed)
    np.testing.assert_allclose(out.action, [0.05, 0.025, 0.05, 0.0, 0.0, 0.0, -1.0])
    out = bridge.apply(np.array([0, 0, 0, 0.0, 0.0, 1.4, -0.3, 0.0]))
    np.testing.assert_allclose(out.action, [0, 0, 0, 0.0, 0.0, 0.25, 1.0])  # yaw 1.4 -> 0.25 rad about z


@pytest.mark.parametrize("family", ["simpler_octo", "simpler_openvla"])
@pytest.mark.parametrize("setup", ["google_robot", "widowx_bridge"])
def test_octo_and_openvla_rules_are_their_wrappers_over_an_episode(family, setup):
    rng = np.random.default_rng(2)
    rule, upstream = make_rule(family, Env(setup)), UpstreamOctoLike(setup)
    # an open/close pattern that toggles inside and outside the 15-step sticky window
    opens = [1, 1, 0.9, 0.1, 0.0, 0.2, 0.95, 1, 0.4, 0.6, 0.0] + [0.0] * 20 + [1.0] * 5 + list(rng.uniform(0, 1, 40))
    for g in opens:
        raw = np.concatenate([rng.uniform(-0.05, 0.05, 3), rng.uniform(-0.3, 0.3, 3), [g]])
        np.testing.assert_allclose(rule.apply(raw).action, upstream.step(raw), atol=1e-12)


def test_google_sticky_gripper_by_hand():
    rule = make_rule("simpler_octo_google")
    grips = [rule.apply(np.array([0, 0, 0, 0, 0, 0, g])).action[6] for g in [1.0, 1.0, 0.0] + [0.0] * 16]
    # first step 0; no change 0; open 1 -> 0: +1 (close) held for 15 steps, then 0 (no change since)
    assert grips == [0.0, 0.0] + [1.0] * 15 + [0.0, 0.0]
    rule.reset()
    assert rule.apply(np.array([0, 0, 0, 0, 0, 0, 0.0])).action[6] == 0.0  # reset forgets the previous value


def test_rule_refuses_the_wrong_raw_layout_and_unknown_names():
    with pytest.raises(PolicyOutputError, match="takes 8 numbers"):
        make_rule("simpler_rt1_google").apply(np.zeros(7))
    with pytest.raises(ValueError, match="known: "):
        make_rule("simpler_rt2")
    with pytest.raises(ValueError, match="policy_setup is None"):
        make_rule("simpler_octo", Env(None))
    assert {"simpler_rt1", "simpler_octo", "simpler_openvla"} <= set(ACTION_RULES)
