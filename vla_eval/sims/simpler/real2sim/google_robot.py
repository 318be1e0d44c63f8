"""SimplerEnv's Google robot (RT-1 "meta" robot, ``google_robot_static``) facts, each with its source in
simpler-env/ManiSkill2_real2sim (commit ef7a4d4f, paths relative to ``mani_skill2_real2sim/``) or
simpler-env/SimplerEnv (``scripts/``).

Kept as data here so the scene builder, the controller, the tests and docs/simpler.md cite one place.
"""

from __future__ import annotations

import math

import numpy as np

from vla_eval.geometry import yaw_to_quat

DESCRIPTION = "mani_skill2_real2sim/assets/descriptions/googlerobot_description/"
URDF = DESCRIPTION + "google_robot_meta_sim_fix_wheel_fix_fingertip.urdf"
"""agents/configs/google_robot/defaults.py GoogleRobotDefaultConfig.urdf_path (mobile_base=False)"""

URDF_VERSIONS = (
    "",
    "recolor_tabletop_visual_matching_1",
    "recolor_tabletop_visual_matching_2",
    "recolor_cabinet_visual_matching_1",
)
"""SimplerEnv scripts/rt1_pick_coke_can_visual_matching.sh urdf_version_arr (None = the plain URDF);
agents/robots/googlerobot.py appends ``_<urdf_version>`` to the URDF's stem."""


def urdf_for(version: str) -> str:
    if version not in URDF_VERSIONS:
        raise ValueError(f"urdf_version {version!r}: expected one of {list(URDF_VERSIONS)}")
    return URDF if not version else URDF.replace(".urdf", f"_{version}.urdf")


ARM_JOINTS = (
    "joint_torso",
    "joint_shoulder",
    "joint_bicep",
    "joint_elbow",
    "joint_forearm",
    "joint_wrist",
    "joint_gripper",
)
HEAD_JOINTS = ("joint_head_pan", "joint_head_tilt")
FINGER_JOINTS = ("joint_finger_right", "joint_finger_left")
EE_LINK = "link_gripper_tcp"
"""defaults.py arm_joint_names (the 7 arm joints + the 2 head joints, all driven by the arm controller),
gripper_joint_names, ee_link_name"""

ARM_STIFFNESS = (
    1700.0,
    1737.0471680861954,
    979.975871856535,
    930.0,
    1212.154500274304,
    432.96500923932535,
    468.0013365498738,
    2000.0,
    2000.0,
)
ARM_DAMPING = (
    1059.9791902443303,
    1010.4720585373592,
    767.2803161582076,
    680.0,
    674.9946964336588,
    274.613381336198,
    340.532560578637,
    900.0,
    900.0,
)
ARM_FORCE_LIMIT = (300.0, 300.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0)
"""defaults.py base_arm_drive_mode == "force" (tuned for arm_pd_ee_delta_pose_align_interpolate_by_planner); order
ARM_JOINTS + HEAD_JOINTS"""

ARM_VEL_LIMIT, ARM_ACC_LIMIT, ARM_JERK_LIMIT = 1.5, 2.0, 50.0
"""defaults.py L130-132 arm_vel_limit / arm_acc_limit / arm_jerk_limit: the Ruckig planner that interpolates the arm's
joint targets over a control step"""

ARM_ARMATURE = 0.05
"""Not a SimplerEnv value: PhysX drives are implicit; a rotor inertia keeps MuJoCo's explicit PD drives with
kp ~1000-2000 stable at SimplerEnv's 513 Hz step (the wrist and finger links are light)."""

IMPRATIO, NOSLIP_ITERATIONS = 10.0, 5
"""Not SimplerEnv values (PhysX has neither): without them the 20 g opened can, squeezed by the 60 N fingers, slid
out of MuJoCo's soft contacts within a step or two in 3 of 4 standing-can trials; with them it stayed held in 4 of 4."""

