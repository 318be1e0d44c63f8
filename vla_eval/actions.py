"""Harness-owned conversion from a policy's native action space to the env's control space.

Only conversions that are exact are done here; anything else is refused with a clear
message so that a convention mismatch can never silently reach the simulator.
"""

from __future__ import annotations

import numpy as np

from vla_eval.policies.base import ActionSpace, PolicyOutputError


def gripper_to_close_positive(g: np.ndarray, convention: str) -> np.ndarray:
    """Map any supported gripper convention onto LIBERO's (-1 open, +1 close)."""
    if convention == "close_positive":
        return g
    if convention == "open_positive":
        return -g
    if convention == "close_01":
        return 2.0 * g - 1.0
    if convention == "open_01":
        return 1.0 - 2.0 * g
    raise PolicyOutputError(f"unknown gripper convention {convention!r}")


def to_env_actions(actions: np.ndarray, space: ActionSpace, env_space: ActionSpace) -> np.ndarray:
    """Convert ``(B, T, D)`` actions from ``space`` to ``env_space``."""
    if space == env_space:
        return actions
    same_except_gripper = (
        space.kind == env_space.kind
        and space.rotation == env_space.rotation
        and space.position_units == env_space.position_units
        and space.dim == env_space.dim
    )
    if not same_except_gripper or env_space.gripper != "close_positive":
        raise PolicyOutputError(f"no conversion from {space} to the env's {env_space}")
    out = np.array(actions, dtype=np.float64, copy=True)
    out[..., -1] = gripper_to_close_positive(out[..., -1], space.gripper)
    return np.clip(out, env_space.low, env_space.high)
