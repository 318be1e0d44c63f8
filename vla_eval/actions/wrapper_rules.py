"""What SimplerEnv's model wrappers do to a model's raw output before the env sees it, as per-episode rules.

SimplerEnv's published numbers come from its wrappers (``simpler_env/policies/rt1/rt1_model.py``,
``octo/octo_model.py``, ``openvla/openvla_model.py``), and each one turns the model's raw action into the env's
action with a rule of its own: a gripper that is rescaled, inverted, binarised, or turned into a *relative*
command held for 15 steps; rotations given as roll-pitch-yaw and turned into axis-angle; a terminate bit that ends
the episode or advances the subtask. A checkpoint served without its rule scores near zero on SimplerEnv, so the
rule is part of the policy's recipe (``execution: {action_rule: NAME}`` in its YAML), applied by the rollout to
each action it is about to execute: *after* temporal ensembling, as Octo's wrapper binarises the gripper of the
ensembled action (``octo_model.py`` L168-176 then L234-237), and with state kept per episode (the sticky gripper
and the previous gripper value reset with the episode, ``octo_model.py`` ``reset`` L116-128).

Sources: simpler-env/SimplerEnv @ 4ab7178 for RT-1, Octo and the evaluator
(``simpler_env/evaluation/maniskill2_evaluator.py``); OpenVLA's wrapper @ e4545d2 (the merged OpenVLA pull
request), ``simpler_env/policies/openvla/openvla_model.py``. Line numbers below are of those files.

Raw layouts (what the served model returns, one row per step of a chunk):

* RT-1 / RT-1-X, 8 numbers: ``world_vector`` (3), ``rotation_delta`` (3), ``gripper_closedness_action`` (1, +1
  closes), ``terminate_episode[0]`` (1; the evaluator ends the episode when it is > 0, L114).
* Octo and OpenVLA, 7 numbers: ``world_vector`` (3), ``rotation_delta`` as roll, pitch, yaw (3),
  ``open_gripper`` (1, in [0, 1], 1 = open), already un-normalised with the dataset statistics (Octo L164;
  OpenVLA ``predict_action(..., unnorm_key=...)`` L99).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from vla_eval.actions.space import ActionSpace, PolicyOutputError

GOOGLE_ENV_ACTION = ActionSpace(
    kind="delta_eef", rotation="axis_angle", position_units="meters", gripper="close_positive"
)
"""What the Google-robot wrappers hand the env: metres, axis-angle radians, a relative gripper command (+1 closes)."""
WIDOWX_ENV_ACTION = ActionSpace(
    kind="delta_eef", rotation="axis_angle", position_units="meters", gripper="open_positive"
)
"""What the WidowX wrappers hand the env: metres, axis-angle radians, gripper +1 open / -1 closed."""

STICKY_GRIPPER_REPEAT = 15
"""Google robot: a gripper change is held for 15 steps (``octo_model.py`` L40, ``openvla_model.py`` L30)."""


def euler2axangle_sxyz(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """transforms3d's ``euler2axangle(roll, pitch, yaw)`` (axes ``sxyz``) times its angle, as the wrappers use it
    (``rt1_model.py`` L204-205, ``octo_model.py`` L182-185): ``euler2quat`` then ``quat2axangle``, whose angle is
    ``2 acos(w)`` in [0, 2 pi] and whose identity threshold returns a zero rotation."""
    hi, hj, hk = roll / 2.0, pitch / 2.0, yaw / 2.0
    ci, si, cj, sj, ck, sk = math.cos(hi), math.sin(hi), math.cos(hj), math.sin(hj), math.cos(hk), math.sin(hk)
    cc, cs, sc, ss = ci * ck, ci * sk, si * ck, si * sk
    w = cj * cc + sj * ss
    x = cj * sc - sj * cs
    y = cj * ss + sj * cc
    z = cj * cs - sj * sc
    norm2 = w * w + x * x + y * y + z * z
    if norm2 < np.finfo(float).eps ** 2:
        return np.zeros(3)
    if norm2 != 1.0:
        s = math.sqrt(norm2)
        w, x, y, z = w / s, x / s, y / s, z / s
    len2 = x * x + y * y + z * z
    if len2 < (3 * np.finfo(float).eps) ** 2:
        return np.zeros(3)
    theta = 2.0 * math.acos(max(min(w, 1.0), -1.0))
    return np.array([x, y, z]) / math.sqrt(len2) * theta


def rescale_with_bound(values: np.ndarray, low: float, high: float, out_low: float, out_high: float) -> np.ndarray:
    """``rt1_model.py`` ``_rescale_action_with_bound`` (L54-69): map [low, high] onto [out_low, out_high], clipped."""
    scaled = (values - low) / (high - low) * (out_high - out_low) + out_low
    return np.clip(scaled, out_low, out_high)


@dataclass(frozen=True)
class RuleOutput:
    action: np.ndarray
    """7 numbers in the rule's :attr:`ActionRule.out_space`."""
    terminate: bool = False
    """The model asked to end the episode (or, before a two-subtask task's last subtask, to advance it)."""