GRIPPER_STIFFNESS, GRIPPER_DAMPING, GRIPPER_FORCE_LIMIT = 200.0, 8.0, 60.0
GRIPPER_LOW, GRIPPER_HIGH = -1.3 - 0.01, 1.3 + 0.01
GRIPPER_JOINT_RANGE = (-0.0001, 1.3)
GRIPPER_CLIP_THRES = 0.01
"""defaults.py:241-248 gripper_common_args and :291-307 gripper_pd_joint_target_delta_pos_interpolate_by_planner
(PDJointPosMimicControllerConfig, one action for both fingers): normalize_action maps a in [-1, 1] to a delta in
[-1.31, 1.31] rad; use_delta, use_target and delta_target_from_last_drive_target add it to the last drive target
(pd_joint_pos.py:61-80 set_action), clip_target clips to the URDF joint range (joint_finger_* -0.0001 ... 1.3)
widened by clip_target_thres 0.01 on each side. 0 = open, 1.3 = closed."""

GRIPPER_SMALL_ACTION = 1e-3
"""pd_joint_pos.py:87-92 small_action_repeat_last_target: a *scaled* delta (rad) below 1e-3 in magnitude keeps the
previous target, i.e. |a| < 1e-3 / 1.31 of the normalised action."""

GRIPPER_VEL_LIMIT, GRIPPER_ACC_LIMIT, GRIPPER_JERK_LIMIT = 1.0, 7.0, 50.0
"""defaults.py:137-139 gripper_vel_limit / gripper_acc_limit / gripper_jerk_limit: the Ruckig profile
(agents/utils.py:12-42 parameterize_path) each finger's drive target follows within a control step, from the sensed
joint position and velocity (clipped to the velocity limit) to rest at the target (pd_joint_pos.py:99-131); the
planned velocity is the drive's velocity target (interpolate_planner_exec_set_target_vel, pd_joint_pos.py:145-160)."""

FINGER_FRICTION, FINGER_NAIL_FRICTION = 2.0, 0.1
"""defaults.py urdf_config: finger_mat / finger_tip_mat friction 2.0, finger_nail_mat 0.1"""
OBJECT_FRICTION = 0.5
"""envs/custom_scenes/base_env.py:442-443 obj_static_friction / obj_dynamic_friction 0.5"""
SCENE_FRICTION = 1.0
"""envs/sapien_env.py:598-599 scene_config.default_static/dynamic_friction 1.0: the material of every shape built
without one (the dummy_tabletop box, base_env.py:208-209; the stage meshes, base_env.py:187-188)"""


def physx_friction(a: float, b: float) -> float:
    """PhysX's default friction combine mode (SAPIEN 2 leaves it): the mean of the two materials' coefficients.
    MuJoCo takes the larger one, unless a geom has the higher ``priority``, whose coefficient then wins."""
    return (a + b) / 2


FINGER_ON_OBJECT = physx_friction(FINGER_FRICTION, OBJECT_FRICTION)  # 1.25
NAIL_ON_OBJECT = physx_friction(FINGER_NAIL_FRICTION, OBJECT_FRICTION)  # 0.3
OBJECT_ON_TABLE = physx_friction(OBJECT_FRICTION, SCENE_FRICTION)  # 0.75
"""The coefficients PhysX applies to a grasp and to an object on the table. The port gives the finger geoms these
with a higher priority (so they win against any object) and the table 0.75 (the larger against the objects' 0.5):
finger-object, nail-object, object-table and object-object contacts then equal PhysX's; finger on table is 1.25
(PhysX 1.5) and nail on table 0.3 (PhysX 0.55)."""

POS_BOUND, ROT_BOUND = 1.0, math.pi / 2
"""defaults.py arm_common_args (-1, 1 unused since normalize_action=False;
rot_bound pi/2, rotation clipped by its norm)"""

CONTROL_HZ, SIM_HZ = 3, 513
"""grasp_single_in_scene.py _setup_prepackaged_env_init_config and scripts/rt1_*_visual_matching.sh:
--control-freq 3 --sim-freq 513"""

