"""Forward kinematics of the converted robots against the URDF joint chain, evaluated here
independently (xml.etree + scipy rotations, no code shared with the converter)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from vla_eval.sims.simpler.real2sim.urdf import standalone_mjcf, urdf_to_mjcf_parts

WIDOWX = "mani_skill2_real2sim/assets/descriptions/widowx_description/wx250s.urdf"
GOOGLE = (
    "mani_skill2_real2sim/assets/descriptions/googlerobot_description/"
    "google_robot_meta_sim_fix_wheel_fix_fingertip_recolor_tabletop_visual_matching_1.urdf"
)
GOOGLE_JOINTS = [
    "joint_torso",
    "joint_shoulder",
    "joint_bicep",
    "joint_elbow",
    "joint_forearm",
    "joint_wrist",
    "joint_gripper",
    "joint_finger_right",
    "joint_finger_left",
    "joint_head_pan",
    "joint_head_tilt",
]


def _tf(xyz, rpy) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3] = Rotation.from_euler("xyz", rpy).as_matrix()  # URDF rpy: extrinsic x, y, z
    t[:3, 3] = xyz
    return t


def urdf_fk(urdf: str, link: str, q: dict[str, float]) -> np.ndarray:
    """World pose of ``link`` (4x4) with the root at the origin, from the URDF text alone."""
    root = ET.parse(urdf).getroot()
    by_child = {j.find("child").get("link"): j for j in root.findall("joint")}
    chain = []
    while link in by_child:
        chain.append(by_child[link])
        link = by_child[link].find("parent").get("link")
    pose = np.eye(4)
    for j in reversed(chain):
        o = j.find("origin")
        xyz = [float(v) for v in o.get("xyz", "0 0 0").split()] if o is not None else [0, 0, 0]
        rpy = [float(v) for v in o.get("rpy", "0 0 0").split()] if o is not None else [0, 0, 0]
        pose = pose @ _tf(xyz, rpy)
        a = j.find("axis")
        axis = np.array([float(v) for v in a.get("xyz").split()]) if a is not None else np.array([1.0, 0, 0])
        val = q.get(j.get("name"), 0.0)
        m = np.eye(4)
        if j.get("type") in ("revolute", "continuous"):
            m[:3, :3] = Rotation.from_rotvec(axis * val).as_matrix()
        elif j.get("type") == "prismatic":
            m[:3, 3] = axis * val
        pose = pose @ m
    return pose


def _mujoco_pose(model, data, body: str) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3] = data.body(body).xmat.reshape(3, 3)
    t[:3, 3] = data.body(body).xpos
    return t


def _assert_fk_matches(urdf: str, model, data, q: dict[str, float], links) -> None:
    """MuJoCo's pose of each link at joint values ``q`` equals the URDF chain's (``urdf_fk``), to 1e-6."""
    for name, val in q.items():
        data.joint(name).qpos[0] = val
    mujoco.mj_kinematics(model, data)
    for link in links:
        want = urdf_fk(urdf, link, q)
        got = _mujoco_pose(model, data, link)
        np.testing.assert_allclose(got[:3, 3], want[:3, 3], atol=1e-6, err_msg=link)
        np.testing.assert_allclose(got[:3, :3], want[:3, :3], atol=1e-6, err_msg=link)


@pytest.mark.parametrize(
    "q",
    [
        {},
        {"waist": 0.4, "shoulder": -0.3, "elbow": 0.5, "forearm_roll": 0.2, "wrist_angle": 1.0, "wrist_rotate": -0.7},
        {
            "waist": -1.2,
            "shoulder": 0.8,
            "elbow": -1.0,
            "forearm_roll": -1.5,
            "wrist_angle": -0.4,
            "wrist_rotate": 2.0,
            "left_finger": 0.03,
        },
        # SimplerEnv's Bridge visual-matching start (ManiSkill2_real2sim agents/robots/widowx.py: init qpos)
        {
            "waist": -0.01840777,
            "shoulder": 0.0398835,
            "elbow": 0.22242722,
            "forearm_roll": -0.00460194,
            "wrist_angle": 1.36524296,
            "wrist_rotate": 0.00153398,
            "left_finger": 0.037,
        },
    ],
)
def test_widowx_fk_matches_urdf_chain(simpler_assets, q):
    urdf = str(simpler_assets / WIDOWX)
    parts = urdf_to_mjcf_parts(simpler_assets / WIDOWX)
    model = mujoco.MjModel.from_xml_string(standalone_mjcf(parts))
    data = mujoco.MjData(model)
    _assert_fk_matches(urdf, model, data, q, ("ee_gripper_link", "left_finger_link", "wrist_link"))


def test_widowx_zero_pose_by_hand(simpler_assets):
    """Joint zero: the EEF lies straight ahead at the sum of the URDF's link offsets."""
    parts = urdf_to_mjcf_parts(simpler_assets / WIDOWX)
    model = mujoco.MjModel.from_xml_string(standalone_mjcf(parts))
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    x = 0.04975 + 0.175 + 0.075 + 0.065 + 0.043 + 0.023 + 0.027575
    z = 0.072 + 0.03865 + 0.25
    np.testing.assert_allclose(data.body("ee_gripper_link").xpos, [x, 0, z], atol=1e-9)
    assert parts.joints[:6] == ["waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate"]
    assert parts.joint_ranges["left_finger"] == (0.015, 0.037)
    assert model.neq == 1  # right finger mimics the left one


