"""SimplerEnv's WidowX 250 S (Bridge) facts, each with its source in simpler-env/ManiSkill2_real2sim
(commit ef7a4d4f, paths relative to ``mani_skill2_real2sim/``).

Kept as data here so the scene builder, the controller, the tests and docs/simpler.md
cite one place.
"""

from __future__ import annotations

import math

import numpy as np

from vla_eval.geometry import quat_to_mat

URDF = "mani_skill2_real2sim/assets/descriptions/widowx_description/wx250s.urdf"
"""agents/configs/widowx/defaults.py WidowXDefaultConfig.urdf_path"""

ARM_JOINTS = ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate")
FINGER_JOINTS = ("left_finger", "right_finger")
EE_LINK = "ee_gripper_link"
"""defaults.py: arm_joint_names, gripper_joint_names, ee_link_name"""

ARM_STIFFNESS = (
    1169.7891719504198,
    730.0,
    808.4601346394447,
    1229.1299089624076,
    1272.2760456418862,
    1056.3326605132252,
)
ARM_DAMPING = (330.0, 180.0, 152.12036565582588, 309.6215302722146, 201.04998711007383, 269.51458932695414)
ARM_FORCE_LIMIT = (200.0, 200.0, 100.0, 100.0, 100.0, 100.0)
"""defaults.py, the gains tuned for arm_pd_ee_target_delta_pose_align2 (5 Hz)"""

ARM_ARMATURE = 0.01
"""Not a SimplerEnv value: PhysX drives are implicit, MuJoCo's position gains are not, and the wrist links'
inertia (~1e-5 kg m^2) with kp ~1000 would need a 1e-4 s step; a 0.01 kg m^2 rotor inertia (about a
Dynamixel's reflected inertia) keeps the 500 Hz step stable."""

GRIPPER_STIFFNESS, GRIPPER_DAMPING, GRIPPER_FORCE_LIMIT = 1000.0, 200.0, 60.0
GRIPPER_LOW, GRIPPER_HIGH = 0.015 - 0.001, 0.037 + 0.001
"""defaults.py gripper_pd_joint_pos: normalized [-1, 1] -> finger target in [0.014, 0.038] m (1 = open)"""

GRIPPER_FRICTION = 2.0
FINGER_PATCH_RADIUS = 0.01
OBJECT_FRICTION = 0.5
"""defaults.py gripper material (static/dynamic friction 2.0), finger patch_radius 0.01 (torsional friction);
envs/custom_scenes/base_env.py obj_*_friction 0.5"""

FINGER_TORSION = GRIPPER_FRICTION * FINGER_PATCH_RADIUS
"""MuJoCo's torsional friction coefficient (a length: the most twisting torque per newton of normal force) for the
fingers, standing in for PhysX's patch: friction times patch radius, 0.02 m. It keeps a pinched spoon level, as
SAPIEN holds it (2 degrees); without it (condim 3) the spoon swung about the line between the fingers to 85-119
degrees in every spoon configuration, though it then reached the towel in 23-24 of 24 (docs/simpler.md)."""

FINGER_MARGIN = 0.0005
"""Not a SimplerEnv value: MuJoCo's contacts are soft, so a finger squeezing an object with the gripper's ~12 N sinks
into it (0.5-0.7 mm on the spoon) where PhysX's (rest offset 0) stops at the surface. A contact margin of 0.5 mm on
the finger geoms brings a pinched spoon's fingers to rest 53.5 mm apart, as SAPIEN's (26.5 + 27.1 mm), where they
closed to 52.5 mm without it. Expert over the 24 configurations, float32 actions as ``vla-eval run`` sends them
(SAPIEN: 24/24 on each): spoon on towel 17/24 against 14/24 without, stack 23/24 either way (docs/simpler.md)."""

NOSLIP_ITERATIONS = 10
"""Not a SimplerEnv value: PhysX friction holds a resting contact still, MuJoCo's soft friction lets it creep. Without
the noslip pass a pinched spoon turned about the line between the fingers to ~60 degrees during the lift, and with
torsional friction alone it crept down and out of the fingers (docs/simpler.md, Bridge measurements)."""

POS_BOUND, ROT_BOUND = 1.0, math.pi / 2
"""defaults.py arm_common_args: position bounds +-1.0 m (unused: normalize_action=False), rot_bound pi/2"""

CONTROL_HZ, SIM_HZ = 5, 500
"""envs/custom_scenes/put_on_in_scene.py PutOnBridgeInSceneEnv: control_freq 5, sim_freq 500"""