class ActionRule(ABC):
    """One wrapper's post-processing; a fresh instance (or :meth:`reset`) per episode."""

    name: str
    raw_dim: int
    out_space: ActionSpace
    source: str

    def reset(self) -> None:
        """Forget the previous episode (sticky gripper, previous gripper value)."""

    @abstractmethod
    def apply(self, raw: np.ndarray) -> RuleOutput: ...

    def check(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64).reshape(-1)
        if raw.shape[0] != self.raw_dim:
            raise PolicyOutputError(
                f"action rule {self.name} takes {self.raw_dim} numbers per action ({self.layout}), got {raw.shape[0]}"
            )
        return raw

    @property
    def layout(self) -> str:
        return (
            "world_vector(3), rotation_delta(3), gripper_closedness(1), terminate(1)"
            if self.raw_dim == 8
            else "world_vector(3), roll-pitch-yaw(3), open_gripper in [0, 1](1)"
        )

    def describe(self) -> dict:
        return {"name": self.name, "raw_layout": self.layout, "source": self.source}


class Rt1Google(ActionRule):
    """RT-1 on the Google robot: gripper values |g| < 0.01 become 0 (L118-147, applied for google_robot L178-179);
    the rotation is already axis-angle, rebuilt from its norm with the axis (0, 1, 0) at norm <= 1e-6 (L188-196);
    the gripper passes through (L214-216); terminate when ``terminate_episode[0] > 0`` (evaluator L114)."""

    name, raw_dim, out_space = "simpler_rt1_google", 8, GOOGLE_ENV_ACTION
    source = "simpler_env/policies/rt1/rt1_model.py (policy_setup google_robot)"

    def apply(self, raw: np.ndarray) -> RuleOutput:
        raw = self.check(raw)
        rot = raw[3:6]
        angle = float(np.linalg.norm(rot))
        axis = rot / angle if angle > 1e-6 else np.array([0.0, 1.0, 0.0])
        grip = 0.0 if abs(raw[6]) < 1e-2 else raw[6]
        return RuleOutput(np.concatenate([raw[:3], axis * angle, [grip]]), terminate=bool(raw[7] > 0))


class Rt1Bridge(ActionRule):
    """RT-1-X on the WidowX: ``world_vector`` rescaled from [-1.75, 1.75] to [-0.05, 0.05] m and ``rotation_delta``
    from [-1.4, 1.4] to [-0.25, 0.25] rad, clipped (L71-86, applied L180-181); the rotation read as roll-pitch-yaw
    and turned into axis-angle (L197-205); the closedness inverted (WidowX: +1 open, L209-213) and binarised
    (``2 (g > 0) - 1``, L217-221); terminate as on the Google robot."""

    name, raw_dim, out_space = "simpler_rt1_bridge", 8, WIDOWX_ENV_ACTION
    source = "simpler_env/policies/rt1/rt1_model.py (policy_setup widowx_bridge)"

    def apply(self, raw: np.ndarray) -> RuleOutput:
        raw = self.check(raw)
        pos = rescale_with_bound(raw[:3], -1.75, 1.75, -0.05, 0.05)
        rpy = rescale_with_bound(raw[3:6], -1.4, 1.4, -0.25, 0.25)
        grip = 2.0 * float(-raw[6] > 0.0) - 1.0
        return RuleOutput(np.concatenate([pos, euler2axangle_sxyz(*rpy), [grip]]), terminate=bool(raw[7] > 0))