INIT_QPOS = np.array(
    [
        -0.2639457174606611,
        0.0831913360274175,
        0.5017611504652179,
        1.156859026208673,
        0.028583671314766423,
        1.592598203487462,
        -1.080652960128774,
        0.0,
        0.0,
        -0.00285961,
        0.7851361,
    ]
)
"""envs/custom_scenes/base_env.py _initialize_agent (google_robot_static): ARM_JOINTS, FINGER_JOINTS, HEAD_JOINTS"""

BASE_Z = 0.06205 + 0.017
BASE_QUAT = (0.0, 0.0, 0.0, 1.0)
"""base_env.py _initialize_agent: robot_init_height = base height + ground offset, robot_init_rot_quat [0, 0, 0, 1]
(wxyz: turned 180 degrees about z, the robot faces -x)"""
BASE_XY_COKE = (0.35, 0.20)
"""scripts/rt1_pick_coke_can_visual_matching.sh --robot-init-x 0.35 --robot-init-y 0.20 (and grasp_single_in_scene.py
_additional_prepackaged_config_reset init_xy)"""

TABLE_HEIGHT = 0.87
"""base_env.py scene_table_height default 0.87 (the coke-can stage google_pick_coke_can_1_v4.glb is not in the pack)"""
TABLE_BOX_CENTRE, TABLE_BOX_HALF = (-0.295, 0.21), (0.63 / 2, 0.615 / 2)
"""The substitute table's footprint: SimplerEnv's own stand-in (base_env.py _load_arena_helper scene_name ==
"dummy_tabletop": box at x -0.295, half size (0.63, 0.615) / 2, shifted by -scene_offset (0, -0.21)); its top here
at TABLE_HEIGHT."""

COKE_GRID_X = tuple(np.linspace(-0.35, -0.12, 5))
COKE_GRID_Y = tuple(np.linspace(-0.02, 0.42, 5))
"""rt1_pick_coke_can_visual_matching.sh --obj-init-x -0.35 -0.12 5 --obj-init-y -0.02 0.42 5; the evaluator
(simpler_env/evaluation/maniskill2_evaluator.py) loops x outer, y inner"""

COKE_ORIENTATION_QUAT = {
    "horizontal": (0.0, 0.0, 0.0, 1.0),  # lr_switch: euler2quat(0, 0, pi)
    "vertical": (math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)),  # laid_vertically: euler2quat(0, 0, pi/2)
    "standing": (math.cos(math.pi / 4), math.sin(math.pi / 4), 0.0, 0.0),  # upright: euler2quat(pi/2, 0, 0)
}
"""grasp_single_in_scene.py GraspSingleCustomOrientationInSceneEnv.orientations_dict (wxyz)"""

COKE_MODEL, COKE_MODEL_JSON = "baked_opened_coke_can_v2", "info_pick_custom_baked_tex_v1.json"
COKE_MODEL_SIMPLER = "opened_coke_can"
"""SimplerEnv's coke-can task (GraspSingleOpenedCokeCanInScene-v0) loads ``opened_coke_can`` of
info_pick_custom_v0.json; that model is not in the asset pack. Substitute: ``baked_opened_coke_can_v2``
(same bbox 0.066 x 0.123 x 0.066 m,
same density 50; SimplerEnv's move-near tasks use it, move_near_in_scene.py DEFAULT_MODEL_JSON v1)."""

COKE_OVERLAY = "real_inpainting/google_coke_can_real_eval_1.png"
"""grasp_single_in_scene.py _setup_prepackaged_env_init_config rgb_overlay_path; rgb_overlay_cameras overhead_camera"""

CAMERA_FX, CAMERA_FY, CAMERA_CX, CAMERA_CY = 425.0, 425.0, 320.0, 256.0
CAMERA_SIZE = (640, 512)
CAMERA_QUAT = (0.5, 0.5, -0.5, 0.5)
"""defaults.py GoogleRobotDefaultConfig.cameras: overhead_camera on link_camera, p (0, 0, 0), q (wxyz), 640x512,
intrinsic [[425, 0, 320], [0, 425, 256]]"""


def fovy_degrees() -> float:
    return math.degrees(2 * math.atan(CAMERA_SIZE[1] / 2 / CAMERA_FY))


