"""Action conversion and chunk execution: table tests in both directions (docs/architecture.md §7 pitfalls)."""

from __future__ import annotations

import numpy as np
import pytest

from vla_eval.actions import (
    ChunkExecutor,
    ConversionOptions,
    absolute_to_delta,
    binarize_gripper,
    convert_rotation,
    gripper_from_close_positive,
    gripper_to_close_positive,
    to_env_actions,
)
from vla_eval.policies.base import LIBERO_DELTA_EEF, ActionSpace, PolicyOutputError

S = np.sqrt(0.5)
# the same rotation (90° about z, then a 90° about x case) in every representation
ROTATION_TABLE = [
    {
        "axis_angle": [0, 0, np.pi / 2],
        "euler_xyz": [0, 0, np.pi / 2],
        "quat_wxyz": [S, 0, 0, S],
        "quat_xyzw": [0, 0, S, S],
    },
    {
        "axis_angle": [np.pi / 2, 0, 0],
        "euler_xyz": [np.pi / 2, 0, 0],
        "quat_wxyz": [S, S, 0, 0],
        "quat_xyzw": [S, 0, 0, S],
    },
    {"axis_angle": [0, 0, 0], "euler_xyz": [0, 0, 0], "quat_wxyz": [1, 0, 0, 0], "quat_xyzw": [0, 0, 0, 1]},
]
REPS = ["axis_angle", "euler_xyz", "quat_wxyz", "quat_xyzw"]


@pytest.mark.parametrize("row", range(len(ROTATION_TABLE)))
@pytest.mark.parametrize("src", REPS)
@pytest.mark.parametrize("dst", REPS)
def test_rotation_table_both_directions(row, src, dst):
    entry = ROTATION_TABLE[row]
    got = convert_rotation(np.array(entry[src], dtype=float), src, dst)
    np.testing.assert_allclose(got, entry[dst], atol=1e-9)


@pytest.mark.parametrize("src", REPS)
@pytest.mark.parametrize("dst", REPS)
def test_random_rotation_round_trip(src, dst):
    rng = np.random.default_rng(0)
    rv = rng.uniform(-1.2, 1.2, size=(5, 4, 3))  # batched, angles < pi so euler/axis-angle are unique
    x = convert_rotation(rv, "axis_angle", src)
    back = convert_rotation(convert_rotation(x, src, dst), dst, "axis_angle")
    assert back.shape == rv.shape
    np.testing.assert_allclose(back, rv, atol=1e-9)


def test_quaternion_order_is_not_confused():
    # wxyz [cos, sin, 0, 0] is 90° about x; read as xyzw it would be a different rotation
    q_wxyz = np.array([S, S, 0, 0])
    assert np.allclose(convert_rotation(q_wxyz, "quat_wxyz", "axis_angle"), [np.pi / 2, 0, 0])
    assert not np.allclose(convert_rotation(q_wxyz, "quat_xyzw", "axis_angle"), [np.pi / 2, 0, 0])


GRIPPER_TABLE = [  # open, closed in every convention
    ("close_positive", -1.0, 1.0),
    ("open_positive", 1.0, -1.0),
    ("close_01", 0.0, 1.0),
    ("open_01", 1.0, 0.0),
]


@pytest.mark.parametrize("conv,open_v,closed_v", GRIPPER_TABLE)
def test_gripper_table_both_directions(conv, open_v, closed_v):
    assert gripper_to_close_positive(np.array(open_v), conv) == -1.0
    assert gripper_to_close_positive(np.array(closed_v), conv) == 1.0
    assert gripper_from_close_positive(np.array(-1.0), conv) == open_v
    assert gripper_from_close_positive(np.array(1.0), conv) == closed_v
    g = np.linspace(-1, 1, 7)
    np.testing.assert_allclose(gripper_to_close_positive(gripper_from_close_positive(g, conv), conv), g)


def test_binarize_gripper():
    np.testing.assert_array_equal(binarize_gripper(np.array([-0.7, -0.0, 0.01, 0.9])), [-1, -1, 1, 1])


def test_unknown_gripper_convention_refused():
    with pytest.raises(PolicyOutputError):
        gripper_to_close_positive(np.zeros(1), "sideways")


