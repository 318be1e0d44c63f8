"""Which of SimplerEnv's environments, with which settings, stands for each vla-eval task on the SAPIEN engine.

The settings are SimplerEnv's visual-matching ones, as its scripts and the envs' prepackaged configs set them
(simpler-env/SimplerEnv ``scripts/*.sh``; ManiSkill2_real2sim @ ef7a4d4 ``envs/custom_scenes/*.py``
``_setup_prepackaged_env_init_config`` and ``_additional_prepackaged_config_reset``). They are passed explicitly with
``prepackaged_config=False`` because the prepackaged config would also load the scene stage, which the asset pack
lacks, and set up the camera overlay, which needs a Vulkan device. Stand-ins for the stage (labelled): a static box
with its top at SimplerEnv's ``scene_table_height`` 0.87 m on the MuJoCo port's table footprint -- for the Google
tasks the footprint of SimplerEnv's own ``dummy_tabletop``, whose top is at 0.882 m instead (``base_env.py``
L197-199: a 0.865 m box on a 0.017 m floor), which left every object 1.2 cm higher than on the port and the stage.

Configuration *i* of a task is the same episode as in the MuJoCo port (:mod:`vla_eval.sims.simpler.real2sim`):
the coke-can tasks' ``obj_init_options.init_xy`` walks SimplerEnv's 5 x 5 grid (x outer, y inner), move near and
the Bridge tasks pass ``obj_init_options.episode_id = i``, the drawer tasks put the robot at the script's pose *i*,
and the apple task puts the robot at pose *i* // 9 and the apple at cell *i* % 9 of SimplerEnv's 3 x 3 grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GOOGLE_CONTROL = (
    "arm_pd_ee_delta_pose_align_interpolate_by_planner_gripper_pd_joint_target_delta_pos_interpolate_by_planner"
)
"""grasp_single_in_scene.py _setup_prepackaged_env_init_config control_mode (rt1_pick_coke_can_visual_matching.sh)"""
BRIDGE_CONTROL = "arm_pd_ee_target_delta_pose_align2_gripper_pd_joint_pos"
"""put_on_in_scene.py PutOnBridgeInSceneEnv._setup_prepackaged_env_init_config control_mode"""
BRIDGE_BOX = (-0.2, 0.1, 0.6, 0.6, 0.87)
"""(centre x, centre y, half x, half y, top z): the MuJoCo port's Bridge table (widowx_env.build_bridge_xml)"""
GOOGLE_BOX = (-0.295, 0.21, 0.63 / 2, 0.615 / 2, 0.87)
"""The MuJoCo port's Google table (google_robot.TABLE_BOX_*, TABLE_HEIGHT): ``dummy_tabletop``'s footprint in the world
(box at x -0.295 shifted by -scene_offset (0, -0.21)), top at ``scene_table_height``."""
COKE_ORIENTATION_KWARG = {"horizontal": "lr_switch", "vertical": "laid_vertically", "standing": "upright"}
"""rt1_pick_coke_can_visual_matching.sh coke_can_options_arr (GraspSingleCustomOrientationInSceneEnv kwargs)"""