# ------------------------------------------------------------------ move near
MOVE_NEAR_OVERLAY = "real_inpainting/google_move_near_real_eval_1.png"
"""move_near_in_scene.py MoveNearInSceneEnv._setup_prepackaged_env_init_config rgb_overlay_path"""

BASE_XY_MOVE_NEAR = (0.35, 0.21)
BASE_YAW_MOVE_NEAR = -0.09
"""scripts/rt1_move_near_visual_matching.sh --robot-init-x 0.35 --robot-init-y 0.21 --robot-init-rot-quat-center 0 0 0 1
--robot-init-rot-rpy-range 0 0 1 0 0 1 -0.09 -0.09 1 (and move_near_in_scene.py _additional_prepackaged_config_reset:
euler2quat(0, 0, -0.09) * [0, 0, 0, 1]): the base turned a further -0.09 rad about z"""


def base_quat(extra_yaw: float = 0.0) -> tuple[float, float, float, float]:
    """wxyz of ``euler2quat(0, 0, extra_yaw) * [0, 0, 0, 1]`` (a yaw of pi + extra_yaw about z)."""
    if extra_yaw == 0.0:
        return BASE_QUAT
    w, x, y, z = yaw_to_quat(math.pi + extra_yaw).tolist()
    return (w, x, y, z)


MOVE_NEAR_MODEL_JSON = "info_pick_custom_baked_tex_v1.json"
MOVE_NEAR_MODELS = {
    "blue_plastic_bottle": "baked_blue_plastic_bottle_v2",
    "pepsi_can": "baked_opened_pepsi_can_v2",
    "orange": "baked_orange_v2",
    "sevenup_can": "baked_opened_7up_can_v2",
    "apple": "baked_apple_v2",
    "sponge": "baked_sponge_v2",
    "coke_can": "baked_opened_coke_can_v2",
    "redbull_can": "baked_opened_redbull_can_v2",
}
"""Task object -> model id. SimplerEnv's visual-matching script runs MoveNearGoogleBakedTexInScene-v0
(info_pick_custom_baked_tex_v0.json: baked_opened_pepsi_can, ...; blue_plastic_bottle and orange unbaked); those
models are not in the asset pack. Substitute: the models of its -v1 variant (move_near_in_scene.py
MoveNearGoogleBakedTexInSceneEnvV1, the line the script leaves commented out), with baked_blue_plastic_bottle_v2 and
baked_orange_v2 for the two unbaked ones (same bboxes in info_pick_custom_baked_tex_v1.json)."""

MOVE_NEAR_DENSITY = {"apple": 200.0, "orange": 200.0}
"""move_near_in_scene.py special_density_dict (toy apple and orange as in the real evaluation);
the rest use the json's"""

MOVE_NEAR_QUAT = {
    "blue_plastic_bottle": (0.5, 0.5, 0.5, 0.5),  # euler2quat(pi/2, 0, pi/2)
    "pepsi_can": (math.cos(math.pi / 4), math.sin(math.pi / 4), 0.0, 0.0),  # euler2quat(pi/2, 0, 0): standing
    "orange": (math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)),  # euler2quat(0, 0, pi/2)
    "sevenup_can": (math.cos(math.pi / 4), math.sin(math.pi / 4), 0.0, 0.0),
    "apple": (1.0, 0.0, 0.0, 0.0),
    "sponge": (math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)),
    "coke_can": (math.cos(math.pi / 4), math.sin(math.pi / 4), 0.0, 0.0),
    "redbull_can": (math.cos(math.pi / 4), math.sin(math.pi / 4), 0.0, 0.0),
}
"""move_near_in_scene.py MoveNearGoogleInSceneEnv.obj_init_quat_dict (wxyz)"""

MOVE_NEAR_LAYOUTS = (((-0.33, 0.04), (-0.33, 0.34), (-0.13, 0.19)), ((-0.13, 0.04), (-0.33, 0.19), (-0.13, 0.34)))
"""move_near_in_scene.py _xy_config_per_triplet (SimplerEnv's world; the Panda-look task rescales the same triangles)"""