def test_identity_conversion_and_clip():
    a = np.array([[[0.5, -2.0, 0, 0, 0, 0, 1]]])
    out = to_env_actions(a, LIBERO_DELTA_EEF, LIBERO_DELTA_EEF)
    np.testing.assert_allclose(out, [[[0.5, -1.0, 0, 0, 0, 0, 1]]])


def test_metric_quaternion_policy_to_libero_and_back():
    """Policy: metres, wxyz quaternion delta, gripper open_01 -> env: normalised axis-angle, close_positive."""
    policy = ActionSpace(kind="delta_eef", dim=8, rotation="quat_wxyz", position_units="meters", gripper="open_01")
    env = LIBERO_DELTA_EEF
    a = np.array([[[0.01, -0.02, 0.025, np.cos(0.1), 0, 0, np.sin(0.1), 1.0]]])  # 0.2 rad about z, gripper open
    out = to_env_actions(a, policy, env)
    np.testing.assert_allclose(out[0, 0], [0.2, -0.4, 0.5, 0, 0, 0.2 / 0.5, -1.0], atol=1e-9)
    # and back again (env -> policy) gives the original action
    back = to_env_actions(out, env, policy, ConversionOptions(clip=False))
    np.testing.assert_allclose(back, a, atol=1e-9)


def test_euler_policy_in_radians_is_scaled():
    policy = ActionSpace(rotation="euler_xyz", position_units="meters", gripper="close_positive")
    a = np.array([[[0.05, 0, 0, 0.25, 0, 0, 1]]])
    out = to_env_actions(a, policy, LIBERO_DELTA_EEF)
    np.testing.assert_allclose(out[0, 0], [1.0, 0, 0, 0.5, 0, 0, 1.0], atol=1e-9)


def test_position_only_policy_gets_zero_rotation():
    policy = ActionSpace(dim=4, rotation="none", position_units="normalized", gripper="open_positive")
    out = to_env_actions(np.array([[[0.1, 0.2, 0.3, 1.0]]]), policy, LIBERO_DELTA_EEF)
    np.testing.assert_allclose(out[0, 0], [0.1, 0.2, 0.3, 0, 0, 0, -1.0])


def test_binarize_option():
    policy = ActionSpace(gripper="open_01")
    out = to_env_actions(
        np.array([[[0, 0, 0, 0, 0, 0, 0.7]]]), policy, LIBERO_DELTA_EEF, ConversionOptions(binarize_gripper=True)
    )
    assert out[0, 0, -1] == -1.0  # 0.7 in open_01 is mostly open -> -1


@pytest.mark.parametrize(
    "space",
    [ActionSpace(kind="absolute_eef"), ActionSpace(kind="joint"), ActionSpace(dim=6), ActionSpace(rotation="bogus")],  # type: ignore[arg-type]
)
def test_impossible_conversions_are_refused(space):
    with pytest.raises(PolicyOutputError):
        to_env_actions(np.zeros((1, 1, space.dim)), space, LIBERO_DELTA_EEF)


def test_absolute_to_delta():
    eef_pos = np.array([0.1, 0.2, 0.3])
    eef_quat = np.array([1.0, 0, 0, 0])
    dpos, drot = absolute_to_delta(np.array([0.15, 0.2, 0.25]), np.array([0, 0, 0.3]), "axis_angle", eef_pos, eef_quat)
    np.testing.assert_allclose(dpos, [0.05, 0, -0.05], atol=1e-12)
    np.testing.assert_allclose(drot, [0, 0, 0.3], atol=1e-12)
    # applying the delta to the current orientation reaches the target
    cur = convert_rotation(np.array([0.2, 0.0, 0.0]), "axis_angle", "quat_wxyz")
    _, drot = absolute_to_delta(eef_pos, np.array([0.2, 0.0, 0.5]), "euler_xyz", eef_pos, cur)
    from scipy.spatial.transform import Rotation

    reached = (Rotation.from_rotvec(drot) * Rotation.from_rotvec([0.2, 0, 0])).as_euler("xyz")
    np.testing.assert_allclose(reached, [0.2, 0, 0.5], atol=1e-9)


