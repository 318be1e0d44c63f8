"""SimplerEnv's visual-matching "greenscreen" on MuJoCo renders.

SimplerEnv (ManiSkill2_real2sim envs/custom_scenes/base_env.py ``get_obs``) renders the
scene, takes the actor-level segmentation, and shows the real photo (resized to the render
size) wherever a pixel belongs to neither a robot link nor a task object:
``rgb = sim * (1 - mask) + photo * mask``. Here the segmentation comes from MuJoCo's
segmentation render (geom id and object type per pixel).
"""

from __future__ import annotations

from collections.abc import Iterable

import mujoco
import numpy as np


def foreground_mask(seg: np.ndarray, foreground_geoms: Iterable[int], ngeom: int | None = None) -> np.ndarray:
    """Boolean (H, W): pixels showing one of ``foreground_geoms`` (``seg`` from a segmentation render)."""
    ids = np.asarray(sorted(foreground_geoms), dtype=np.int64)
    n = int(ngeom if ngeom is not None else (ids.max() + 1 if ids.size else 1))
    lut = np.zeros(max(n, int(seg[..., 0].max()) + 1, 1), dtype=bool)
    lut[ids] = True
    obj_id, obj_type = seg[..., 0], seg[..., 1]
    is_geom = (obj_type == int(mujoco.mjtObj.mjOBJ_GEOM)) & (obj_id >= 0)
    return is_geom & lut[np.clip(obj_id, 0, lut.size - 1)]


def composite(rgb: np.ndarray, seg: np.ndarray, photo: np.ndarray, foreground_geoms: Iterable[int]) -> np.ndarray:
    """Sim pixels where the robot or a task object is, the real photo elsewhere (same size as ``rgb``)."""
    if photo.shape != rgb.shape:
        raise ValueError(f"overlay photo is {photo.shape}, render is {rgb.shape}: resize the photo first")
    fg = foreground_mask(seg, foreground_geoms)
    return np.where(fg[..., None], rgb, photo)


def composite_drawn(rgb: np.ndarray, depth: np.ndarray, photo: np.ndarray) -> np.ndarray:
    """Sim pixels wherever the render drew anything, the photo elsewhere: the same composite when only the robot
    and the task objects are drawn (the scene hides its table and floor).

    ``depth`` is the pass's raw depth buffer (``mjr_readPixels``); MuJoCo 3 renders with reversed Z, so the
    cleared value is 0 and anything drawn is above it (tests check the mask against the segmentation render)."""
    if photo.shape != rgb.shape or depth.shape != rgb.shape[:2]:
        raise ValueError(
            f"overlay photo is {photo.shape}, depth {depth.shape}, render {rgb.shape}: resize the photo first"
        )
    return np.where((depth > 0.0)[..., None], rgb, photo)


def resize_rgb(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Area-average / bilinear resize of a uint8 RGB image (PIL), a no-op at the same size."""
    if img.shape[:2] == (height, width):
        return img
    from PIL import Image

    return np.asarray(Image.fromarray(img).resize((width, height), Image.Resampling.BILINEAR))
