"""Image orientation: from the env's declared image origin to the view a checkpoint was trained on.

Envs deliver images as their renderer produces them and *declare* the row order
(:attr:`vla_eval.sims.contract.ObservationContract.image_origin`); policies declare what
their checkpoint was trained on (``Policy.image_orientation``).  The harness converts
every image, depth map and the camera intrinsics between the two before a policy sees
an observation, so no user ever picks flips by hand and pixel projection stays right
for the converted arrays.

Orientations a policy may declare:

* ``upright``: the true camera view, row 0 at the top, column 0 at the left (what a model
  trained on real camera images, e.g. VLA-R1, expects).
* ``libero_rot180``: LIBERO's raw render rotated by 180 degrees, which is what the OpenVLA
  and openpi LIBERO data pipelines stored (openvla ``experiments/robot/libero/libero_utils.py``
  ``get_libero_image``: ``img[::-1, ::-1]``; openpi ``examples/libero/main.py``:
  ``obs["agentview_image"][::-1, ::-1]``).  LIBERO's raw render is the true view flipped
  vertically, so this is the true view mirrored left-right.

A conversion is a pair of flips (rows, columns); flips commute, so the conversion is the
XOR of "env -> true view" and "true view -> target".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from vla_eval.sims.contract import CAMERA_PARAMS_KEY, IMAGE_ORIGINS, ImageOrigin

ImageOrientation = Literal["upright", "libero_rot180"]
IMAGE_ORIENTATIONS: tuple[str, ...] = ("upright", "libero_rot180")

_TO_TRUE_VIEW = {"top_left": (False, False), "bottom_left": (True, False)}
"""(flip rows, flip columns) that turn an env's delivered array into the true view."""
_FROM_TRUE_VIEW = {"upright": (False, False), "libero_rot180": (False, True)}
"""(flip rows, flip columns) that turn the true view into a policy's declared orientation."""


@dataclass(frozen=True)
class ImageConversion:
    """The flips that take an env's images to a policy's declared orientation."""

    source: str
    target: str
    flip_rows: bool
    flip_cols: bool

    @property
    def op(self) -> str:
        if self.flip_rows and self.flip_cols:
            return "rot180"
        if self.flip_rows:
            return "flip_rows"
        if self.flip_cols:
            return "flip_cols"
        return "none"

    @property
    def identity(self) -> bool:
        return not (self.flip_rows or self.flip_cols)

    def describe(self) -> str:
        """e.g. ``bottom_left->upright:flip_rows``; stored on every episode record."""
        return f"{self.source}->{self.target}:{self.op}"

    # ------------------------------------------------------------------ arrays
    def image(self, img: np.ndarray) -> np.ndarray:
        a = np.asarray(img)
        if self.flip_rows:
            a = a[::-1]
        if self.flip_cols:
            a = a[:, ::-1]
        return np.ascontiguousarray(a) if not self.identity else a

    def intrinsics(self, K: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
        """``K`` for the converted array: a flipped axis maps ``u -> W - u`` (``v -> H - v``)."""
        out = np.array(K, dtype=np.float64, copy=True)
        h, w = hw
        if self.flip_cols:
            out[0, 0], out[0, 2] = -out[0, 0], w - out[0, 2]
        if self.flip_rows:
            out[1, 1], out[1, 2] = -out[1, 1], h - out[1, 2]
        return out.astype(np.asarray(K).dtype, copy=False)

    def point(self, uv: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
        """Continuous pixel ``(u, v)`` in the source array -> the same scene point in the converted array."""
        p = np.array(uv, dtype=np.float64, copy=True).reshape(-1, 2)
        h, w = hw
        if self.flip_cols:
            p[:, 0] = w - p[:, 0]
        if self.flip_rows:
            p[:, 1] = h - p[:, 1]
        return p

    def observation(self, obs: dict[str, Any]) -> dict[str, Any]:
        """A shallow copy of ``obs`` with images, depth and camera intrinsics converted (input untouched)."""
        if self.identity:
            return obs
        out = dict(obs)
        if isinstance(obs.get("images"), dict):
            out["images"] = {k: self.image(v) for k, v in obs["images"].items()}
        if isinstance(obs.get("depth"), dict):
            out["depth"] = {k: self.image(v) for k, v in obs["depth"].items()}
        params = obs.get(CAMERA_PARAMS_KEY)
        if isinstance(params, dict):
            conv = {}
            for cam, p in params.items():
                hw = _hw_of(obs, cam, p)
                q = dict(p)
                if hw is not None and "intrinsics" in p:
                    q["intrinsics"] = self.intrinsics(p["intrinsics"], hw)
                conv[cam] = q
            out[CAMERA_PARAMS_KEY] = conv
        return out


def _hw_of(obs: dict[str, Any], cam: str, params: dict[str, Any]) -> tuple[int, int] | None:
    for key in ("images", "depth"):
        arr = (obs.get(key) or {}).get(cam) if isinstance(obs.get(key), dict) else None
        if arr is not None:
            return tuple(np.asarray(arr).shape[:2])  # type: ignore[return-value]
    size = params.get("image_size") if isinstance(params, dict) else None
    return (int(size[0]), int(size[1])) if size is not None else None


def conversion(source: str, target: str) -> ImageConversion:
    """The conversion from an env's ``image_origin`` to a policy's ``image_orientation``."""
    if source not in IMAGE_ORIGINS:
        raise ValueError(f"unknown image origin {source!r}; expected one of {IMAGE_ORIGINS}")
    if target not in IMAGE_ORIENTATIONS:
        raise ValueError(f"unknown image orientation {target!r}; expected one of {IMAGE_ORIENTATIONS}")
    r1, c1 = _TO_TRUE_VIEW[source]
    r2, c2 = _FROM_TRUE_VIEW[target]
    return ImageConversion(source, target, flip_rows=r1 != r2, flip_cols=c1 != c2)


def policy_orientation(policy: Any) -> str:
    """What a policy declares (``upright`` when it declares nothing)."""
    value = getattr(policy, "image_orientation", None) or "upright"
    if value not in IMAGE_ORIENTATIONS:
        raise ValueError(
            f"policy {getattr(policy, 'name', policy)!r} declares image_orientation {value!r}; "
            f"expected one of {IMAGE_ORIENTATIONS}"
        )
    return value


def conversion_for(env: Any, policy: Any) -> ImageConversion | None:
    """The conversion the harness applies between ``env`` and ``policy``; None for policies that see no images."""
    if not getattr(policy, "needs_images", True):
        return None
    from vla_eval.sims.contract import image_origin_of

    origin: ImageOrigin = image_origin_of(env)
    return conversion(origin, policy_orientation(policy))


__all__ = [
    "IMAGE_ORIENTATIONS",
    "ImageConversion",
    "ImageOrientation",
    "conversion",
    "conversion_for",
    "policy_orientation",
]