# ----------------------------------------------------------------------------- chunk executor
def _chunk(start: float, T: int = 4, B: int = 2, D: int = 3) -> np.ndarray:
    return np.broadcast_to((start + np.arange(T))[None, :, None], (B, T, D)).astype(float)


def test_executor_runs_whole_chunks_by_default():
    ex = ChunkExecutor()
    seen = []
    for _ in range(8):
        if ex.needs_chunk():
            ex.add_chunk(_chunk(100 * len(seen)))
        seen.append(ex.pop()[0, 0])
    assert seen == [0, 1, 2, 3, 400, 401, 402, 403]


def test_executor_replan_steps():
    ex = ChunkExecutor(replan_steps=2)
    calls, seen = 0, []
    for _ in range(6):
        if ex.needs_chunk():
            ex.add_chunk(_chunk(10 * calls))
            calls += 1
        seen.append(ex.pop()[0, 0])
    assert calls == 3
    assert seen == [0, 1, 10, 11, 20, 21]


def test_executor_temporal_ensembling_weights_oldest_most():
    k = 0.5
    ex = ChunkExecutor(replan_steps=1, temporal_ensemble=k)
    ex.add_chunk(np.full((1, 3, 1), 0.0))
    assert ex.pop()[0, 0] == 0.0
    ex.add_chunk(np.full((1, 3, 1), 1.0))
    w = np.exp(-k * np.arange(2))
    assert np.isclose(ex.pop()[0, 0], (w[0] * 0 + w[1] * 1) / w.sum())
    ex.add_chunk(np.full((1, 3, 1), 2.0))
    w = np.exp(-k * np.arange(3))
    assert np.isclose(ex.pop()[0, 0], (w @ [0, 1, 2]) / w.sum())
    ex.add_chunk(np.full((1, 3, 1), 3.0))  # the first chunk (length 3) no longer covers step 3
    assert np.isclose(ex.pop()[0, 0], (w @ [1, 2, 3]) / w.sum())


def test_executor_k_zero_is_plain_average_and_reset():
    ex = ChunkExecutor(replan_steps=1, temporal_ensemble=0.0)
    ex.add_chunk(np.full((2, 2, 7), 1.0))
    ex.pop()
    ex.add_chunk(np.full((2, 2, 7), 3.0))
    np.testing.assert_allclose(ex.pop(), np.full((2, 7), 2.0))
    ex.reset()
    assert ex.needs_chunk()
    with pytest.raises(RuntimeError):
        ex.pop()


def test_executor_rejects_bad_chunks():
    ex = ChunkExecutor()
    with pytest.raises(PolicyOutputError):
        ex.add_chunk(np.zeros((2, 7)))
    with pytest.raises(ValueError):
        ChunkExecutor(replan_steps=0)


# ----------------------------------------------------------------------------- error messages and options
def test_refusals_say_what_is_wrong():
    from vla_eval.actions import rotation_dim, rotation_from, rotation_to

    with pytest.raises(PolicyOutputError, match=r"unknown rotation representation 'rpy'; known: \['axis_angle'"):
        rotation_dim("rpy")
    with pytest.raises(PolicyOutputError, match="cannot express a rotation as 'none'"):
        rotation_to(rotation_from(np.zeros(3), "axis_angle"), "none")
    with pytest.raises(PolicyOutputError, match="unknown gripper convention 'closed'"):
        gripper_to_close_positive(np.zeros(1), "closed")
    with pytest.raises(PolicyOutputError, match="unknown gripper convention 'closed'"):
        gripper_from_close_positive(np.zeros(1), "closed")
    joint = ActionSpace(kind="delta_eef", rotation="axis_angle", dim=7)
    with pytest.raises(
        PolicyOutputError, match=r"action dim 6 \(space says 7\) does not match 3 \+ 3 \(axis_angle\) \+ 1"
    ):
        to_env_actions(np.zeros((1, 6)), joint, ActionSpace(kind="delta_eef", rotation="euler_xyz", dim=7))
    wrong_dim = ActionSpace(kind="delta_eef", rotation="axis_angle", dim=8)
    with pytest.raises(PolicyOutputError, match=r"action dim 7 \(space says 8\)"):
        to_env_actions(np.zeros((1, 7)), wrong_dim, LIBERO_DELTA_EEF)
    with pytest.raises(
        PolicyOutputError, match="no stateless conversion from absolute_eef to the env's delta_eef .*absolute_to_delta"
    ):
        to_env_actions(np.zeros((1, 7)), ActionSpace(kind="absolute_eef", dim=7), LIBERO_DELTA_EEF)
    with pytest.raises(PolicyOutputError, match="the env takes no rotation but the policy emits axis_angle"):
        to_env_actions(np.zeros((1, 7)), LIBERO_DELTA_EEF, ActionSpace(kind="delta_eef", rotation="none", dim=4))
    with pytest.raises(PolicyOutputError, match="joint-space actions cannot be converted to an end-effector space"):
        to_env_actions(
            np.zeros((1, 7)), ActionSpace(kind="joint", dim=7), ActionSpace(kind="joint", dim=7, rotation="euler_xyz")
        )
    with pytest.raises(ValueError, match="replan_steps must be >= 1"):
        ChunkExecutor(replan_steps=0)
    with pytest.raises(ValueError, match=r"temporal_ensemble \(k\) must be >= 0"):
        ChunkExecutor(temporal_ensemble=-1.0)
    with pytest.raises(RuntimeError, match="no action left: call add_chunk first"):
        ChunkExecutor().pop()


