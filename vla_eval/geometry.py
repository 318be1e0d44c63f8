"""Rotations and quaternions, written once for every simulator, expert and conformance oracle.

Conventions (each function states its own):

* Quaternions are ``(w, x, y, z)``, scalar first, as MuJoCo stores them (``body_quat``, ``xquat``)
  and as the harness's observation contract carries ``eef_quat``.  scipy's ``Rotation`` is scalar
  last; :func:`to_scipy` is where the order flips.
* Rotation vectors (axis-angle) are ``angle * unit_axis`` with the angle in ``[0, pi]``, except
  :func:`quat_to_axis_angle_robosuite`, which keeps robosuite's ``2 * acos(w)`` (up to ``2 pi``,
  no folding) because openpi's LIBERO client feeds exactly that number to pi0.
* Euler angles follow transforms3d's axes strings: ``"sxyz"`` (static/extrinsic x, then y, then z:
  ``R = Rz @ Ry @ Rx``, URDF's ``rpy`` and SimplerEnv's ``euler2quat``) and ``"rxyz"`` (rotating
  axes: ``R = Rx @ Ry @ Rz``).
* Matrices are 3 x 3 rotation matrices acting on column vectors.

The conversions the simulators step with go through MuJoCo's own routines (``mju_*``): they are
what the simulators always used, so every rollout stays bit for bit what it was.
scipy is used where its result is exact for the caller (matrix -> rotation vector near 0 and pi).
MuJoCo is imported inside the functions that call it: the policy server also runs in policy
environments that do not have it (vla_eval/environments.py).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial.transform import Rotation

IDENTITY_QUAT = (1.0, 0.0, 0.0, 0.0)


# ----------------------------------------------------------------------------- quaternions
def quat_normalize(q) -> np.ndarray:
    """``q`` scaled to unit length."""
    q = np.asarray(q, dtype=np.float64)
    return q / np.linalg.norm(q)


def quat_mul(a, b) -> np.ndarray:
    """Hamilton product ``a * b`` (rotate by ``b``, then by ``a``)."""
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ]
    )


def yaw_to_quat(yaw: float) -> np.ndarray:
    """Rotation by ``yaw`` radians about +z."""
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


def quat_yaw(q) -> float:
    """Heading of a quaternion's x axis in the world's x-y plane (the z angle of its ``"szyx"`` Euler triple)."""
    w, x, y, z = q
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def euler_to_quat(angles, axes: str = "sxyz") -> np.ndarray:
    """Euler angles (radians, the x, y and z angles in that order) as a quaternion.

    ``"sxyz"``: about the fixed x, then y, then z axes (``R = Rz @ Ry @ Rx``); ``"rxyz"``: about the
    rotating x, then y, then z axes (``R = Rx @ Ry @ Rz``).
    """
    if axes not in ("sxyz", "rxyz"):
        raise ValueError(f"Euler axes {axes!r} are not supported; use 'sxyz' or 'rxyz'")
    halves = []
    for axis, angle in enumerate(np.asarray(angles, dtype=np.float64).reshape(3)):
        h = np.zeros(4)
        h[0] = np.cos(angle / 2)
        h[1 + axis] = np.sin(angle / 2)
        halves.append(h)
    q = np.array(IDENTITY_QUAT)
    for h in halves if axes == "rxyz" else reversed(halves):
        q = quat_mul(q, h)
    return q


def to_scipy(q) -> Rotation:
    """scipy ``Rotation`` of ``(w, x, y, z)`` quaternion(s) (any leading shape, flattened)."""
    q = np.asarray(q, dtype=np.float64).reshape(-1, 4)
    return Rotation.from_quat(q[:, [1, 2, 3, 0]])


# ----------------------------------------------------------------------------- matrices
def quat_to_mat(q) -> np.ndarray:
    """Rotation matrix of a ``(w, x, y, z)`` quaternion (MuJoCo's ``mju_quat2Mat``).

    A quaternion further than 1e-9 from unit length is normalised first; one within it (every
    quaternion MuJoCo computes) is used as given, so the matrix is the one MuJoCo itself builds.
    """
    import mujoco

    q = np.asarray(q, dtype=np.float64).reshape(4)
    norm = float(np.linalg.norm(q))
    if norm == 0.0:
        raise ValueError("the zero quaternion has no rotation")
    out = np.empty(9)
    mujoco.mju_quat2Mat(out, q if abs(norm - 1.0) <= 1e-9 else q / norm)
    return out.reshape(3, 3)


def mat_to_quat(m) -> np.ndarray:
    """Unit ``(w, x, y, z)`` quaternion of a rotation matrix (MuJoCo's ``mju_mat2Quat``)."""
    import mujoco

    out = np.empty(4)
    mujoco.mju_mat2Quat(out, np.ascontiguousarray(m, dtype=np.float64).reshape(9))
    return out


def rotz(yaw: float) -> np.ndarray:
    """Rotation by ``yaw`` radians about +z."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def mat_yaw(m) -> float:
    """Heading of a rotation matrix's x axis in the world's x-y plane."""
    return math.atan2(m[1, 0], m[0, 0])


def euler_to_mat(angles, axes: str = "sxyz") -> np.ndarray:
    """Euler angles (radians) as a rotation matrix; ``axes`` as in :func:`euler_to_quat`."""
    rx, ry, rz = (float(a) for a in np.asarray(angles, dtype=np.float64).reshape(3))
    mx = np.array([[1, 0, 0], [0, math.cos(rx), -math.sin(rx)], [0, math.sin(rx), math.cos(rx)]])
    my = np.array([[math.cos(ry), 0, math.sin(ry)], [0, 1, 0], [-math.sin(ry), 0, math.cos(ry)]])
    mz = np.array([[math.cos(rz), -math.sin(rz), 0], [math.sin(rz), math.cos(rz), 0], [0, 0, 1]])
    if axes == "sxyz":
        return mz @ my @ mx
    if axes == "rxyz":
        return mx @ my @ mz
    raise ValueError(f"Euler axes {axes!r} are not supported; use 'sxyz' or 'rxyz'")


# ----------------------------------------------------------------------------- axis-angle
def rotvec_to_mat(v) -> np.ndarray:
    """Rotation matrix of a rotation vector (MuJoCo's ``mju_axisAngle2Quat`` then ``mju_quat2Mat``)."""
    import mujoco

    v = np.asarray(v, dtype=np.float64)
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        return np.eye(3)
    quat = np.empty(4)
    mujoco.mju_axisAngle2Quat(quat, v / angle, angle)
    mat = np.empty(9)
    mujoco.mju_quat2Mat(mat, quat)
    return mat.reshape(3, 3)


def mat_to_rotvec(m) -> np.ndarray:
    """Rotation vector of a rotation matrix, angle in ``[0, pi]`` (via MuJoCo's quaternion, ``w >= 0``)."""
    quat = mat_to_quat(m)
    if quat[0] < 0:
        quat = -quat
    sin_half = np.linalg.norm(quat[1:])
    if sin_half < 1e-12:
        return np.zeros(3)
    angle = 2.0 * np.arctan2(sin_half, quat[0])
    return quat[1:] / sin_half * angle


def mat_to_rotvec_trace(m) -> np.ndarray:
    """Rotation vector of a rotation matrix from its trace (angle) and skew part (axis); near pi, where the skew
    part vanishes, the axis is the symmetric part's principal eigenvector, its sign arbitrary.

    The same rotation as :func:`mat_to_rotvec` up to rounding; the built-in tabletop expert steers with this
    one because its recorded rollouts (``final_state_digest``) were made with it.
    """
    m = np.asarray(m, dtype=np.float64)
    angle = math.acos(max(-1.0, min(1.0, (np.trace(m) - 1.0) / 2.0)))
    if angle < 1e-9:
        return np.zeros(3)
    axis = np.array([m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]])
    norm = np.linalg.norm(axis)
    if norm < 1e-9:
        _, v = np.linalg.eigh((m + m.T) / 2.0)
        return v[:, -1] * angle
    return axis / norm * angle


def quat_to_axis_angle_robosuite(q) -> np.ndarray:
    """robosuite ``transform_utils.quat2axisangle`` for a ``(w, x, y, z)`` quaternion.

    The angle is ``2 * acos(w)`` with ``w`` clipped to [-1, 1]: in ``[0, 2 pi]``, so a quaternion with
    ``w < 0`` gives an angle above pi (scipy's ``as_rotvec`` would fold it below pi, a different vector
    from the one openpi's LIBERO client sends pi0).  No sign canonicalisation; an exactly zero
    ``sqrt(1 - w^2)`` gives the zero vector.
    """
    q = np.asarray(q, dtype=np.float64).reshape(4)
    w = min(max(float(q[0]), -1.0), 1.0)
    den = math.sqrt(1.0 - w * w)
    if math.isclose(den, 0.0):
        return np.zeros(3)
    return q[1:4] * 2.0 * math.acos(w) / den


def axis_angle_robosuite_to_quat(v) -> np.ndarray:
    """Inverse of :func:`quat_to_axis_angle_robosuite`: angles up to 2 pi give back the same quaternion, sign too."""
    v = np.asarray(v, dtype=np.float64).reshape(3)
    angle = float(np.linalg.norm(v))
    if angle == 0.0:
        return np.array([1.0, 0.0, 0.0, 0.0])
    return np.concatenate([[math.cos(angle / 2)], v / angle * math.sin(angle / 2)])


def rotation_error(target, current) -> np.ndarray:
    """Rotation vector taking orientation ``current`` to ``target`` (world frame), angle wrapped into ``[-pi, pi]``
    (MuJoCo's ``mju_quat2Vel`` over one second)."""
    import mujoco

    v = np.empty(3)
    mujoco.mju_quat2Vel(v, mat_to_quat(np.asarray(target) @ np.asarray(current).T), 1.0)
    return v