@pytest.fixture(scope="module")
def google_model(simpler_assets_dir, tmp_path_factory):
    import os

    old = os.environ.get("VLA_EVAL_CACHE")
    os.environ["VLA_EVAL_CACHE"] = str(tmp_path_factory.mktemp("cache"))  # the .glb meshes are converted here
    try:
        urdf = simpler_assets_dir / GOOGLE
        parts = urdf_to_mjcf_parts(urdf)
        model = mujoco.MjModel.from_xml_string(standalone_mjcf(parts, "google_robot"))
    finally:
        if old is None:
            os.environ.pop("VLA_EVAL_CACHE")
        else:
            os.environ["VLA_EVAL_CACHE"] = old
    return str(urdf), parts, model


@pytest.mark.slow  # converts the .glb meshes once (~6 s)
@pytest.mark.parametrize(
    "q",
    [
        {},
        # SimplerEnv's Google-robot visual-matching start (envs/custom_scenes/base_env.py _initialize_agent)
        dict(
            zip(
                GOOGLE_JOINTS,
                [
                    -0.2639457174606611,
                    0.0831913360274175,
                    0.5017611504652179,
                    1.156859026208673,
                    0.028583671314766423,
                    1.592598203487462,
                    -1.080652960128774,
                    0,
                    0,
                    -0.00285961,
                    0.7851361,
                ],
            )
        ),
        {
            "joint_torso": 0.5,
            "joint_shoulder": -1.0,
            "joint_bicep": 1.2,
            "joint_elbow": -0.7,
            "joint_forearm": 2.0,
            "joint_wrist": 0.9,
            "joint_gripper": -1.5,
            "joint_finger_right": 0.6,
            "joint_head_pan": 0.3,
            "joint_head_tilt": -0.5,
        },
    ],
)
def test_google_robot_fk_matches_urdf_chain(google_model, q):
    urdf, parts, model = google_model
    assert parts.joints == GOOGLE_JOINTS
    data = mujoco.MjData(model)
    _assert_fk_matches(urdf, model, data, q, ("link_gripper_tcp", "link_finger_tip_right", "link_camera"))


# Collision shapes per link of SimplerEnv's robots in SAPIEN 2.2.2, read from the live engine
# (``link.get_collision_shapes()`` after ManiSkill2's loader with ``load_multiple_collisions_from_file = True``,
# agents/base_agent.py L88); links not listed have none or one.
SAPIEN_COLLISION_SHAPES = {
    GOOGLE: {
        "link_base": 6,
        "link_wheel_left": 10,
        "link_wheel_right": 10,
        "link_torso": 2,
        "link_shoulder": 2,
        "link_bicep": 2,
        "link_elbow": 2,
        "link_forearm": 3,
        "link_wrist": 2,
        "link_head_pan": 2,
        "link_head_tilt": 4,
    },
    WIDOWX: {
        "shoulder_link": 5,
        "upper_arm_link": 2,
        "lower_forearm_link": 10,
        "gripper_bar_link": 5,
        "left_finger_link": 2,
        "right_finger_link": 2,
    },
}


@pytest.mark.parametrize("robot", [GOOGLE, WIDOWX], ids=["google", "widowx"])
def test_robot_collision_meshes_split_into_sapiens_convex_pieces(simpler_assets, mesh_cache, monkeypatch, robot):
    """ManiSkill2 loads its robots' collision meshes as one convex hull per piece of each file; one hull over the
    whole file filled the gaps between the pieces (the WidowX finger, the Google arm's VHACD links)."""
    monkeypatch.setenv("VLA_EVAL_CACHE", str(mesh_cache))
    parts = urdf_to_mjcf_parts(simpler_assets / robot, split_collisions=True)
    model = mujoco.MjModel.from_xml_string(standalone_mjcf(parts))
    shapes: dict[str, int] = {}
    for g in range(model.ngeom):
        if model.geom_group[g] == 3:
            name = model.body(model.geom_bodyid[g]).name
            shapes[name] = shapes.get(name, 0) + 1
    assert {k: v for k, v in shapes.items() if v > 1} == SAPIEN_COLLISION_SHAPES[robot]
    whole = urdf_to_mjcf_parts(simpler_assets / robot)
    assert sum(1 for a in whole.assets if "<mesh" in a) < sum(1 for a in parts.assets if "<mesh" in a)
