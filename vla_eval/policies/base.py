"""The one contract every policy adapter implements.

A policy sees a *batch* of observations (one per env stepping in lock-step) and
answers with an :class:`ActionChunk`: ``(B, T, D)`` actions in the policy's own
native space plus a description of that space.  The harness, not the policy,
converts the chunk to the env's control space, so gripper polarity and rotation
conventions are handled in one audited place.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np


@dataclass(frozen=True)
class ActionSpace:
    """What the numbers in an action mean.

    ``gripper`` names the convention of the last dimension:
    ``"close_positive"`` is LIBERO's -1 = open, +1 = close.
    """

    kind: Literal["delta_eef", "absolute_eef", "joint"] = "delta_eef"
    dim: int = 7
    rotation: Literal["axis_angle", "euler_xyz", "quat_wxyz", "quat_xyzw", "none"] = "axis_angle"
    position_units: Literal["normalized", "meters"] = "normalized"
    gripper: Literal["close_positive", "open_positive", "open_01", "close_01"] = "close_positive"
    low: float = -1.0
    high: float = 1.0


LIBERO_DELTA_EEF = ActionSpace()
"""7-D delta end-effector pose + gripper in [-1, 1], -1 = open: the built-in envs' native space."""


@dataclass
class ActionChunk:
    """Actions for a batch of envs: ``actions`` has shape ``(B, T, D)``.

    ``extras`` holds one dict per env (raw model text, reasoning, parse failures)
    that the runner copies into the episode record.
    """

    actions: np.ndarray
    space: ActionSpace = LIBERO_DELTA_EEF
    extras: list[dict[str, Any]] = field(default_factory=list)


class PolicyOutputError(ValueError):
    """A policy returned something the harness cannot execute (NaN, wrong shape)."""


def validate_chunk(chunk: Any, batch_size: int, action_dim: int, per_row: bool = False) -> np.ndarray:
    """Return the chunk's actions as float64 ``(B, T, D)`` or raise :class:`PolicyOutputError`.

    Checked here, once, so that a malformed output ends an episode with a recorded
    ``policy_error`` instead of reaching the simulator. With ``per_row`` the caller checks
    finiteness per env, so one bad row of a batch fails only its own episode.
    """
    if not isinstance(chunk, ActionChunk):
        raise PolicyOutputError(f"policy returned {type(chunk).__name__}, expected ActionChunk")
    try:
        actions = np.asarray(chunk.actions, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PolicyOutputError(f"actions are not numeric: {exc}") from exc
    if actions.ndim != 3 or actions.shape[0] != batch_size or actions.shape[2] != action_dim or actions.shape[1] < 1:
        raise PolicyOutputError(
            f"actions have shape {actions.shape}, expected ({batch_size}, T>=1, {action_dim})"
        )
    if not per_row and not np.all(np.isfinite(actions)):
        raise PolicyOutputError("actions contain NaN or infinite values")
    return actions


class Policy(abc.ABC):
    """Base class of every adapter and baseline.

    Class attributes tell the harness what to compute for the policy, so that a
    state-only policy never pays for rendering and only experts see privileged state.
    """

    name: str = "policy"
    action_space: ActionSpace = LIBERO_DELTA_EEF
    needs_images: bool = True
    needs_depth: bool = False
    needs_privileged: bool = False
    deterministic: bool = True
    image_orientation: str = "upright"
    """The view the checkpoint was trained on (``upright`` | ``libero_rot180``); the harness converts
    each env's images, depth and intrinsics to it (:mod:`vla_eval.envs.orientation`)."""

    def reset(self, instructions: list[str], seeds: list[int] | None = None) -> None:
        """Start new episodes; ``seeds`` makes stochastic policies reproducible per episode."""

    @abc.abstractmethod
    def predict(self, obs_batch: list[dict[str, Any]]) -> ActionChunk:
        """Map a batch of observations (one dict per env) to an action chunk."""

    def describe(self) -> dict[str, Any]:
        """Configuration recorded once per run (checkpoint, preprocessing, ...)."""
        return {"name": self.name}

    def close(self) -> None:
        """Release models, sockets, ..."""