MOVE_NEAR_VISUAL_SUBSTITUTE = {"baked_opened_redbull_can_v2": (0.62, 0.66, 0.78, 1.0)}
"""Models whose visual mesh is missing from the asset pack (MISSING.txt: baked_opened_redbull_can_v2/textured.dae):
drawn with their collision hull in a flat silver-blue, labelled in the suite description"""


# ------------------------------------------------------------------ drawers
STATION_URDF = "data/custom/mk_station_recolor.urdf"
"""open_drawer_in_scene.py OpenDrawerInSceneEnv._setup_prepackaged_env_init_config station_name (and the
--additional-env-build-kwargs station_name=mk_station_recolor of scripts/rt1_drawer_visual_matching.sh)"""
STATION_POS = (-0.295, 0.0, 0.017)
"""open_drawer_in_scene.py _load_articulations: art_obj.set_pose(sapien.Pose([-0.295, 0, 0.017], [1, 0, 0, 0])),
fix_root_link True"""
STATION_JOINT_FRICTION, STATION_JOINT_DAMPING = 0.05, 1.0
"""open_drawer_in_scene.py cabinet_joint_friction 0.05; joint.set_drive_property(stiffness=0, damping=1)"""

DRAWER_CLOSE_INIT_QPOS = 0.2
"""open_drawer_in_scene.py CloseDrawerInSceneEnv.reset: cabinet_init_qpos 0.2 on the task's drawer (others 0)"""

DRAWER_POSES = (
    ("a0", 0.644, -0.179, -0.03),
    ("a1", 0.765, -0.182, -0.02),
    ("a2", 0.889, -0.203, -0.06),
    ("b0", 0.652, 0.009, 0.0),
    ("b1", 0.752, 0.009, 0.0),
    ("b2", 0.851, 0.035, 0.0),
    ("c0", 0.665, 0.224, 0.0),
    ("c1", 0.765, 0.222, -0.025),
    ("c2", 0.865, 0.222, -0.025),
)
"""(overlay id, robot x, robot y, extra base yaw) of SimplerEnv's nine drawer evaluation poses, in the script's
order A0 ... C2: scripts/rt1_drawer_visual_matching.sh --robot-init-x/-y, --robot-init-rot-rpy-range yaw,
--rgb-overlay-path real_inpainting/open_drawer_<id>.png (the same lists as open_drawer_in_scene.py
_additional_prepackaged_config_reset)"""


def drawer_overlay(overlay_id: str) -> str:
    return f"real_inpainting/open_drawer_{overlay_id}.png"


# ------------------------------------------------------------------ apple into the closed top drawer
STATION_TOP = 0.017 + 0.865
"""The cabinet top's upper face (mk_station tabletop_collision at z 0.855 +- 0.01 on the root at z 0.017): where the
apple starts"""
APPLE_POSES = ("a0", "b0", "c0")
"""place_in_closed_drawer_in_scene.py _additional_prepackaged_config_reset overlay_ids (the robot poses of
DRAWER_POSES with these ids); scripts/rt1_put_in_drawer_visual_matching.sh runs the same three"""
APPLE_GRID_X = tuple(np.linspace(-0.08, -0.02, 3))
APPLE_GRID_Y = tuple(np.linspace(-0.02, 0.08, 3))
"""rt1_put_in_drawer_visual_matching.sh --obj-init-x-range -0.08 -0.02 3 --obj-init-y-range -0.02 0.08 3 (the
evaluator loops x outer, y inner), per robot pose: 3 x 9 = 27 episodes"""
APPLE_MODEL = "baked_apple_v2"
"""rt1_put_in_drawer_visual_matching.sh model_ids=baked_apple_v2 of PlaceIntoClosedDrawerCustomInSceneEnv's
DEFAULT_MODEL_JSON info_pick_custom_baked_tex_v1.json (its density; no special-density table in this env)"""
APPLE_FLOOR_SHAPE = "drawer_interior_bottom_collision"
"""place_in_closed_drawer_in_scene.py reset: drawer_link.get_collision_shapes()[2], the third collision shape of the
drawer link in mk_station_recolor.urdf"""
