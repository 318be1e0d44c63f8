"""The openpi oracle server uses the wire: a state vector not built as openpi's client builds it is flagged."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from vla_eval.conformance.openpi_oracle import OpenpiOracle, reference_openpi_state
from vla_eval.remote.obs_format import OPENPI_IMAGE, OPENPI_STATE, OPENPI_WRIST, decode_obs


def _tabletop_priv(eef, quat_wxyz):
    R = Rotation.from_quat([quat_wxyz[1], quat_wxyz[2], quat_wxyz[3], quat_wxyz[0]]).as_matrix()
    return {
        "task": {"type": "on_top", "object": "cube", "support": "plate"},
        "cube_pos": np.array([0.1, 0.0, 0.02]),
        "cube_quat": np.array([1.0, 0, 0, 0]),
        "cube_size": np.array([0.02] * 3),
        "plate_pos": np.array([-0.1, 0.0, 0.0]),
        "plate_size": np.array([0.08, 0.08, 0.01]),
        "eef_pos": eef,
        "eef_mat": R,
        "proprio": {"eef_pos": eef, "eef_quat": quat_wxyz, "gripper_qpos": np.array([0.04, -0.04])},
    }


def _wire(state_vec, priv):
    img = np.zeros((224, 224, 3), np.uint8)
    return decode_obs(
        {
            OPENPI_IMAGE: img,
            OPENPI_WRIST: img,
            OPENPI_STATE: state_vec.astype(np.float32),
            "prompt": "put the cube on the plate",
            "privileged": priv,
        }
    )


def test_folded_rotvec_state_is_a_preprocess_failure_and_robosuite_axis_angle_is_not():
    eef = np.array([0.0, 0.0, 0.3])
    q = np.array([-0.02, 0.999, 0.03, 0.01])  # gripper down, w < 0: robosuite's angle is above pi
    q /= np.linalg.norm(q)
    priv = _tabletop_priv(eef, q)
    good = reference_openpi_state(eef, q, priv["proprio"]["gripper_qpos"])
    assert np.linalg.norm(good[3:6]) > np.pi
    folded = good.copy()
    folded[3:6] = Rotation.from_quat([q[1], q[2], q[3], q[0]]).as_rotvec()  # scipy folds the angle below pi
    oracle = OpenpiOracle(chunk=10, replan_steps=5)
    oracle.reset(["put the cube on the plate"], slots=[1])
    ok = oracle.predict([_wire(good, priv)], slots=[1])
    assert ok.actions.shape == (1, 10, 7) and "oracle_stage" not in ok.extras[0]
    oracle.reset(["put the cube on the plate"], slots=[2])
    bad = oracle.predict([_wire(folded, priv)], slots=[2])
    assert bad.extras[0]["oracle_stage"] == "preprocess" and "observation/state" in bad.extras[0]["oracle_error"]


def test_missing_wrist_image_is_refused():
    eef, q = np.array([0.0, 0.0, 0.3]), np.array([0.0, 1.0, 0.0, 0.0])
    priv = _tabletop_priv(eef, q)
    obs = _wire(reference_openpi_state(eef, q, priv["proprio"]["gripper_qpos"]), priv)
    del obs["images"]["wrist"]
    oracle = OpenpiOracle()
    oracle.reset(["x"], slots=[1])
    try:
        oracle.predict([obs], slots=[1])
    except ValueError as exc:
        assert "observation/wrist_image" in str(exc)
    else:
        raise AssertionError("a request without the wrist image must be refused")