INIT_QPOS = np.array([-0.01840777, 0.0398835, 0.22242722, -0.00460194, 1.36524296, 0.00153398, 0.037, 0.037])
INIT_QPOS_SINK = np.array([-0.2600599, -0.12875618, 0.04461369, -0.00652761, 1.7033415, -0.26983038, 0.037, 0.037])
"""envs/custom_scenes/base_env.py _initialize_agent (widowx / widowx_sink_camera_setup)"""

BASE_XY, BASE_Z, BASE_QUAT = (0.147, 0.028), 0.870, (0.0, 0.0, 0.0, 1.0)
BASE_XY_SINK, BASE_Z_SINK = (0.127, 0.06), 0.85
"""put_on_in_scene.py _additional_prepackaged_config_reset (init_xy, init_rot_quat wxyz) and
base_env.py robot_init_height (0.870; sink setup 0.85)"""

TABLE_HEIGHT = 0.87
"""base_env.py scene_table_height default 0.87: objects are dropped from 0.87 + 0.5 onto the stage's table.
The stage (data/hab2_bench_assets/stages/bridge_table_1_v1.glb) is not in the asset pack; a box with
its top at this height stands in for it (labelled in the suite and docs)."""

CAMERA_FX, CAMERA_FY, CAMERA_CX, CAMERA_CY = 623.588, 623.588, 319.501, 239.545
CAMERA_SIZE = (640, 480)
"""defaults.py cameras: 3rd_view_camera intrinsic (Logitech C920), width 640, height 480"""

CAMERA_POS = (0.0, -0.16, 0.36)
CAMERA_LOOK = (1.0, 0.553, -1.085)
"""defaults.py WidowXDefaultConfig.cameras: p, q = look_at([0, 0, 0], [1, 0.553, -1.085]).q, mounted on base_link"""

CAMERA_POS_SINK = (-0.00300001, -0.21, 0.39)
CAMERA_QUAT_SINK = (-0.907313, 0.0782, -0.36434, -0.194741)
"""defaults.py WidowXSinkCameraSetupConfig.cameras (wxyz), mounted on base_link"""


def sapien_camera_axes(pos_quat_or_look) -> np.ndarray:
    """SAPIEN camera rotation (columns: forward, left, up) in the mounting link's frame."""
    kind, value = pos_quat_or_look
    if kind == "look":
        forward = np.asarray(value, float) / np.linalg.norm(value)
        left = np.cross([0.0, 0.0, 1.0], forward)
        left /= np.linalg.norm(left)
        up = np.cross(forward, left)
        return np.stack([forward, left, up], axis=1)
    return quat_to_mat(value)


def mujoco_xyaxes(rot: np.ndarray) -> tuple[float, ...]:
    """MuJoCo camera ``xyaxes`` (image right, image up) from SAPIEN's (forward, left, up) columns."""
    right, up = -rot[:, 1], rot[:, 2]
    return (*right, *up)


def fovy_degrees() -> float:
    return math.degrees(2 * math.atan(CAMERA_SIZE[1] / 2 / CAMERA_FY))


# ------------------------------------------------------------------ eggplant into the sink's basket
SINK_OVERLAY = "real_inpainting/bridge_sink.png"
"""put_on_in_scene.py PutEggplantInBasketScene._setup_prepackaged_env_init_config rgb_overlay_path (robot
widowx_sink_camera_setup)"""
SINK_POS = (-0.16, 0.13, 0.88)
"""PutEggplantInBasketScene._initialize_actors: sink.set_pose([-0.16, 0.13, 0.88], [1, 0, 0, 0]); lock_motion()"""
EGGPLANT_CENTRE, EGGPLANT_HALF_SPAN, EGGPLANT_GRID = (-0.105, 0.206), (0.01, 0.015), (2, 4)
SINK_TARGET_XY = (-0.125, 0.025)
EGGPLANT_YAWS = (0.0, math.pi / 4, -math.pi / 4)
"""PutEggplantInBasketScene.__init__: eggplant on a 2 x 4 grid (x outer, y inner) of half spans 1 cm x 1.5 cm around
(-0.105, 0.206), the invisible target plane at (-0.125, 0.025), source yaws 0, pi/4, -pi/4; episode i = grid
i // 3, yaw i % 3 (put_on_in_scene.py PutOnBridgeInSceneEnv.reset)"""
EGGPLANT_Z_OFFSET = 0.06
"""PutEggplantInBasketScene.evaluate: z_flag_required_offset 0.06, success_require_src_completely_on_target False"""
EGGPLANT_RGBA = (0.33, 0.12, 0.40, 1.0)
"""The eggplant's visual model (eggplant/textured.dae) is missing from the asset pack (MISSING.txt): its collision
hulls are drawn in this flat aubergine colour, a labelled substitute"""
