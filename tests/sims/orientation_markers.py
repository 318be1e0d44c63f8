"""Marker helpers shared by the orientation tests of every backend.

The expected pixel of a marker is computed here from MuJoCo's own camera data (``cam_xpos``,
``cam_xmat``, ``cam_fovy``: camera x right, y up, looking along -z) with the textbook pinhole
model for the *true* view (row 0 at the top); nothing from the env's ``camera_params`` or the
orientation module under test is used.
"""

from __future__ import annotations

import contextlib

import numpy as np

MAGENTA = np.array([1.0, 0.0, 1.0, 1.0])


def true_view_pixel(model, data, cam_id: int, point: np.ndarray, hw: tuple[int, int]) -> tuple[float, float]:
    """Continuous ``(u, v)`` of a world point in the true (upright) view, row 0 at the top."""
    h, w = hw
    R = np.asarray(data.cam_xmat[cam_id]).reshape(3, 3)
    pc = R.T @ (np.asarray(point, dtype=np.float64) - np.asarray(data.cam_xpos[cam_id]))
    depth = -pc[2]
    f = 0.5 * h / np.tan(np.deg2rad(model.cam_fovy[cam_id]) / 2)
    return w / 2 + f * pc[0] / depth, h / 2 - f * pc[1] / depth


@contextlib.contextmanager
def painted(model, geoms: list[int]):
    """Paint geoms flat magenta (no material, so no texture) and restore them afterwards."""
    saved = model.geom_rgba[geoms].copy(), model.geom_matid[geoms].copy()
    model.geom_rgba[geoms] = MAGENTA
    model.geom_matid[geoms] = -1
    try:
        yield
    finally:
        model.geom_rgba[geoms], model.geom_matid[geoms] = saved


def magenta_centroid(img: np.ndarray) -> tuple[float, float, int]:
    """``(u, v, n_pixels)`` of the strongly magenta pixels (continuous pixel centres)."""
    a = np.asarray(img).astype(int)
    mask = (a[..., 0] > 120) & (a[..., 2] > 120) & (a[..., 1] < 0.5 * np.minimum(a[..., 0], a[..., 2]))
    rows, cols = np.nonzero(mask)
    if len(rows) == 0:
        return float("nan"), float("nan"), 0
    return float(cols.mean() + 0.5), float(rows.mean() + 0.5), int(len(rows))


def project_with_params(params: dict, point: np.ndarray) -> tuple[float, float]:
    """Pixel of a world point through the contract's camera_params (OpenCV, camera-to-world)."""
    K = np.asarray(params["intrinsics"], dtype=np.float64)
    E = np.asarray(params["extrinsics"], dtype=np.float64)
    pc = E[:3, :3].T @ (np.asarray(point, dtype=np.float64) - E[:3, 3])
    uv = K @ pc
    return float(uv[0] / uv[2]), float(uv[1] / uv[2])
