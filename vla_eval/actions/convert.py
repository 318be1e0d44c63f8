"""Harness-owned conversion from a policy's native action space to the env's control space.

Every convention mismatch the field has been bitten by (docs/architecture.md §7: gripper polarity,
wxyz vs xyzw quaternions, axis-angle vs euler, normalised vs metric units) is resolved
here, in one audited place, instead of inside each adapter.  Only exact conversions are
done; anything else is refused with a clear message so that a mismatch can never
silently reach the simulator.

Conventions (stated once, tested in both directions in ``tests/actions/test_actions.py``):

* ``axis_angle``: rotation vector ``angle * unit_axis`` (radians when metric).
* ``euler_xyz``: *extrinsic* roll-pitch-yaw about the fixed x, y, z axes
  (scipy ``"xyz"``, lower case), radians when metric.
* ``quat_wxyz``: scalar first (MuJoCo, robosuite ``eef_quat`` in our obs contract).
* ``quat_xyzw``: scalar last (scipy, ROS).
* ``position_units == "normalized"`` means a delta of 1.0 is ``position_scale`` metres and,
  for axis-angle / euler, ``rotation_scale`` radians (the built-in envs: 0.05 m, 0.5 rad).
* Gripper conventions: ``close_positive`` (-1 open, +1 close: LIBERO and the built-in envs),
  ``open_positive`` (+1 open), ``close_01`` (0 open, 1 close), ``open_01`` (1 open, 0 close,
  e.g. OpenVLA / RT-1 datasets).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.spatial.transform import Rotation

from vla_eval.actions.space import ActionSpace, PolicyOutputError
from vla_eval.geometry import to_scipy

DEFAULT_POSITION_SCALE = 0.05
"""Metres per unit of normalised delta position in the built-in envs (and LIBERO's OSC)."""
DEFAULT_ROTATION_SCALE = 0.5
"""Radians per unit of normalised delta rotation in the built-in envs (and LIBERO's OSC)."""

RotationRep = Literal["axis_angle", "euler_xyz", "quat_wxyz", "quat_xyzw", "none"]
GripperConvention = Literal["close_positive", "open_positive", "open_01", "close_01"]

_ROT_DIMS = {"axis_angle": 3, "euler_xyz": 3, "quat_wxyz": 4, "quat_xyzw": 4, "none": 0}


def rotation_dim(rep: str) -> int:
    """Number of action dimensions a rotation representation takes."""
    try:
        return _ROT_DIMS[rep]
    except KeyError:
        raise PolicyOutputError(f"unknown rotation representation {rep!r}; known: {sorted(_ROT_DIMS)}") from None


# ----------------------------------------------------------------------------- rotations
def rotation_from(values: np.ndarray, rep: str) -> Rotation:
    """Build a scipy ``Rotation`` (batched over leading dims flattened) from ``values`` in ``rep``."""
    v = np.asarray(values, dtype=np.float64).reshape(-1, rotation_dim(rep))
    if rep == "axis_angle":
        return Rotation.from_rotvec(v)
    if rep == "euler_xyz":
        return Rotation.from_euler("xyz", v)
    if rep == "quat_xyzw":
        return Rotation.from_quat(v)
    if rep == "quat_wxyz":
        return to_scipy(v)
    raise PolicyOutputError(f"rotation representation {rep!r} carries no rotation")


def rotation_to(rot: Rotation, rep: str) -> np.ndarray:
    """Express ``rot`` in ``rep``; quaternions are returned with a non-negative scalar part."""
    if rep == "axis_angle":
        return rot.as_rotvec()
    if rep == "euler_xyz":
        return rot.as_euler("xyz")
    q = rot.as_quat()  # xyzw
    q = np.where(q[:, 3:4] < 0, -q, q)  # canonical hemisphere so round trips compare equal
    if rep == "quat_xyzw":
        return q
    if rep == "quat_wxyz":
        return q[:, [3, 0, 1, 2]]
    raise PolicyOutputError(f"cannot express a rotation as {rep!r}")


def convert_rotation(values: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Convert rotations (metric: radians / unit quaternions) of shape ``(..., d_src)`` to ``(..., d_dst)``."""
    values = np.asarray(values, dtype=np.float64)
    if src == dst:
        return values.copy()
    lead = values.shape[:-1]
    out = rotation_to(rotation_from(values, src), dst)
    return out.reshape(*lead, rotation_dim(dst))


# ----------------------------------------------------------------------------- gripper
def gripper_to_close_positive(g: np.ndarray, convention: str) -> np.ndarray:
    """Map any supported gripper convention onto LIBERO's (-1 open, +1 close)."""
    g = np.asarray(g, dtype=np.float64)
    if convention == "close_positive":
        return g
    if convention == "open_positive":
        return -g
    if convention == "close_01":
        return 2.0 * g - 1.0
    if convention == "open_01":
        return 1.0 - 2.0 * g
    raise PolicyOutputError(f"unknown gripper convention {convention!r}")


def gripper_from_close_positive(g: np.ndarray, convention: str) -> np.ndarray:
    """Inverse of :func:`gripper_to_close_positive`."""
    g = np.asarray(g, dtype=np.float64)
    if convention == "close_positive":
        return g
    if convention == "open_positive":
        return -g
    if convention == "close_01":
        return (g + 1.0) / 2.0
    if convention == "open_01":
        return (1.0 - g) / 2.0
    raise PolicyOutputError(f"unknown gripper convention {convention!r}")


def binarize_gripper(g: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Close-positive gripper command -> exactly -1 / +1 (``> threshold`` closes).

    OpenVLA-style models emit a continuous value; LIBERO's controller treats the sign,
    and averaging chunks (temporal ensembling) produces intermediate values too.
    """
    return np.where(np.asarray(g) > threshold, 1.0, -1.0)


# ----------------------------------------------------------------------------- full actions
@dataclass(frozen=True)
class ConversionOptions:
    """Knobs that an :class:`ActionSpace` does not carry (units of the env's normalised space)."""

    position_scale: float = DEFAULT_POSITION_SCALE
    rotation_scale: float = DEFAULT_ROTATION_SCALE
    binarize_gripper: bool = False
    clip: bool = True


def _split(actions: np.ndarray, space: ActionSpace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rd = rotation_dim(space.rotation)
    expected = 3 + rd + 1
    if space.kind == "joint":
        raise PolicyOutputError("joint-space actions cannot be converted to an end-effector space")
    if actions.shape[-1] != expected or space.dim != expected:
        raise PolicyOutputError(
            f"action dim {actions.shape[-1]} (space says {space.dim}) does not match 3 + {rd} ({space.rotation}) + 1"
        )
    return actions[..., :3], actions[..., 3 : 3 + rd], actions[..., -1]


def _rotation_is_scalable(rep: str) -> bool:
    return rep in ("axis_angle", "euler_xyz")


def to_metric(actions: np.ndarray, space: ActionSpace, opts: ConversionOptions = ConversionOptions()):
    """Split ``(..., D)`` actions into (position m, rotation in ``space.rotation`` radians, close-positive gripper)."""
    pos, rot, grip = _split(np.asarray(actions, dtype=np.float64), space)
    if space.position_units == "normalized":
        pos = pos * opts.position_scale
        if _rotation_is_scalable(space.rotation):
            rot = rot * opts.rotation_scale
    return pos, rot, gripper_to_close_positive(grip, space.gripper)


def from_metric(pos, rot, grip_cp, space: ActionSpace, opts: ConversionOptions = ConversionOptions()) -> np.ndarray:
    """Inverse of :func:`to_metric`: assemble ``(..., D)`` actions in ``space``."""
    pos = np.asarray(pos, dtype=np.float64)
    rot = np.asarray(rot, dtype=np.float64)
    if space.position_units == "normalized":
        pos = pos / opts.position_scale
        if _rotation_is_scalable(space.rotation):
            rot = rot / opts.rotation_scale
    grip = gripper_from_close_positive(grip_cp, space.gripper)
    return np.concatenate([pos, rot, np.asarray(grip)[..., None]], axis=-1)


def to_env_actions(
    actions: np.ndarray,
    space: ActionSpace,
    env_space: ActionSpace,
    opts: ConversionOptions | None = None,
) -> np.ndarray:
    """Convert ``(..., D)`` actions from the policy's ``space`` to the env's ``env_space``.

    Handles units (normalised <-> metres/radians), rotation representation and gripper
    convention; refuses kind changes (absolute -> delta needs the current pose: use
    :func:`absolute_to_delta` per step).  The result is clipped to the env's bounds
    unless ``opts.clip`` is false.
    """
    opts = opts or ConversionOptions()
    actions = np.asarray(actions, dtype=np.float64)
    if space == env_space and not opts.binarize_gripper:
        out = actions.copy()
    else:
        if space.kind != env_space.kind:
            raise PolicyOutputError(
                f"no stateless conversion from {space.kind} to the env's {env_space.kind} "
                "(absolute targets need the current pose: vla_eval.actions.convert.absolute_to_delta)"
            )
        if env_space.rotation == "none" and space.rotation != "none":
            raise PolicyOutputError(f"the env takes no rotation but the policy emits {space.rotation}")
        pos, rot, grip = to_metric(actions, space, opts)
        if env_space.rotation != space.rotation:
            if space.rotation == "none":  # position-only policy: hold orientation (zero delta)
                rot = convert_rotation(np.zeros(actions.shape[:-1] + (3,)), "axis_angle", env_space.rotation)
            else:
                rot = convert_rotation(rot, space.rotation, env_space.rotation)
        if opts.binarize_gripper:
            grip = binarize_gripper(grip)
        out = from_metric(pos, rot, grip, env_space, opts)
    if opts.clip:
        out = np.clip(out, env_space.low, env_space.high)
    return out


def absolute_to_delta(
    target_pos: np.ndarray,
    target_rot: np.ndarray,
    rotation: str,
    eef_pos: np.ndarray,
    eef_quat_wxyz: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Delta (metres, axis-angle radians in the world frame) that moves the current pose to an absolute target.

    The rotation delta is ``R_target * R_current^-1`` expressed as a rotation vector, which
    is what a world-frame delta-EEF controller (robosuite OSC, the built-in envs) applies.
    """
    dpos = np.asarray(target_pos, dtype=np.float64) - np.asarray(eef_pos, dtype=np.float64)
    cur = rotation_from(eef_quat_wxyz, "quat_wxyz")
    tgt = rotation_from(target_rot, rotation)
    drot = (tgt * cur.inv()).as_rotvec().reshape(np.shape(dpos)[:-1] + (3,))
    return dpos, drot


# ----------------------------------------------------------------------------- chunk execution
@dataclass
class ChunkExecutor:
    """Turns action chunks into one action per env step for a lock-stepped batch of envs.

    * ``replan_steps``: execute at most this many actions of each chunk before asking the
      policy again (openpi LIBERO: chunk 10, replan 5). ``None`` runs the whole chunk.
    * ``temporal_ensemble``: ACT-style ensembling coefficient ``k``.  Every chunk that
      covers the current step contributes its action for that step, weighted
      ``exp(-k * i)`` with ``i = 0`` for the *oldest* prediction (as in ACT: older
      predictions are trusted more, which smooths the motion).  Typically used with
      ``replan_steps=1``.  ``None`` disables it.

    Usage: ``if ex.needs_chunk(): ex.add_chunk(chunk_actions)`` then ``action = ex.pop()``.
    Actions are ``(B, T, D)`` in, ``(B, D)`` out.  The rollout keeps one executor per
    episode (``B = 1``) and feeds it chunks already converted to the env's action space;
    ``replan_steps`` / ``temporal_ensemble`` come from ``--replan-steps`` or the policy
    config's ``execution`` block.
    """

    replan_steps: int | None = None
    temporal_ensemble: float | None = None
    _chunks: list[tuple[int, np.ndarray]] = field(default_factory=list, init=False)
    _t: int = field(default=0, init=False)
    _since_plan: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.replan_steps is not None and self.replan_steps < 1:
            raise ValueError("replan_steps must be >= 1")
        if self.temporal_ensemble is not None and self.temporal_ensemble < 0:
            raise ValueError("temporal_ensemble (k) must be >= 0")

    def reset(self) -> None:
        self._chunks.clear()
        self._t = 0
        self._since_plan = 0

    def _remaining(self) -> int:
        if not self._chunks:
            return 0
        start, acts = self._chunks[-1]
        return start + acts.shape[1] - self._t

    def can_pop(self) -> bool:
        """True while the newest chunk still has an action for the current step."""
        return self._remaining() > 0

    def needs_chunk(self) -> bool:
        """True when the newest chunk is used up or ``replan_steps`` actions of it have run."""
        if self._remaining() <= 0:
            return True
        return self.replan_steps is not None and self._since_plan >= self.replan_steps

    def add_chunk(self, actions: np.ndarray) -> None:
        actions = np.asarray(actions, dtype=np.float64)
        if actions.ndim != 3 or actions.shape[1] < 1:
            raise PolicyOutputError(f"chunk must be (B, T>=1, D), got {actions.shape}")
        if self._chunks and self._chunks[-1][1].shape[::2] != actions.shape[::2]:
            raise PolicyOutputError(f"chunk shape {actions.shape} does not match the previous chunk's batch/dim")
        if self.temporal_ensemble is None:
            self._chunks = [(self._t, actions)]
        else:
            self._chunks.append((self._t, actions))
            self._chunks = [(s, a) for s, a in self._chunks if s + a.shape[1] > self._t]
        self._since_plan = 0

    def pop(self) -> np.ndarray:
        """The ``(B, D)`` action for the current step; advances time."""
        if self._remaining() <= 0:
            raise RuntimeError("ChunkExecutor.pop() with no action left: call add_chunk first")
        if self.temporal_ensemble is None:
            start, acts = self._chunks[-1]
            action = acts[:, self._t - start]
        else:
            live = [(s, a) for s, a in self._chunks if s <= self._t < s + a.shape[1]]  # oldest first
            stacked = np.stack([a[:, self._t - s] for s, a in live])  # (N, B, D)
            w = np.exp(-self.temporal_ensemble * np.arange(len(live)))
            action = np.tensordot(w / w.sum(), stacked, axes=1)
        self._t += 1
        self._since_plan += 1
        return action
