"""Image preprocessing owned by each adapter (DESIGN §5: every checkpoint was trained with its own).

Envs hand over images *as rendered*; the flips, crops and resizes a checkpoint expects
live here as explicit, recorded options, because getting one of them wrong (LIBERO's
180° flip, OpenVLA's 0.9-area centre crop) silently costs tens of points.

:class:`ImageTransform` also maps normalised image coordinates predicted on the
preprocessed image back to the rendered image, so that 2D outputs (VLA-R1 waypoints)
can be lifted to 3D with the env's camera model.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


class ImagePreprocess(BaseModel):
    """Preprocessing steps, applied in this order: flip -> centre crop -> resize.

    * ``flip_180``: an *extra* 180° rotation on top of the harness's orientation conversion.
      Leave it off: the env declares its image origin, the policy declares
      ``image_orientation`` and :mod:`vla_eval.envs.orientation` converts between the two.
    * ``center_crop_area``: keep a centred crop covering this fraction of the area
      (OpenVLA's ``center_crop`` uses 0.9: side scale ``sqrt(0.9)``), then resize back.
    * ``resize``: ``[H, W]`` output size, or ``None`` to keep the size.
    * ``resize_mode``: ``"stretch"`` (plain resize) or ``"pad"`` (aspect-preserving resize
      with black padding, openpi's ``resize_with_pad``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    flip_180: bool = False
    center_crop_area: float | None = Field(default=None, gt=0.0, le=1.0)
    resize: tuple[int, int] | None = None
    resize_mode: Literal["stretch", "pad"] = "stretch"
    resample: Literal["nearest", "bilinear", "bicubic", "lanczos"] = "bilinear"

    def apply(self, image: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 in, preprocessed HxWx3 uint8 out (never modifies the input)."""
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 image, got shape {img.shape}")
        if img.dtype != np.uint8:
            raise ValueError(f"expected uint8 pixels, got {img.dtype}")
        if self.flip_180:
            img = img[::-1, ::-1]
        h, w = img.shape[:2]
        pil = Image.fromarray(np.ascontiguousarray(img))
        box = None
        if self.center_crop_area is not None and self.center_crop_area < 1.0:
            s = math.sqrt(self.center_crop_area)
            ch, cw = h * s, w * s
            top, left = (h - ch) / 2.0, (w - cw) / 2.0
            box = (left, top, left + cw, top + ch)
            if self.resize is None or self.resize_mode == "pad":
                # resize the crop back to the original size, as OpenVLA's TF crop_and_resize does
                pil = pil.resize((w, h), _RESAMPLE[self.resample], box=box)
                box = None
        if self.resize is not None:
            th, tw = self.resize
            if self.resize_mode == "stretch":
                pil = pil.resize((tw, th), _RESAMPLE[self.resample], box=box)  # crop + resize in one resampling
            else:
                scale = min(th / h, tw / w)
                nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
                inner = pil.resize((nw, nh), _RESAMPLE[self.resample])
                canvas = Image.new("RGB", (tw, th))
                canvas.paste(inner, ((tw - nw) // 2, (th - nh) // 2))
                pil = canvas
        return np.asarray(pil.convert("RGB"))

    def to_source_coords(self, xy: np.ndarray, src_hw: tuple[int, int]) -> np.ndarray:
        """Map normalised ``(x, y)`` in [0, 1] on the preprocessed image back to the rendered image.

        ``x`` runs left -> right, ``y`` top -> bottom, both relative to the full image width
        and height.  Inverse of the geometric steps of :meth:`apply`.
        """
        p = np.array(xy, dtype=np.float64, copy=True).reshape(-1, 2)
        h, w = src_hw
        if self.resize is not None and self.resize_mode == "pad":
            th, tw = self.resize
            scale = min(th / h, tw / w)
            nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
            ox, oy = (tw - nw) // 2, (th - nh) // 2
            p[:, 0] = (p[:, 0] * tw - ox) / nw
            p[:, 1] = (p[:, 1] * th - oy) / nh
        if self.center_crop_area is not None and self.center_crop_area < 1.0:
            s = math.sqrt(self.center_crop_area)
            p = (1.0 - s) / 2.0 + p * s
        if self.flip_180:
            p = 1.0 - p
        return p

    def from_source_coords(self, xy: np.ndarray, src_hw: tuple[int, int]) -> np.ndarray:
        """Inverse of :meth:`to_source_coords` (used by tests and by the bridge proof)."""
        p = np.array(xy, dtype=np.float64, copy=True).reshape(-1, 2)
        h, w = src_hw
        if self.flip_180:
            p = 1.0 - p
        if self.center_crop_area is not None and self.center_crop_area < 1.0:
            s = math.sqrt(self.center_crop_area)
            p = (p - (1.0 - s) / 2.0) / s
        if self.resize is not None and self.resize_mode == "pad":
            th, tw = self.resize
            scale = min(th / h, tw / w)
            nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
            ox, oy = (tw - nw) // 2, (th - nh) // 2
            p[:, 0] = (p[:, 0] * nw + ox) / tw
            p[:, 1] = (p[:, 1] * nh + oy) / th
        return p
