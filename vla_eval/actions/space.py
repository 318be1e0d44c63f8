"""The action types every policy and simulator share: what an action means and how a chunk is checked.

They live apart from ``policies`` so simulators (which declare their native control space) never
import the adapter layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from vla_eval.jsonsafe import json_safe


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
        raw = np.asarray(chunk.actions)
        if raw.dtype.kind not in "biuf":
            raise TypeError(f"dtype {raw.dtype} (expected real numbers)")
        actions = raw.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise PolicyOutputError(f"actions are not real numbers: {exc}") from exc
    if actions.ndim != 3 or actions.shape[0] != batch_size or actions.shape[2] != action_dim or actions.shape[1] < 1:
        raise PolicyOutputError(f"actions have shape {actions.shape}, expected ({batch_size}, T>=1, {action_dim})")
    if not per_row and not np.all(np.isfinite(actions)):
        raise PolicyOutputError("actions contain NaN or infinite values")
    return actions


def normalize_chunk(chunk: Any, batch_size: int) -> ActionChunk:
    """Check what a policy returned before anything reads it, and make its extras storable.

    Policies are user code: a list instead of an :class:`ActionChunk`, ``space=None``, a
    text ``parse_failure`` or numpy arrays in ``extras`` must end the episode as a
    recorded ``policy_error`` (or be stored as plain JSON), never crash the worker, so
    every executor records the same thing.
    """
    if not isinstance(chunk, ActionChunk):
        raise PolicyOutputError(f"policy returned {type(chunk).__name__}, expected ActionChunk")
    if not isinstance(chunk.space, ActionSpace):
        raise PolicyOutputError(f"ActionChunk.space is {type(chunk.space).__name__}, expected ActionSpace")
    if not isinstance(chunk.space.dim, int) or chunk.space.dim < 1:
        raise PolicyOutputError(f"ActionChunk.space.dim is {chunk.space.dim!r}, expected a positive integer")
    extras = chunk.extras if chunk.extras is not None else []
    if not isinstance(extras, (list, tuple)) or not all(isinstance(e, dict) for e in extras):
        raise PolicyOutputError("ActionChunk.extras must be a list with one dict per env")
    if len(extras) > batch_size:
        raise PolicyOutputError(f"ActionChunk.extras has {len(extras)} entries for a batch of {batch_size}")
    clean = []
    for e in extras:
        e = {str(k): json_safe(v) for k, v in e.items()}
        if "parse_failure" in e:
            pf = e["parse_failure"]
            if isinstance(pf, bool) or (isinstance(pf, (int, float)) and pf in (0, 1)):
                e["parse_failure"] = int(pf)
            else:
                raise PolicyOutputError(f"extras 'parse_failure' must be 0/1 or a bool, got {pf!r}"[:200])
        clean.append(e)
    return ActionChunk(actions=chunk.actions, space=chunk.space, extras=clean)