def test_normalised_euler_policy_is_scaled_like_axis_angle():
    # 0.4 normalised rad about z = 0.2 rad; expressed as axis-angle in the env's normalised units: 0.4 again
    euler = ActionSpace(kind="delta_eef", rotation="euler_xyz", dim=7, position_units="normalized")
    out = to_env_actions(np.array([[0.2, 0, 0, 0, 0, 0.4, 1.0]]), euler, LIBERO_DELTA_EEF)
    np.testing.assert_allclose(out, [[0.2, 0, 0, 0, 0, 0.4, 1.0]], atol=1e-12)
    out = to_env_actions(np.array([[0, 0, 0, 0.4, 0, 0, -1.0]]), euler, LIBERO_DELTA_EEF)
    np.testing.assert_allclose(out[0, 3:6], [0.4, 0, 0], atol=1e-12)


def test_custom_scales_are_used_both_ways():
    metric = ActionSpace(kind="delta_eef", rotation="axis_angle", dim=7, position_units="meters")
    opts = ConversionOptions(position_scale=0.1, rotation_scale=0.25)
    out = to_env_actions(np.array([[0.02, 0, 0, 0, 0, 0.05, -1.0]]), metric, LIBERO_DELTA_EEF, opts)
    np.testing.assert_allclose(out, [[0.2, 0, 0, 0, 0, 0.2, -1.0]], atol=1e-12)  # 0.02 / 0.1, 0.05 / 0.25
    back = to_env_actions(np.array([[0.5, 0, 0, 0, 0, 0.4, 1.0]]), LIBERO_DELTA_EEF, metric, opts)
    np.testing.assert_allclose(back, [[0.05, 0, 0, 0, 0, 0.1, 1.0]], atol=1e-12)


def test_clip_both_bounds_and_opt_out():
    big = np.array([[3.0, -3.0, 0.5, 2.0, -2.0, 0.0, 5.0]])
    big[0, :3] *= 0.05  # metres
    big[0, 3:6] *= 0.5  # radians
    metric = ActionSpace(kind="delta_eef", rotation="axis_angle", dim=7, position_units="meters")
    out = to_env_actions(big, metric, LIBERO_DELTA_EEF)
    np.testing.assert_allclose(out, [[1.0, -1.0, 0.5, 1.0, -1.0, 0.0, 1.0]], atol=1e-12)
    raw = to_env_actions(big, metric, LIBERO_DELTA_EEF, ConversionOptions(clip=False))
    np.testing.assert_allclose(raw[0, :3], [3.0, -3.0, 0.5], atol=1e-12)