class _OpenGripperRule(ActionRule):
    """Octo and OpenVLA share the arm rule (roll-pitch-yaw -> axis-angle, ``octo_model.py`` L180-185,
    ``openvla_model.py`` L110-115) and never terminate (``terminate_episode = 0``, L240 / L143)."""

    raw_dim = 7

    def arm(self, raw: np.ndarray) -> np.ndarray:
        return np.concatenate([raw[:3], euler2axangle_sxyz(*raw[3:6])])


class StickyRelativeGripper(_OpenGripperRule):
    """Google robot: the command is the previous open value minus the current one (0 on the first step); a change
    larger than 0.5 is held for 15 steps (``octo_model.py`` L187-232, ``openvla_model.py`` L117-138)."""

    out_space = GOOGLE_ENV_ACTION

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.previous: float | None = None
        self.sticky_on = False
        self.repeat = 0
        self.sticky_value = 0.0

    def apply(self, raw: np.ndarray) -> RuleOutput:
        raw = self.check(raw)
        current = float(raw[6])
        relative = 0.0 if self.previous is None else self.previous - current
        self.previous = current
        if abs(relative) > 0.5 and not self.sticky_on:
            self.sticky_on, self.sticky_value = True, relative
        if self.sticky_on:
            self.repeat += 1
            relative = self.sticky_value
        if self.repeat == STICKY_GRIPPER_REPEAT:
            self.sticky_on, self.repeat, self.sticky_value = False, 0, 0.0
        return RuleOutput(np.concatenate([self.arm(raw), [relative]]))


class BinaryOpenGripper(_OpenGripperRule):
    """WidowX: ``2 (open_gripper > 0.5) - 1`` (``octo_model.py`` L234-237, ``openvla_model.py`` L140-141)."""

    out_space = WIDOWX_ENV_ACTION

    def apply(self, raw: np.ndarray) -> RuleOutput:
        raw = self.check(raw)
        return RuleOutput(np.concatenate([self.arm(raw), [2.0 * float(raw[6] > 0.5) - 1.0]]))


class OctoGoogle(StickyRelativeGripper):
    name, source = "simpler_octo_google", "simpler_env/policies/octo/octo_model.py (policy_setup google_robot)"


class OctoBridge(BinaryOpenGripper):
    name, source = "simpler_octo_bridge", "simpler_env/policies/octo/octo_model.py (policy_setup widowx_bridge)"


class OpenVlaGoogle(StickyRelativeGripper):
    name, source = "simpler_openvla_google", "simpler_env/policies/openvla/openvla_model.py (google_robot)"


class OpenVlaBridge(BinaryOpenGripper):
    name, source = "simpler_openvla_bridge", "simpler_env/policies/openvla/openvla_model.py (widowx_bridge)"


_BY_NAME: dict[str, type[ActionRule]] = {
    cls.name: cls for cls in (Rt1Google, Rt1Bridge, OctoGoogle, OctoBridge, OpenVlaGoogle, OpenVlaBridge)
}
FAMILIES: dict[str, dict[str, type[ActionRule]]] = {
    "simpler_rt1": {"google_robot": Rt1Google, "widowx_bridge": Rt1Bridge},
    "simpler_octo": {"google_robot": OctoGoogle, "widowx_bridge": OctoBridge},
    "simpler_openvla": {"google_robot": OpenVlaGoogle, "widowx_bridge": OpenVlaBridge},
}
"""A family name picks the wrapper's ``policy_setup`` from the env (``env.policy_setup``: ``google_robot`` or
``widowx_bridge``), so one preset serves both SimplerEnv robots, as one wrapper class does upstream."""
ACTION_RULES = sorted([*_BY_NAME, *FAMILIES])


def make_rule(name: str, env=None) -> ActionRule:
    """The rule ``name`` for ``env`` (a family name reads the env's ``policy_setup``)."""
    if name in _BY_NAME:
        return _BY_NAME[name]()
    if name not in FAMILIES:
        raise ValueError(f"unknown action rule {name!r}; known: {', '.join(ACTION_RULES)}")
    setup = getattr(getattr(env, "unwrapped", env), "policy_setup", None)
    if setup not in FAMILIES[name]:
        raise ValueError(
            f"action rule {name!r} needs one of SimplerEnv's robots (the env's policy_setup is {setup!r}; "
            f"known: {', '.join(FAMILIES[name])}): run it on a SimplerEnv suite on SimplerEnv's robots"
        )
    return FAMILIES[name][setup]()
