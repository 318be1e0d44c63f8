"""How an observation is laid out on the wire.

* ``vla_eval``: our own observation dict (``images`` / ``state`` / ``instruction``, plus
  ``depth`` / ``camera_params`` when present) and ``prompt``.  Nested dicts are fine in msgpack.
* ``openpi_libero``: the keys openpi's LIBERO example client sends and its pi0 / pi0-FAST /
  pi05 LIBERO servers expect: ``observation/image``, ``observation/wrist_image`` (already
  converted to the policy's declared orientation by the harness, then resized),
  ``observation/state`` = ``eef_pos (3) + axis-angle of eef_quat (3) + gripper_qpos (2)`` as
  float32, and ``prompt``.  The axis-angle is computed exactly as robosuite's
  ``quat2axisangle`` (which openpi's LIBERO client, ``examples/libero/main.py``, copies):
  angle ``2 * acos(w)`` in ``[0, 2 pi]``, so above pi whenever ``w < 0`` -- scipy's
  ``as_rotvec`` would fold it to the equivalent rotation below pi, a different input vector.

The server accepts both (it detects the layout from the keys), so an openpi client can
drive any policy that ``vla-eval serve`` exposes.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vla_eval.geometry import axis_angle_robosuite_to_quat as axis_angle_to_quat_wxyz
from vla_eval.geometry import quat_to_axis_angle_robosuite as quat_wxyz_to_axis_angle
from vla_eval.policies.image_preprocess import ImagePreprocess

OPENPI_IMAGE = "observation/image"
OPENPI_WRIST = "observation/wrist_image"
OPENPI_STATE = "observation/state"


class ObsFormat(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["vla_eval", "openpi_libero"] = "vla_eval"
    image_camera: str = "agentview"
    wrist_camera: str | None = "wrist"
    image: ImagePreprocess = ImagePreprocess()
    send_depth: bool = False
    history: int = Field(default=1, ge=1, le=64)
    """Frames of ``image_camera`` sent with each request (``vla_eval`` layout: ``image_history`` (n, H, W, 3), oldest
    first, and ``pad_mask`` (n,)): Octo's 2-frame window as SimplerEnv's wrapper keeps it (``octo_model.py``
    L81, L98-114: the window grows from 1 to ``history`` frames after a reset and the mask is all ones)."""


def encode_obs(obs: dict[str, Any], fmt: ObsFormat) -> dict[str, Any]:
    """Our observation -> the request body for a server speaking ``fmt.kind``."""
    instruction = str(obs.get("instruction", ""))
    if fmt.kind == "openpi_libero":
        st = obs.get("state", {})
        out: dict[str, Any] = {
            OPENPI_IMAGE: fmt.image.apply(np.asarray(obs["images"][fmt.image_camera])),
            OPENPI_STATE: np.concatenate(
                [
                    np.asarray(st["eef_pos"], dtype=np.float64).reshape(3),
                    quat_wxyz_to_axis_angle(st["eef_quat"]),
                    np.asarray(st["gripper_qpos"], dtype=np.float64).reshape(-1)[:2],
                ]
            ).astype(np.float32),
            "prompt": instruction,
        }
        if fmt.wrist_camera:
            out[OPENPI_WRIST] = fmt.image.apply(np.asarray(obs["images"][fmt.wrist_camera]))
        return out
    out = {
        "images": {k: fmt.image.apply(np.asarray(v)) for k, v in obs.get("images", {}).items()},
        "state": {k: np.asarray(v) for k, v in obs.get("state", {}).items()},
        "instruction": instruction,
        "prompt": instruction,
    }
    if fmt.send_depth:
        for key in ("depth", "camera_params"):
            if key in obs:
                out[key] = obs[key]
    return out


def decode_obs(msg: dict[str, Any], image_camera: str = "agentview", wrist_camera: str = "wrist") -> dict[str, Any]:
    """A request body in either layout -> our observation dict."""
    if OPENPI_IMAGE in msg:
        state = np.asarray(msg.get(OPENPI_STATE, np.zeros(8)), dtype=np.float64).reshape(-1)
        obs: dict[str, Any] = {
            "images": {image_camera: np.asarray(msg[OPENPI_IMAGE])},
            "instruction": str(msg.get("prompt", "")),
        }
        if OPENPI_WRIST in msg:
            obs["images"][wrist_camera] = np.asarray(msg[OPENPI_WRIST])
        if state.size >= 6:
            obs["state"] = {
                "eef_pos": state[:3],
                "eef_quat": axis_angle_to_quat_wxyz(state[3:6]),
                "gripper_qpos": state[6:8],
            }
        if "privileged" in msg:  # the documented side channel of send_privileged (a scripted expert or oracle server)
            obs["privileged"] = msg["privileged"]
            obs["wire_state"] = state  # the vector as sent, for a server that checks the client's encoding
        return obs
    obs = {k: v for k, v in msg.items() if k not in ("prompt", "reset")}
    obs["instruction"] = str(msg.get("instruction", msg.get("prompt", "")))
    return obs