def test_integer_inputs_come_back_as_float64():
    assert gripper_to_close_positive(np.array([0, 1]), "close_positive").dtype == np.float64
    assert gripper_from_close_positive(np.array([-1, 1]), "close_positive").dtype == np.float64
    assert convert_rotation(np.array([[0, 0, 0]]), "axis_angle", "axis_angle").dtype == np.float64
    out = to_env_actions(
        np.array([[0, 0, 0, 0, 0, 0, 1]]), LIBERO_DELTA_EEF, LIBERO_DELTA_EEF, ConversionOptions(clip=False)
    )
    assert out.dtype == np.float64
    dpos, _ = absolute_to_delta(
        np.array([1, 2, 3]), np.zeros(3), "axis_angle", np.array([0, 0, 1]), np.array([1.0, 0, 0, 0])
    )
    assert dpos.dtype == np.float64 and dpos.tolist() == [1.0, 2.0, 2.0]


def test_quaternions_come_out_with_non_negative_scalar_part_in_both_orders():
    q = convert_rotation(np.array([[0, 0, -S, -S]]), "quat_xyzw", "quat_wxyz")  # w < 0 in, same rotation out
    np.testing.assert_allclose(q, [[S, 0, 0, S]], atol=1e-12)
    q = convert_rotation(np.array([[0, 0, 3 * np.pi / 2]]), "axis_angle", "quat_xyzw")  # 270° = -90° about z
    np.testing.assert_allclose(q, [[0, 0, -S, S]], atol=1e-12)


def test_batched_rotations_keep_their_leading_shape():
    v = np.zeros((2, 3, 3))
    v[1, 2] = [0, 0, np.pi / 2]
    q = convert_rotation(v, "axis_angle", "quat_wxyz")
    assert q.shape == (2, 3, 4)
    np.testing.assert_allclose(q[1, 2], [S, 0, 0, S], atol=1e-12)
    np.testing.assert_allclose(q[0, 0], [1, 0, 0, 0], atol=1e-12)
    eef = np.zeros((2, 3))
    dpos, drot = absolute_to_delta(
        np.ones((2, 3)), np.zeros((2, 3)), "axis_angle", eef, np.tile([1.0, 0, 0, 0], (2, 1))
    )
    assert dpos.shape == drot.shape == (2, 3)


def test_executor_reset_starts_a_fresh_episode():
    ex = ChunkExecutor(replan_steps=2)
    ex.add_chunk(np.arange(3, dtype=float).reshape(1, 3, 1))
    ex.pop()
    ex.reset()
    assert ex.needs_chunk() and not ex.can_pop()
    ex.add_chunk(np.array([[[7.0], [8.0], [9.0]]]))
    assert ex.pop().tolist() == [[7.0]] and ex.pop().tolist() == [[8.0]] and ex.needs_chunk()


def test_executor_refuses_malformed_chunks_with_their_shape():
    ex = ChunkExecutor()
    with pytest.raises(PolicyOutputError, match=r"chunk must be \(B, T>=1, D\), got \(1, 0, 7\)"):
        ex.add_chunk(np.zeros((1, 0, 7)))
    with pytest.raises(PolicyOutputError, match=r"got \(3, 7\)"):
        ex.add_chunk(np.zeros((3, 7)))
    ex.add_chunk(np.zeros((2, 3, 7)))
    with pytest.raises(
        PolicyOutputError, match=r"chunk shape \(2, 3, 6\) does not match the previous chunk's batch/dim"
    ):
        ex.add_chunk(np.zeros((2, 3, 6)))
    with pytest.raises(PolicyOutputError, match="does not match"):
        ex.add_chunk(np.zeros((1, 3, 7)))
    ex.add_chunk(np.zeros((2, 5, 7)))  # another length is fine


def test_ensemble_drops_chunks_that_no_longer_cover_the_step():
    ex = ChunkExecutor(replan_steps=1, temporal_ensemble=0.0)
    ex.add_chunk(np.array([[[1.0], [1.0]]]))  # covers steps 0-1
    assert ex.pop().tolist() == [[1.0]]
    ex.add_chunk(np.array([[[3.0], [3.0]]]))  # covers steps 1-2
    assert ex.pop().tolist() == [[2.0]]  # (1 + 3) / 2
    ex.add_chunk(np.array([[[5.0], [5.0]]]))  # covers 2-3; the first chunk has expired
    assert ex.pop().tolist() == [[4.0]]  # (3 + 5) / 2, not (1 + 3 + 5) / 3
    assert len(ex._chunks) == 2
