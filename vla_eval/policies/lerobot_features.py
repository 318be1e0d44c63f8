"""The harness observation -> a LeRobot policy's input features, as LeRobot's own LIBERO evaluation builds them.

No torch, no lerobot: the mapping is plain numpy, so it is checked without the LeRobot environment and the harness
can resolve and validate a ``--policy lerobot`` configuration before any server starts.

What LeRobot 0.4.4's LIBERO evaluation feeds a policy (``lerobot_eval.py`` ``rollout``, lines 164-177):

* ``envs/libero.py`` ``LiberoEnv._format_raw_obs`` (lines 245-292) names robosuite's ``agentview_image`` ``image``
  and ``robot0_eye_in_hand_image`` ``image2`` (lines 139-142), rendered at the config's 360 x 360
  (``envs/configs.py`` lines 272-273), rows as LIBERO renders them (bottom-up);
* ``envs/utils.py`` ``preprocess_observation`` (lines 59-85) makes them ``observation.images.<name>``, float32
  ``(B, 3, H, W)`` in [0, 1], no resize;
* ``processor/env_processor.py`` ``LiberoProcessorStep`` (line 28) flips both image axes
  (line 59, ``torch.flip(img, dims=[2, 3])``: LIBERO's raw render rotated 180 degrees, the harness's
  ``libero_rot180``) and builds ``observation.state`` = ``eef_pos (3) + quat2axisangle(eef_quat xyzw) (3) +
  gripper_qpos (2)``, the axis-angle with robosuite's
  ``2 * acos(w)`` angle (line 75; ``_quat2axisangle``, line 114);
* ``envs/utils.py`` ``add_envs_task`` (lines 156-185) adds ``task`` = the task's language instruction.

The defaults below reproduce that; ``cameras``, ``state`` and ``resize`` override it for checkpoints trained
otherwise.  Every feature the policy declares (``config.json`` ``input_features``) must be produced, with its
declared state size, or loading fails with a one-line error that names the feature and the argument to set.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vla_eval.errors import ConfigError
from vla_eval.geometry import quat_to_axis_angle_robosuite

STATE_KEY = "observation.state"
IMAGE_PREFIX = "observation.images."
DEFAULT_CAMERAS = {"observation.images.image": "agentview", "observation.images.image2": "wrist"}
STATE_PARTS: dict[str, int] = {
    "eef_pos": 3,
    "eef_axis_angle": 3,  # robosuite quat2axisangle of eef_quat, as LiberoProcessorStep computes it
    "eef_quat_xyzw": 4,
    "eef_quat_wxyz": 4,
    "gripper_qpos": 2,
    "joint_pos": 7,
}
DEFAULT_STATE = ("eef_pos", "eef_axis_angle", "gripper_qpos")


class FeatureMapping(BaseModel):
    """Which harness observation field fills which LeRobot feature."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cameras: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_CAMERAS),
        description="LeRobot image feature -> harness camera (LeRobot LIBERO: image = agentview, image2 = wrist)",
    )
    state: tuple[str, ...] = Field(
        default=DEFAULT_STATE,
        description=f"parts of observation.state in order, from {sorted(STATE_PARTS)}",
    )
    resize: Literal["features", "none"] = Field(
        default="features",
        description="features: resize (bilinear) to the (H, W) the policy declares when the render differs; "
        "none: feed the render as it is, as LeRobot's eval does",
    )


def _shape(feature: Any) -> tuple[int, ...]:
    shape = feature.get("shape") if isinstance(feature, dict) else getattr(feature, "shape", None)
    return tuple(int(s) for s in shape or ())


def _type(feature: Any) -> str:
    kind = feature.get("type") if isinstance(feature, dict) else getattr(feature, "type", None)
    return str(getattr(kind, "value", kind))


