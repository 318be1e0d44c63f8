"""vla_eval.geometry against scipy (always) and transforms3d (SimplerEnv's library; skipped when not installed).

Quaternions under test include the identity, ``w < 0`` and 180-degree turns (``w == 0``), where sign and
hemisphere conventions part ways.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from vla_eval import geometry as g

S = math.sqrt(0.5)
EDGE_QUATS = [
    (1.0, 0.0, 0.0, 0.0),  # identity
    (-1.0, 0.0, 0.0, 0.0),  # identity, other hemisphere
    (0.0, 1.0, 0.0, 0.0),  # 180 degrees about x
    (0.0, 0.0, S, S),  # 180 degrees about (y + z)
    (-0.3, 0.5, -0.7, 0.4),  # w < 0
    (S, 0.0, 0.0, S),  # 90 degrees about z
]


def _quats(n: int = 40) -> np.ndarray:
    rng = np.random.default_rng(7)
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    edge = np.array(EDGE_QUATS)
    return np.vstack([edge / np.linalg.norm(edge, axis=1, keepdims=True), q])


def _scipy(q) -> Rotation:
    w, x, y, z = q
    return Rotation.from_quat([x, y, z, w])


def _same_rotation(qa, qb) -> bool:
    """Equal as rotations: q and -q are the same one."""
    qa, qb = np.asarray(qa), np.asarray(qb)
    return np.allclose(qa, qb, atol=1e-12) or np.allclose(qa, -qb, atol=1e-12)


def _same_angle(a: float, b: float) -> bool:
    return abs((a - b + math.pi) % (2 * math.pi) - math.pi) < 1e-9


@pytest.mark.parametrize("q", _quats())
def test_quaternion_and_matrix_conversions_match_scipy(q):
    m = g.quat_to_mat(q)
    assert np.allclose(m, _scipy(q).as_matrix(), atol=1e-12)
    assert _same_rotation(g.mat_to_quat(m), q)
    assert np.allclose(g.to_scipy(q).as_matrix()[0], m, atol=1e-12)


@pytest.mark.parametrize("q", _quats())
def test_rotation_vectors_match_scipy_and_stay_within_pi(q):
    m = g.quat_to_mat(q)
    expected = _scipy(q)
    for rotvec in (g.mat_to_rotvec(m), g.mat_to_rotvec_trace(m)):
        assert np.linalg.norm(rotvec) <= math.pi + 1e-9
        # at exactly pi the axis sign is a free choice: compare the rotations, and the vectors elsewhere
        assert np.allclose(Rotation.from_rotvec(rotvec).as_matrix(), m, atol=1e-9)
        if np.linalg.norm(rotvec) < math.pi - 1e-6:
            assert np.allclose(rotvec, expected.as_rotvec(), atol=1e-9)
    assert np.allclose(g.rotvec_to_mat(expected.as_rotvec()), m, atol=1e-12)


def test_identity_and_half_turns_are_exact():
    assert np.array_equal(g.mat_to_rotvec(np.eye(3)), np.zeros(3))
    assert np.array_equal(g.mat_to_rotvec_trace(np.eye(3)), np.zeros(3))
    assert np.array_equal(g.rotvec_to_mat(np.zeros(3)), np.eye(3))
    half_x = np.diag([1.0, -1.0, -1.0])  # the grippers' pointing-down orientation
    for rotvec in (g.mat_to_rotvec(half_x), g.mat_to_rotvec_trace(half_x)):
        assert np.allclose(np.abs(rotvec), [math.pi, 0.0, 0.0], atol=1e-9)


def test_robosuite_axis_angle_keeps_angles_above_pi_when_w_is_negative():
    q = np.array([-0.3, 0.5, -0.7, 0.4])
    q /= np.linalg.norm(q)
    aa = g.quat_to_axis_angle_robosuite(q)
    assert np.linalg.norm(aa) == pytest.approx(2 * math.acos(q[0]))
    assert np.linalg.norm(aa) > math.pi  # scipy's as_rotvec folds it: a different vector for the same rotation
    assert not np.allclose(aa, _scipy(q).as_rotvec())
    assert np.allclose(Rotation.from_rotvec(aa).as_matrix(), g.quat_to_mat(q), atol=1e-12)
    assert np.allclose(g.axis_angle_robosuite_to_quat(aa), q, atol=1e-12)  # sign included
    assert np.array_equal(g.quat_to_axis_angle_robosuite([1.0, 0.0, 0.0, 0.0]), np.zeros(3))
    assert np.array_equal(g.quat_to_axis_angle_robosuite([-1.0, 0.0, 0.0, 0.0]), np.zeros(3))
    assert np.array_equal(g.axis_angle_robosuite_to_quat(np.zeros(3)), [1.0, 0.0, 0.0, 0.0])


@pytest.mark.parametrize("q", [q for q in _quats(10) if abs(q[0]) < 1.0])
def test_robosuite_axis_angle_round_trips_sign_included(q):
    assert np.allclose(g.axis_angle_robosuite_to_quat(g.quat_to_axis_angle_robosuite(q)), q, atol=1e-9)


@pytest.mark.parametrize("angles", [(0.0, 0.0, 0.0), (0.3, -1.2, 2.5), (math.pi, 0.0, math.pi / 2), (-2.0, 1.5, -3.0)])
def test_euler_matches_scipy(angles):
    extrinsic = Rotation.from_euler("xyz", angles)  # static x, then y, then z
    intrinsic = Rotation.from_euler("XYZ", angles)  # rotating x, then y, then z
    assert _same_rotation(g.euler_to_quat(angles, "sxyz"), extrinsic.as_quat()[[3, 0, 1, 2]])
    assert _same_rotation(g.euler_to_quat(angles, "rxyz"), intrinsic.as_quat()[[3, 0, 1, 2]])
    assert np.allclose(g.euler_to_mat(angles, "sxyz"), extrinsic.as_matrix(), atol=1e-12)
    assert np.allclose(g.euler_to_mat(angles, "rxyz"), intrinsic.as_matrix(), atol=1e-12)


def test_unsupported_euler_axes_are_refused():
    with pytest.raises(ValueError, match="szyx"):
        g.euler_to_quat((0.1, 0.2, 0.3), "szyx")
    with pytest.raises(ValueError, match="szyx"):
        g.euler_to_mat((0.1, 0.2, 0.3), "szyx")


@pytest.mark.parametrize("q", _quats(12))
def test_multiply_normalise_and_yaw_match_scipy(q):
    other = np.array([0.2, -0.4, 0.1, 0.9]) / np.linalg.norm([0.2, -0.4, 0.1, 0.9])
    product = g.quat_mul(q, other)
    assert np.allclose(g.quat_to_mat(product), (_scipy(q) * _scipy(other)).as_matrix(), atol=1e-12)
    assert np.allclose(g.quat_normalize(3.0 * np.asarray(q)), q)
    assert _same_angle(g.quat_yaw(q), _scipy(q).as_euler("ZYX")[0])
    assert _same_angle(g.mat_yaw(g.quat_to_mat(q)), g.quat_yaw(q))


@pytest.mark.parametrize("yaw", [0.0, 0.7, -2.0, math.pi])
def test_yaw_quaternion_and_matrix(yaw):
    assert _same_rotation(g.yaw_to_quat(yaw), Rotation.from_euler("z", yaw).as_quat()[[3, 0, 1, 2]])
    assert np.allclose(g.rotz(yaw), Rotation.from_euler("z", yaw).as_matrix(), atol=1e-12)


def test_rotation_error_takes_current_to_target_the_short_way():
    current = Rotation.from_rotvec([0.0, 0.0, 0.3]).as_matrix()
    target = Rotation.from_rotvec([0.0, 0.0, 0.3 + 3.0]).as_matrix()  # 3 rad further about z
    err = g.rotation_error(target, current)
    assert np.allclose(g.rotvec_to_mat(err) @ current, target, atol=1e-12)
    assert np.allclose(err, [0.0, 0.0, 3.0], atol=1e-12)
    far = Rotation.from_rotvec([0.0, 0.0, 0.3 + 4.0]).as_matrix()  # 4 rad one way is 2 pi - 4 the other
    assert np.allclose(g.rotation_error(far, current), [0.0, 0.0, 4.0 - 2 * math.pi], atol=1e-12)


def test_quat_to_mat_normalises_and_refuses_zero():
    assert np.allclose(g.quat_to_mat([2.0, 0.0, 0.0, 2.0]), Rotation.from_euler("z", math.pi / 2).as_matrix())
    with pytest.raises(ValueError, match="zero quaternion"):
        g.quat_to_mat([0.0, 0.0, 0.0, 0.0])


# ----------------------------------------------------------------------------- transforms3d (SimplerEnv's library)
@pytest.mark.parametrize("q", _quats(20))
def test_matches_transforms3d(q):
    t3d = pytest.importorskip("transforms3d")
    assert np.allclose(g.quat_to_mat(q), t3d.quaternions.quat2mat(q), atol=1e-12)
    assert _same_rotation(g.mat_to_quat(g.quat_to_mat(q)), t3d.quaternions.mat2quat(g.quat_to_mat(q)))
    other = np.array([0.5, 0.5, -0.5, 0.5])
    assert np.allclose(g.quat_mul(q, other), t3d.quaternions.qmult(q, other), atol=1e-12)
    axis, angle = t3d.quaternions.quat2axangle(q)
    assert np.allclose(
        Rotation.from_rotvec(g.mat_to_rotvec(g.quat_to_mat(q))).as_matrix(),
        t3d.axangles.axangle2mat(axis, angle),
        atol=1e-9,
    )
    assert _same_angle(g.quat_yaw(q), t3d.euler.quat2euler(q, "rzyx")[0])


@pytest.mark.parametrize("angles", [(0.0, 0.0, 0.0), (0.3, -1.2, 2.5), (math.pi, 0.0, math.pi / 2), (0.0, 0.0, -0.09)])
@pytest.mark.parametrize("axes", ["sxyz", "rxyz"])
def test_euler_matches_transforms3d(angles, axes):
    t3d = pytest.importorskip("transforms3d")
    assert _same_rotation(g.euler_to_quat(angles, axes), t3d.euler.euler2quat(*angles, axes=axes))
    assert np.allclose(g.euler_to_mat(angles, axes), t3d.euler.euler2mat(*angles, axes=axes), atol=1e-12)