@dataclass(frozen=True)
class SapienTask:
    env_id: str
    robot: str
    """``google`` or ``widowx``: which robot facts module (joint names) reads the state"""
    kwargs: dict[str, Any]
    robot_init_options: dict[str, Any]
    box: tuple[float, float, float, float, float] | None = None
    urdf_versions: bool = False
    """splits named after SimplerEnv's URDF colourings pick ``urdf_version`` (Google robot)"""
    extra: dict[str, Any] = field(default_factory=dict)
    episode_ids: bool = False
    """configuration *i* is SimplerEnv's ``obj_init_options.episode_id = i`` (the Bridge tasks, move near)"""
    robot_poses: tuple[tuple[str, float, float, float], ...] | None = None
    """configuration *i* puts the robot at pose *i* (overlay id, x, y, extra yaw): the drawer tasks' nine poses"""
    object_grid: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    """(x values, y values): configuration *i* drops the object at cell *i* mod (nx * ny) of this grid, x outer and y
    inner, as SimplerEnv's evaluator walks ``--obj-init-x-range`` / ``--obj-init-y-range``"""

    def robot_init_options_for(self, config_id: int) -> dict[str, Any]:
        """The robot's start for one configuration: the task's one pose, or (drawers) the configuration's own,
        composed as SimplerEnv's drawer env does (``open_drawer_in_scene.py`` L207-212:
        ``euler2quat(0, 0, yaw) * [0, 0, 0, 1]``)."""
        if self.robot_poses is None:
            return self.robot_init_options
        from vla_eval.sims.simpler.real2sim import google_robot as G

        _, x, y, yaw = self.robot_poses[config_id]
        return {"init_xy": [float(x), float(y)], "init_rot_quat": list(G.base_quat(yaw))}

    def obj_init_options(self, task: str, config_id: int) -> dict[str, Any]:
        from vla_eval.sims.simpler.tasks import get_task

        if self.episode_ids:
            return {"episode_id": int(config_id)}
        get_task(task).config(config_id)  # range check
        if self.object_grid is not None:
            xs, ys = self.object_grid
            cell = config_id % (len(xs) * len(ys))
            return {"init_xy": [float(xs[cell // len(ys)]), float(ys[cell % len(ys)])]}
        return {}  # the drawer env opens a close task's drawer 0.2 m itself (CloseDrawerInSceneEnv.reset)


def _google_kwargs(**extra: Any) -> dict[str, Any]:
    """The env kwargs every Google-robot script passes (``scripts/rt1_*_visual_matching.sh``: robot, control mode,
    513 Hz simulation, 3 Hz control, on ``dummy_tabletop`` for 80 steps), with the task's own on top."""
    return {
        "robot": "google_robot_static",
        "control_mode": GOOGLE_CONTROL,
        "sim_freq": 513,
        "control_freq": 3,
        "scene_name": "dummy_tabletop",
        "max_episode_steps": 80,
        **extra,
    }


def _google(orientation: str) -> SapienTask:
    from vla_eval.sims.simpler.real2sim import google_robot as G

    return SapienTask(
        "GraspSingleOpenedCokeCanInScene-v0",
        "google",
        _google_kwargs(**{COKE_ORIENTATION_KWARG[orientation]: True}),
        {"init_xy": [0.35, 0.20], "init_rot_quat": [0, 0, 0, 1]},
        box=GOOGLE_BOX,
        urdf_versions=True,
        object_grid=(G.COKE_GRID_X, G.COKE_GRID_Y),
    )


def _drawer(action: str, level: str) -> SapienTask:
    """rt1_drawer_visual_matching.sh: ``{Open,Close}{Top,Middle,Bottom}DrawerCustomInScene-v0`` with
    ``station_name=mk_station_recolor`` on ``dummy_drawer`` (no table: the cabinet stands on the floor), the robot at
    one of the script's nine poses per configuration (A0 ... C2, ``google_robot.DRAWER_POSES``), 113 steps."""
    from vla_eval.sims.simpler.real2sim import google_robot as G

    return SapienTask(
        f"{action.capitalize()}{level.capitalize()}DrawerCustomInScene-v0",
        "google",
        _google_kwargs(
            scene_name="dummy_drawer",
            station_name="mk_station_recolor",  # the script's --additional-env-build-kwargs
            disable_bad_material=True,
            max_episode_steps=113,
        ),
        {},
        urdf_versions=True,
        robot_poses=G.DRAWER_POSES,
    )


def _apple_in_drawer() -> SapienTask:
    """rt1_put_in_drawer_visual_matching.sh: ``PlaceIntoClosedTopDrawerCustomInScene-v0`` with
    ``station_name=mk_station_recolor``, ``model_ids=baked_apple_v2`` on ``dummy_drawer``, 200 steps; the robot at the
    script's poses A0, B0, C0 and, for each, the apple dropped onto the cabinet top at the 3 x 3 grid
    ``--obj-init-x-range -0.08 -0.02 3 --obj-init-y-range -0.02 0.08 3`` (27 configurations, as the port's). The env
    itself switches to the second instruction after 100 steps (``force_advance_subtask_time_steps``)."""
    from vla_eval.sims.simpler.real2sim import google_robot as G

    cells = len(G.APPLE_GRID_X) * len(G.APPLE_GRID_Y)
    return SapienTask(
        "PlaceIntoClosedTopDrawerCustomInScene-v0",
        "google",
        _google_kwargs(
            scene_name="dummy_drawer",
            station_name="mk_station_recolor",
            disable_bad_material=True,
            model_ids="baked_apple_v2",
            max_episode_steps=200,
        ),
        {},
        urdf_versions=True,
        robot_poses=tuple(p for p in G.DRAWER_POSES if p[0] in G.APPLE_POSES for _ in range(cells)),
        object_grid=(G.APPLE_GRID_X, G.APPLE_GRID_Y),
    )


def _move_near() -> SapienTask:
    """rt1_move_near_visual_matching.sh: MoveNearGoogleBakedTexInScene-v0 (its own -v0 models, which SAPIEN needs only
    as collision meshes), base at (0.35, 0.21) with ``--robot-init-rot-quat-center 0 0 0 1`` turned by
    ``--robot-init-rot-rpy-range ... -0.09 -0.09 1`` (main_inference composes ``euler2quat(0, 0, -0.09) * center``;
    the env's ``_additional_prepackaged_config_reset`` does the same), episodes 0-59 by ``episode_id``, 80 steps."""
    from vla_eval.sims.simpler.real2sim import google_robot as G

    return SapienTask(
        "MoveNearGoogleBakedTexInScene-v0",
        "google",
        _google_kwargs(),
        {"init_xy": [0.35, 0.21], "init_rot_quat": list(G.base_quat(-0.09))},
        box=GOOGLE_BOX,
        urdf_versions=True,
        episode_ids=True,
    )


def _bridge(env_id: str, robot: str = "widowx", init_xy=(0.147, 0.028), steps: int = 60) -> SapienTask:
    return SapienTask(
        env_id,
        "widowx",
        {
            "robot": robot,
            "control_mode": BRIDGE_CONTROL,
            "sim_freq": 500,
            "control_freq": 5,
            "scene_name": "dummy_tabletop",
            "max_episode_steps": steps,
        },
        {"init_xy": list(init_xy), "init_rot_quat": [0, 0, 0, 1]},
        box=BRIDGE_BOX,
        episode_ids=True,
    )


SAPIEN_TASKS: dict[str, SapienTask] = {
    **{f"google_pick_coke_can_{o}": _google(o) for o in COKE_ORIENTATION_KWARG},
    "google_move_near": _move_near(),
    **{f"google_{a}_{lv}_drawer": _drawer(a, lv) for a in ("open", "close") for lv in ("top", "middle", "bottom")},
    "google_place_apple_in_closed_top_drawer": _apple_in_drawer(),
    "bridge_put_spoon_on_towel": _bridge("PutSpoonOnTableClothInScene-v0"),
    "bridge_put_carrot_on_plate": _bridge("PutCarrotOnPlateInScene-v0"),
    "bridge_stack_green_on_yellow": _bridge("StackGreenCubeOnYellowCubeBakedTexInScene-v0"),
    # put_on_in_scene.py PutEggplantInBasketScene: widowx_sink_camera_setup at (0.127, 0.06), 120 steps
    "bridge_put_eggplant_in_basket": _bridge(
        "PutEggplantInBasketScene-v0", "widowx_sink_camera_setup", (0.127, 0.06), 120
    ),
}


def sapien_task(task: str) -> SapienTask:
    from vla_eval.errors import UnknownNameError

    if task not in SAPIEN_TASKS:
        raise UnknownNameError("task on SimplerEnv's SAPIEN engine", task, sorted(SAPIEN_TASKS))
    return SAPIEN_TASKS[task]