def check_features(mapping: FeatureMapping, input_features: dict[str, Any], source: str) -> dict[str, str]:
    """The camera map restricted to what the policy takes; raise on a feature nothing fills.

    ``input_features`` is ``config.json``'s (``{key: {"type": ..., "shape": [...]}}``) or LeRobot's
    ``PolicyFeature`` objects.  Returns ``{feature key: harness camera}`` for the policy's visual features."""
    for part in mapping.state:
        if part not in STATE_PARTS:
            raise ConfigError(f"{source}: state part {part!r} is unknown; choose from {', '.join(sorted(STATE_PARTS))}")
    cameras: dict[str, str] = {}
    for key, feature in input_features.items():
        kind = _type(feature)
        if kind == "VISUAL":
            if key not in mapping.cameras:
                raise ConfigError(
                    f"{source}: the policy takes image feature {key!r} and no camera fills it; "
                    f"add --policy-arg 'cameras={{{key}: CAMERA, ...}}' (mapped now: {mapping.cameras})"
                )
            cameras[key] = mapping.cameras[key]
        elif kind == "STATE" and key == STATE_KEY:
            want = _shape(feature)
            have = state_dim(mapping)
            if want and want != (have,):
                raise ConfigError(
                    f"{source}: the policy's {key} has shape {list(want)} but state={list(mapping.state)} builds "
                    f"{have} values; set --policy-arg 'state=[...]' from {sorted(STATE_PARTS)}"
                )
        elif kind in ("STATE", "ENV"):
            raise ConfigError(f"{source}: input feature {key!r} ({kind}) has no harness counterpart")
    return cameras


def state_dim(mapping: FeatureMapping) -> int:
    return sum(STATE_PARTS[p] for p in mapping.state)


def state_vector(state: dict[str, Any], parts: tuple[str, ...]) -> np.ndarray:
    """``observation.state`` from the harness's named state (``eef_quat`` is wxyz, docs/architecture.md §4)."""
    out = []
    for part in parts:
        if part == "eef_axis_angle":
            out.append(quat_to_axis_angle_robosuite(state["eef_quat"]))
        elif part == "eef_quat_wxyz":
            out.append(np.asarray(state["eef_quat"], dtype=np.float64).reshape(4))
        elif part == "eef_quat_xyzw":
            q = np.asarray(state["eef_quat"], dtype=np.float64).reshape(4)
            out.append(np.concatenate([q[1:], q[:1]]))
        else:
            out.append(np.asarray(state[part], dtype=np.float64).reshape(-1)[: STATE_PARTS[part]])
    return np.concatenate(out).astype(np.float32)


def image_array(image: Any, size: tuple[int, int] | None) -> np.ndarray:
    """H x W x 3 uint8 -> float32 3 x H x W in [0, 1] (``preprocess_observation``), resized to ``size`` if given."""
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"expected an H x W x 3 uint8 image, got {img.dtype} {img.shape}")
    if size is not None and tuple(img.shape[:2]) != tuple(size):
        from PIL import Image

        img = np.asarray(Image.fromarray(img).resize((size[1], size[0]), Image.BILINEAR))
    return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32) / 255.0


def build_inputs(
    obs: dict[str, Any], mapping: FeatureMapping, cameras: dict[str, str], input_features: dict[str, Any]
) -> dict[str, Any]:
    """One harness observation -> ``{feature key: numpy array without batch dim, "task": instruction}``."""
    out: dict[str, Any] = {}
    images = obs.get("images") or {}
    for key, camera in cameras.items():
        if camera not in images:
            raise ValueError(f"feature {key} reads camera {camera!r}, which the observation lacks ({sorted(images)})")
        shape = _shape(input_features[key])
        size = shape[1:3] if mapping.resize == "features" and len(shape) == 3 else None
        out[key] = image_array(images[camera], size)
    if STATE_KEY in input_features:
        out[STATE_KEY] = state_vector(obs.get("state") or {}, mapping.state)
    out["task"] = str(obs.get("instruction", ""))
    return out
