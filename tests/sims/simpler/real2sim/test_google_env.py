"""Google-robot visual matching on SimplerEnv's robot and assets: grid, camera, controller, rule, env contract, expert.

Tests that need the asset pack take the ``simpler_assets`` fixture (tests/conftest.py) and skip elsewhere.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from vla_eval.sims.simpler.real2sim import google_robot as G
from vla_eval.sims.simpler.real2sim import widowx_robot as W
from vla_eval.sims.simpler.real2sim.google_env import (
    GOOGLE_REAL_TASKS,
    SIMPLER_GOOGLE_ACTION,
    GoogleRealEnv,
    build_google_xml,
    native_config,
)
from vla_eval.sims.simpler.real2sim.overlay import foreground_mask
from vla_eval.sims.simpler.tasks import get_task

TASKS = sorted(GOOGLE_REAL_TASKS)
APPLE = "google_place_apple_in_closed_top_drawer"
DRAWER_TASKS = [f"google_{a}_{lv}_drawer" for a in ("open", "close") for lv in ("top", "middle", "bottom")]


@pytest.mark.parametrize(
    "task, quat",
    [
        ("google_pick_coke_can_horizontal", (0, 0, 0, 1)),  # euler2quat(0, 0, pi)
        ("google_pick_coke_can_vertical", (math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4))),
        ("google_pick_coke_can_standing", (math.cos(math.pi / 4), math.sin(math.pi / 4), 0, 0)),
    ],
)
def test_native_grid_is_simplerenvs(task, quat):
    """rt1_pick_coke_can_visual_matching.sh: --obj-init-x -0.35 -0.12 5 --obj-init-y -0.02 0.42 5, x outer, y inner."""
    t = get_task(task)
    assert len(t.configs) == 25 and t.max_steps == 80 and t.success == {"type": "lift", "object": "coke_can"}
    xs, ys = np.linspace(-0.35, -0.12, 5), np.linspace(-0.02, 0.42, 5)
    for i in range(25):
        xy, q = native_config(t, i)["coke_can"]
        np.testing.assert_allclose(xy, [xs[i // 5], ys[i % 5]], atol=1e-12)
        np.testing.assert_allclose(q, quat, atol=1e-12)
    with pytest.raises(IndexError):
        native_config(t, 25)


def test_move_near_placements_are_simplerenvs():
    """move_near_in_scene.py reset: triplet = episode // 12, pair = episode % 6, triangle = (episode % 12) // 6;
    obj_init_quat_dict rotations; robot base at (0.35, 0.21) turned by euler2quat(0, 0, -0.09) * [0, 0, 0, 1]."""
    t = get_task("google_move_near")
    assert len(t.configs) == 60 and t.max_steps == 80
    triangles = (((-0.33, 0.04), (-0.33, 0.34), (-0.13, 0.19)), ((-0.13, 0.04), (-0.33, 0.19), (-0.13, 0.34)))
    c0 = native_config(t, 0)
    assert list(c0) == ["blue_plastic_bottle", "pepsi_can", "orange"]
    for (xy, _), want in zip(c0.values(), triangles[0]):
        np.testing.assert_allclose(xy, want)
    np.testing.assert_allclose(c0["blue_plastic_bottle"][1], [0.5, 0.5, 0.5, 0.5])  # euler2quat(pi/2, 0, pi/2)
    c57 = native_config(t, 57)  # triplet 4 (orange, pepsi, redbull), triangle 1
    assert list(c57) == ["orange", "pepsi_can", "redbull_can"]
    for (xy, _), want in zip(c57.values(), triangles[1]):
        np.testing.assert_allclose(xy, want)
    assert t.configs[57].instruction == "move pepsi can near redbull can"
    q = G.base_quat(G.BASE_YAW_MOVE_NEAR)  # transforms3d: euler2quat(0, 0, -0.09) * (0, 0, 0, 1)
    np.testing.assert_allclose(q, [math.sin(0.045), 0, 0, math.cos(0.045)], atol=1e-12)
    assert G.base_quat(0.0) == G.BASE_QUAT


def test_overhead_camera_axes_and_fov():
    """SAPIEN q (0.5, 0.5, -0.5, 0.5) on link_camera: forward = link z, left = -link x, up = -link y (OpenCV frame)."""
    rot = W.sapien_camera_axes(("quat", G.CAMERA_QUAT))
    np.testing.assert_allclose(rot[:, 0], [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(rot[:, 1], [-1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(rot[:, 2], [0, -1, 0], atol=1e-12)
    assert G.fovy_degrees() == pytest.approx(2 * math.degrees(math.atan(256 / 425)))
    assert G.urdf_for("") == G.URDF and G.urdf_for("recolor_cabinet_visual_matching_1").endswith(
        "_recolor_cabinet_visual_matching_1.urdf"
    )
    with pytest.raises(ValueError, match="urdf_version"):
        G.urdf_for("recolor_sim_2")


def test_suite_matches_the_panda_look_suite():
    from vla_eval.spec import load_suite

    real, panda = load_suite("simpler_google_vm_real"), load_suite("simpler_google_vm_panda")
    steps = {t.name: t.max_steps for t in panda.tasks}
    assert [t.name for t in real.tasks] == [n for n in steps if n in GOOGLE_REAL_TASKS]
    assert all(t.max_steps == steps[t.name] for t in real.tasks)
    assert {t.name: t.max_steps for t in real.tasks if "drawer" in t.name} == {
        **{n: 113 for n in DRAWER_TASKS},
        APPLE: 200,
    }
    assert real.success_rule == panda.success_rule == "final_step"
    assert {t.name: real.task_episodes(t.name) for t in real.tasks} == {
        **{f"google_pick_coke_can_{o}": 25 for o in ("horizontal", "vertical", "standing")},
        "google_move_near": 60,
        **{n: 9 for n in DRAWER_TASKS},
        "google_place_apple_in_closed_top_drawer": 27,
    }
    assert real.backend_options["task_groups"]["move near"] == ["google_move_near"]
    assert real.backend_options["task_groups"]["open drawer"] == [
        f"google_open_{lv}_drawer" for lv in ("top", "middle", "bottom")
    ]
    assert [s.name for s in real.splits] == ["default", *G.URDF_VERSIONS[1:]]
    engine = load_suite("simpler_google_vm")  # SimplerEnv's own engine: the same tasks, episodes and colourings
    assert [s.name for s in engine.splits] == [s.name for s in real.splits]
    assert {t.name: (t.max_steps, engine.task_episodes(t.name)) for t in engine.tasks} == {
        t.name: (t.max_steps, real.task_episodes(t.name)) for t in real.tasks
    }
    assert engine.backend_options["task_groups"] == real.backend_options["task_groups"]


@pytest.fixture
def google_env(make_real_env):
    return lambda task, **kw: make_real_env(GoogleRealEnv, task, **kw)


@pytest.mark.slow
def test_start_pose_camera_and_composite(google_env):
    """SimplerEnv's start: base at (0.35, 0.20) turned 180 degrees, head at its init tilt; the can is in view, on
    the photo's table, and every pixel outside robot and can (but antialiased edges) is the photo."""
    env = google_env("google_pick_coke_can_standing", image_size=(512, 640))
    obs, info = env.reset(seed=0, options={"config_id": 12})
    assert not info["success"]
    base = env.data.xpos[env._base]
    np.testing.assert_allclose(base, [0.35, 0.20, G.BASE_Z], atol=1e-6)
    np.testing.assert_allclose(env.data.qpos[env._head_q], G.INIT_QPOS[-2:], atol=1e-3)
    m, d = env.model, env.data
    table = m.geom("table").id
    assert any(
        {int(c.geom1), int(c.geom2)} & env._obj_geoms["coke_can"] and table in (c.geom1, c.geom2)
        for c in d.contact[: d.ncon]
    )
    assert np.linalg.norm(d.qvel[m.joint("coke_can_free").dofadr[0] :][:3]) < 0.01  # settled on the table top
    frame = obs["images"]["agentview"]
    _, seg_r = env._renderers()
    seg_r.update_scene(env.data, camera=env._cam, scene_option=env._opt)
    seg = seg_r.render()
    fg = foreground_mask(seg, env._foreground)
    # frame and segmentation at SimplerEnv's 640x512 here; the one-pass mask differs only at antialiased edges
    assert (np.any(frame != env._photo, axis=2) != fg).mean() < 0.003
    can_px = foreground_mask(seg, env._obj_geoms["coke_can"])
    assert can_px.sum() > 500
    rows, cols = np.nonzero(can_px)
    assert 100 < rows.mean() < 400 and 100 < cols.mean() < 540  # the grid's centre lies mid-view, on the table
    # the lift rule, as SimplerEnv's evaluate: resting on the table no;
    # 5 cm up touching nothing but the robot yes (the latch needs no grasp; losing a grasp only resets it)
    import mujoco

    assert not env._evaluate()
    adr = m.joint("coke_can_free").qposadr[0]
    d.qpos[adr + 2] += 0.05
    mujoco.mj_forward(m, d)
    assert env._evaluate() and env._stats["lift_height"] > 0.04 and not env._stats["is_grasped"]


@pytest.mark.slow
@pytest.mark.parametrize("version", ["", "recolor_tabletop_visual_matching_1"])
def test_arm_is_drawn_with_its_colourings_texture_atlas(google_env, version):
    """SAPIEN maps each colouring's texture atlas (``3obj*/meta_diffuse.png``) and the fingers' own textures onto the
    robot through the OBJs' texture coordinates. Drawn in one colour (the mean of the texture), the finger showed one
    chromaticity (0.3% of its pixels off the median by > 0.02) where its texture has grey ribs on a yellow body."""
    env = google_env("google_pick_coke_can_horizontal", image_size=(512, 640), urdf_version=version)
    m = env.model
    folder = "3obj" if not version else f"3obj_{version}"
    arm = [g for g in env._robot_geoms if m.geom_group[g] == 2 and m.body(m.geom_bodyid[g]).name == "link_forearm"]
    assert arm and all(m.geom_matid[g] >= 0 for g in arm)
    tex = m.mat_texid[m.geom_matid[arm[0]]][1]  # mjTEXROLE_RGB
    assert tex >= 0 and m.tex(tex).name.endswith("meta_diffuse")
    xml, _ = build_google_xml(env.assets, env.task, env.real, version)
    assert f"googlerobot_description/{folder}/meta_diffuse.png" in xml
    obs, _ = env.reset(seed=0, options={"config_id": 0})
    frame = obs["images"]["agentview"]
    _, seg_r = env._renderers()
    seg_r.update_scene(env.data, camera=env._cam, scene_option=env._opt)
    finger = m.body("link_finger_left").id
    mask = foreground_mask(seg_r.render(), {g for g in env._robot_geoms if m.geom_bodyid[g] == finger})
    assert mask.sum() > 1000
    px = frame[mask].astype(float)
    chroma = px / np.maximum(px.sum(axis=1, keepdims=True), 1.0)
    off = np.abs(chroma - np.median(chroma, axis=0)).max(axis=1) > 0.02
    assert off.mean() > 0.2


@pytest.mark.slow
def test_controller_base_frame_and_relative_gripper(google_env):
    env = google_env("google_pick_coke_can_horizontal", cameras=())
    env.reset(seed=0, options={"config_id": 12})
    p0, _ = env.ee_pose_at_base()
    w0 = env.data.xpos[env._ee].copy()
    for _ in range(2):
        env.step(np.array([0.03, 0, 0, 0, 0, 0, 0.0]))
    p1, _ = env.ee_pose_at_base()
    moved = p1 - p0
    # SimplerEnv's gains (kd / kp ~ 0.6 s, zero velocity target, the target re-based on the measured pose each step)
    # make the arm lag its commands: it moves along +x of the base, less than the 0.06 m asked within 2/3 s
    assert 0.01 < moved[0] < 0.06 and abs(moved[0]) > 3 * np.abs(moved[1:]).max()
    assert env.data.xpos[env._ee][0] - w0[0] == pytest.approx(-moved[0], abs=1e-3)  # base turned 180 degrees


SAPIEN_CLOSE = (0.192, 0.525, 0.859, 1.073)
"""SimplerEnv's own engine (benchmarks/simpler_parity.py, configuration 12, nothing between the fingers): finger joint
after each of the four control steps that follow one full-close command, then stopped by the fingertips touching."""


def test_finger_planner_follows_simplerenvs_profile_target_and_threshold():
    pytest.importorskip("ruckig")
    from vla_eval.sims.simpler.real2sim.google_env import FingerPlanner

    n = round(G.SIM_HZ / G.CONTROL_HZ)
    p = FingerPlanner(n, 1.0 / G.SIM_HZ)
    p.set_action(1.0, np.zeros(2), np.zeros(2))
    assert p.target == pytest.approx([1.31, 1.31])  # clip_target: joint limit 1.3 + clip_target_thres 0.01
    assert p.path[-1] == pytest.approx([0.1919, 0.1919], abs=1e-4)  # Ruckig, 1 rad/s, 7 rad/s^2, 50 rad/s^3
    assert np.abs(np.diff(p.path[:, 0])).max() * G.SIM_HZ <= 1.0 + 1e-6
    assert p.vel[0] == pytest.approx([0.0, 0.0]) and p.vel[-1] == pytest.approx([1.0, 1.0])
    for k in range(1, n + 1):
        p.drive_at(k)
    # a tiny action (|1.31 a| < 1e-3 rad) keeps the goal; the planner restarts from the measured state
    p.set_action(5e-4, np.full(2, 0.19), np.full(2, 1.0))
    assert p.target == pytest.approx([1.31, 1.31])
    assert p.path[-1] == pytest.approx([0.19 + 1 / 3, 0.19 + 1 / 3], abs=1e-3)  # already at the velocity limit
    # a small one that SimplerEnv acts on (the old 0.01 threshold ignored it) is added to the last *drive* target
    drive = p.path[-1].copy()
    for k in range(1, n + 1):
        p.drive_at(k)
    p.set_action(-0.005, drive, np.zeros(2))
    assert p.target == pytest.approx(drive - 0.005 * 1.31)
    assert p.path[-1] == pytest.approx(drive - 0.005 * 1.31, abs=1e-6)


@pytest.mark.slow
def test_gripper_closes_and_opens_in_simplerenvs_control_steps(google_env):
    env = google_env("google_pick_coke_can_horizontal", cameras=())
    env.reset(seed=0, options={"config_id": 12})
    close = np.zeros(7)
    close[6] = 1.0
    fingers = []
    for i in range(6):
        env.step(close if i == 0 else np.zeros(7))
        fingers.append(env.data.qpos[env._finger_q].copy())
    fingers = np.array(fingers)
    # a linear ramp inside one step (the old port) reached 1.22 rad after one step and the 1.3 limit after two
    assert fingers[:4].mean(axis=1) == pytest.approx(SAPIEN_CLOSE, abs=0.02)
    # the fingertips meet, as in PhysX: the hand stops short of the joint limit and holds there
    assert np.abs(fingers[3:] - SAPIEN_CLOSE[3]).max() < 0.03
    assert env._gripper_target == pytest.approx(1.31)
    opened = []
    for i in range(4):
        env.step(-close if i == 0 else np.zeros(7))
        opened.append(env.data.qpos[env._finger_q].mean())
    assert opened[0] > 0.8 and opened[1] > 0.4 and opened[2] > 0.1  # SimplerEnv: 0.88, 0.55, 0.22, 0.0
    assert abs(opened[3]) < 0.005  # stops at the joint limit (-0.0001) though the target is 0.01 past it
    assert env._gripper_target == pytest.approx(-0.0101)


@pytest.mark.slow
def test_check_env_and_contract(google_env):
    env = google_env(
        "google_pick_coke_can_vertical", image_size=(64, 64), urdf_version="recolor_tabletop_visual_matching_2"
    )
    check_env(env, skip_render_check=True)
    assert env.native_action_space == SIMPLER_GOOGLE_ACTION
    from vla_eval.sims.contract import check_observation

    obs, _ = env.reset(seed=0, options={"config_id": 3})
    assert check_observation(obs, env) == []


@pytest.mark.slow
@pytest.mark.parametrize(
    "task, config", [("google_pick_coke_can_horizontal", 0), ("google_pick_coke_can_standing", 24)]
)
def test_expert_succeeds_and_noop_does_not(google_env, task, config):
    from vla_eval.sims.simpler.expert import SimplerScriptedExpert

    env = google_env(task, cameras=())
    results = {}
    for who in ("expert", "noop"):
        env.reset(seed=0, options={"config_id": config})
        expert = SimplerScriptedExpert()
        expert.reset([env.instruction])
        for _ in range(env.task.max_steps):
            if who == "expert":
                chunk = expert.predict([{"privileged": env.privileged_state()}])
                assert chunk.space == SIMPLER_GOOGLE_ACTION
                action = chunk.actions[0, 0]
            else:
                action = np.zeros(7)
            _, _, success, _, info = env.step(action)
            if who == "expert" and env.is_grasped("coke_can"):
                frictions = contact_frictions(env, "coke_can")
        results[who] = (success, info["n_lift_significant"] >= 5)
    assert results == {"expert": (True, True), "noop": (False, False)}
    # PhysX's averaged coefficients (MuJoCo's own rule, the larger one, gave 2.0 and 0.5)
    assert frictions.get("link_finger_left") == pytest.approx(1.25) or frictions.get("link_finger_tip_left") == 1.25
    env.reset(seed=0, options={"config_id": config})
    assert contact_frictions(env, "coke_can")["world"] == pytest.approx(0.75)  # can on table


def contact_frictions(env, obj: str) -> dict[str, float]:
    """Sliding friction of each contact the object makes, by the other geom's body name."""
    m, d = env.model, env.data
    own = env._obj_geoms[obj]
    out = {}
    for c in d.contact[: d.ncon]:
        g1, g2 = int(c.geom1), int(c.geom2)
        if (g1 in own) != (g2 in own):
            other = g2 if g1 in own else g1
            out[m.body(int(m.geom_bodyid[other])).name] = float(c.friction[0])
    return out


@pytest.mark.slow
def test_picture_first_frames_beside_simplerenvs_photo(simpler_assets, mesh_cache, tmp_path, monkeypatch):
    """[our first frame | SimplerEnv's overlay photo of the task] per Google-robot task, configuration 0; written
    to $VLA_EVAL_PICTURES if set (else a temp folder); committed copies live in docs/simpler_vm/."""
    import os
    from pathlib import Path

    from PIL import Image

    from vla_eval.sims.simpler.real2sim.pictures import first_frames

    monkeypatch.setenv("VLA_EVAL_CACHE", str(mesh_cache))
    out = Path(os.environ.get("VLA_EVAL_PICTURES") or tmp_path / "pictures")
    paths = first_frames(out, tasks=TASKS, scale=0.5)
    assert sorted(p.name for p in paths) == sorted(f"{t}_config0.png" for t in TASKS)
    for task, path in zip(TASKS, paths):
        photo = np.asarray(
            Image.open(simpler_assets / "data" / GOOGLE_REAL_TASKS[task].overlay).convert("RGB").resize((320, 256))
        )
        pair = np.asarray(Image.open(path).convert("RGB"))
        assert pair.shape == (256, 640, 3)
        ours, theirs = pair[:, :320].astype(int), pair[:, 320:].astype(int)
        assert np.abs(theirs - photo).mean() < 3
        same = np.abs(ours - theirs).max(axis=2) < 12
        if "drawer" in task:  # the cabinet, drawn in simulation, covers a third of the view
            assert 0.3 < same.mean() < 0.8
        else:
            assert 0.6 < same.mean() < 0.99  # the photo around the robot's arm and the can


@pytest.mark.slow
def test_move_near_expert_places_beside_the_target_and_noop_moves_nothing(google_env):
    """Configurations 0-5: the bottle / pepsi can / orange triplet, every (source, target) pair on triangle 0;
    the five objects of the other triplets are parked (out of the rule and of the picture)."""
    from vla_eval.sims.simpler.expert import SimplerScriptedExpert

    env = google_env("google_move_near", cameras=())
    wins = 0
    for config in range(6):
        env.reset(seed=0, options={"config_id": config})
        assert env._episode_objects == ["blue_plastic_bottle", "pepsi_can", "orange"]
        assert env.instruction == env.task.configs[config].instruction
        expert = SimplerScriptedExpert()
        expert.reset([env.instruction])
        for _ in range(env.task.max_steps):
            _, _, success, _, info = env.step(expert.predict([{"privileged": env.privileged_state()}]).actions[0, 0])
        wins += int(success)
    # 4: the bottle as source (configurations 0, 1) slips since the bottle collides as its two convex pieces
    assert wins >= 4, f"expert solved {wins} of 6"
    env.reset(seed=0, options={"config_id": 0})
    for _ in range(env.task.max_steps):
        _, _, success, _, info = env.step(np.zeros(7))
    assert not success and not info["moved_correct_obj"] and info["all_obj_keep_height"]


def test_run_table_has_simplerenvs_group_aggregate_for_the_real_suite():
    """The three coke-can orientations are one calc_metrics group ("pick coke can"), averaged over every
    (orientation, colouring) cell; a task_groups entry naming a task the suite lacks is refused."""
    import pandas as pd

    from vla_eval.backends import get_backend
    from vla_eval.errors import ConfigError
    from vla_eval.spec import load_suite

    spec = load_suite("simpler_google_vm_real")
    rows = [
        {"task": f"google_pick_coke_can_{o}", "split": s.name, "n": 25, "successes": k, "rate": k / 25}
        for o, k in (("horizontal", 25), ("vertical", 20), ("standing", 15))
        for s in spec.splits
    ]
    rows += [{"task": "google_move_near", "split": s.name, "n": 60, "successes": 54, "rate": 0.9} for s in spec.splits]
    md = get_backend("simpler_real").protocol_summary(spec, pd.DataFrame(rows))
    assert md.startswith("Visual matching:")
    assert "| pick coke can | 80.0 | 12 | 300 |" in md and "| move near | 90.0 | 4 | 240 |" in md
    data = spec.model_dump(mode="json")
    data["backend_options"]["task_groups"]["spoon"] = ["bridge_put_spoon_on_towel"]  # not in this suite
    with pytest.raises(ConfigError, match="task_groups.spoon"):
        from vla_eval.spec import SuiteSpec

        get_backend("simpler_real").validate_suite(SuiteSpec.model_validate(data), "suite.yaml")


# --------------------------------------------------------------------------- drawers
# scripts/rt1_drawer_visual_matching.sh, written out again here: (overlay, --robot-init-x, --robot-init-y, yaw)
SCRIPT_POSES = [
    ("a0", 0.644, -0.179, -0.03),
    ("a1", 0.765, -0.182, -0.02),
    ("a2", 0.889, -0.203, -0.06),
    ("b0", 0.652, 0.009, 0.0),
    ("b1", 0.752, 0.009, 0.0),
    ("b2", 0.851, 0.035, 0.0),
    ("c0", 0.665, 0.224, 0.0),
    ("c1", 0.765, 0.222, -0.025),
    ("c2", 0.865, 0.222, -0.025),
]


@pytest.mark.parametrize("task", ["google_open_middle_drawer", "google_close_bottom_drawer"])
def test_drawer_scene_poses_photos_and_start(google_env, task):
    """Episode i stands the robot at the script's pose i with its own photo; the cabinet is SimplerEnv's
    mk_station_recolor at (-0.295, 0, 0.017), drawn in simulation in its URDF colour (linear -> sRGB); a close
    task starts with its drawer 0.2 m out and the others shut; no table (dummy_drawer)."""
    from vla_eval.sims.simpler.real2sim.google_env import station_joint
    from vla_eval.sims.simpler.real2sim.urdf import srgb_from_linear

    env = google_env(task, image_size=(64, 64), render_scale=0.25)
    m, d = env.model, env.data
    level = task.split("_")[2]
    with pytest.raises(KeyError):
        m.geom("table")
    for config in (0, 2, 6, 8):
        _, info = env.reset(seed=0, options={"config_id": config})
        name, x, y, yaw = SCRIPT_POSES[config]
        assert info["overlay"] == f"real_inpainting/open_drawer_{name}.png" == env.overlay
        np.testing.assert_allclose(d.xpos[env._base], [x, y, G.BASE_Z], atol=1e-9)
        half = (math.pi + yaw) / 2  # euler2quat(0, 0, yaw) * [0, 0, 0, 1]
        np.testing.assert_allclose(d.xquat[env._base], [math.cos(half), 0, 0, math.sin(half)], atol=1e-9)
        np.testing.assert_allclose(d.xpos[m.body("cabinet_body").id], [-0.295, 0.0, 0.017], atol=1e-9)
        qs = {lv: float(d.qpos[m.joint(station_joint(lv)).qposadr[0]]) for lv in ("top", "middle", "bottom")}
        want = {lv: (0.2 if lv == level and "close" in task else 0.0) for lv in qs}
        assert qs == pytest.approx(want, abs=2e-3)  # after SimplerEnv's settle, the damped drawers stay put
        assert info["qpos"] == pytest.approx(want[level], abs=2e-3) and not info["success"]
    front = next(
        g
        for g in range(m.ngeom)
        if m.body(int(m.geom_bodyid[g])).name == f"cabinet_{level}_drawer"
        and m.geom_group[g] == 2
        and abs(m.geom_size[g][0] - 0.0075) < 1e-9
    )
    np.testing.assert_allclose(m.geom_rgba[front][:3], [srgb_from_linear(c) for c in (0.325, 0.187, 0.1166)], atol=1e-6)
    frame = env.render_native()  # the cabinet is foreground: its pixels are not the photo's
    assert (np.abs(frame.astype(int) - env._photo.astype(int)).max(axis=2) > 12).mean() > 0.2


@pytest.mark.parametrize(
    "kind, q, ok",
    [
        ("drawer_open", 0.149, False),
        ("drawer_open", 0.151, True),
        ("drawer_close", 0.051, False),
        ("drawer_close", 0.049, True),
    ],
)
def test_drawer_rule_thresholds(google_env, kind, q, ok):
    """open_drawer_in_scene.py evaluate: open = qpos >= 0.15, close = qpos <= 0.05, on the task's drawer joint only."""
    from vla_eval.sims.simpler.real2sim.google_env import station_joint

    task = "google_open_top_drawer" if kind == "drawer_open" else "google_close_top_drawer"
    env = google_env(task, cameras=())
    env.reset(seed=0, options={"config_id": 4})
    m, d = env.model, env.data
    d.qpos[m.joint(station_joint("top")).qposadr[0]] = q
    d.qpos[m.joint(station_joint("middle")).qposadr[0]] = 0.3 if kind == "drawer_open" else 0.0  # another drawer
    assert env._evaluate() is ok and env._stats["qpos"] == pytest.approx(q)


@pytest.mark.slow
@pytest.mark.parametrize("task, config", [("google_open_bottom_drawer", 2), ("google_close_top_drawer", 6)])
def test_drawer_expert_succeeds_and_noop_does_not(google_env, task, config):
    """Pose A2 (the farthest, the bottom drawer at the arm's reach) and pose C0; the expert hooks behind the front
    plate (the handles have no collision shape) or pushes it; noop leaves the drawer where it started."""
    from vla_eval.sims.simpler.expert import SimplerScriptedExpert

    env = google_env(task, cameras=())
    results = {}
    for who in ("expert", "noop"):
        env.reset(seed=0, options={"config_id": config})
        expert = SimplerScriptedExpert()
        expert.reset([env.instruction])
        for _ in range(env.task.max_steps):
            action = (
                expert.predict([{"privileged": env.privileged_state()}]).actions[0, 0]
                if who == "expert"
                else np.zeros(7)
            )
            _, _, success, _, info = env.step(action)
        results[who] = (success, round(info["qpos"], 1))
    start = 0.2 if "close" in task else 0.0
    assert results["expert"][0] and not results["noop"][0]
    assert results["noop"][1] == start and abs(results["expert"][1] - start) >= 0.15


def test_apple_placements_poses_and_subtask_switch(google_env):
    """rt1_put_in_drawer_visual_matching.sh: poses A0, B0, C0 (outer), apple x in linspace(-0.08, -0.02, 3) then
    y in linspace(-0.02, 0.08, 3), on the cabinet top; the instruction turns at step 101 (SimplerEnv advances the
    subtask once 100 steps have elapsed), and the rule needs that second subtask."""
    t = get_task(APPLE)
    assert len(t.configs) == 27 and t.max_steps == 200
    env = google_env(APPLE, cameras=())
    xs, ys = np.linspace(-0.08, -0.02, 3), np.linspace(-0.02, 0.08, 3)
    for config in (0, 5, 13, 26):
        name, x, y, _ = {0: SCRIPT_POSES[0], 1: SCRIPT_POSES[3], 2: SCRIPT_POSES[6]}[config // 9]
        _, info = env.reset(seed=0, options={"config_id": config})
        assert info["overlay"] == f"real_inpainting/open_drawer_{name}.png"
        np.testing.assert_allclose(env.data.xpos[env._base][:2], [x, y], atol=1e-9)
        apple = env.privileged_state()["apple_pos"]
        j = config % 9
        np.testing.assert_allclose(apple[:2], [xs[j // 3], ys[j % 3]], atol=2e-3)  # settled on the cabinet top
        assert 0.882 < apple[2] < 0.882 + 0.08
    env.reset(seed=0, options={"config_id": 0})
    instructions = []
    for _ in range(102):
        obs, _, success, _, info = env.step(np.zeros(7))
        instructions.append(obs["instruction"])
    assert instructions[99] == "open top drawer" and instructions[100] == "place apple into top drawer"
    assert info["subtask"] == 1 and not success and info["has_contact"] == 0


def test_apple_rule_counts_drawer_floor_contacts(google_env):
    """Success = second subtask, drawer >= 0.05 m, and the apple has touched the drawer's interior bottom (SimplerEnv's
    collision shape 2 of the drawer link) at least once; touching the cabinet top does not count."""
    from vla_eval.sims.simpler.real2sim.google_env import station_joint

    env = google_env(APPLE, cameras=())
    env.reset(seed=0, options={"config_id": 4})
    m, d = env.model, env.data
    top = m.joint(station_joint("top")).qposadr[0]
    adr = m.joint("apple_free").qposadr[0]
    for _ in range(3):  # lying on the cabinet top: no count
        env.step(np.zeros(7))
    assert env._stats["has_contact"] == 0
    d.qpos[top] = 0.25
    floor = d.geom_xpos[m.geom("cabinet_top_drawer/drawer_interior_bottom_collision").id]
    d.qpos[adr : adr + 3] = [floor[0] + 0.2, floor[1], floor[2] + 0.01 + 0.045]  # on the exposed part of the floor
    d.qvel[:] = 0
    env.step(np.zeros(7))
    assert env._stats["has_contact"] >= 1 and not env._stats["subtask"] and env._evaluate() is False
    env.advance_to_next_subtask()
    assert env._evaluate() is True
    d.qpos[top] = 0.04  # drawer pushed back in below 0.05 m: fails although the contact was counted
    assert env._evaluate() is False


@pytest.mark.slow
def test_apple_expert_succeeds_and_noop_does_not(google_env):
    from vla_eval.sims.simpler.expert import SimplerScriptedExpert

    env = google_env(APPLE, cameras=())
    results = {}
    for who in ("expert", "noop"):
        obs, _ = env.reset(seed=0, options={"config_id": 13})
        expert = SimplerScriptedExpert()
        expert.reset([env.instruction])
        instruction = obs["instruction"]
        for _ in range(env.task.max_steps):
            if obs["instruction"] != instruction:  # as the harness (and SimplerEnv's evaluator): a reset on the switch
                instruction = obs["instruction"]
                expert.reset([instruction])
            action = (
                expert.predict([{"privileged": env.privileged_state()}]).actions[0, 0]
                if who == "expert"
                else np.zeros(7)
            )
            obs, _, success, _, info = env.step(action)
        results[who] = (success, info["has_contact"] > 0)
    assert results == {"expert": (True, True), "noop": (False, False)}


@pytest.mark.slow
def test_objects_are_damped_as_physx_damps_them(google_env):
    """SimplerEnv's ``set_damping(0.1, 0.1)``: a can moving freely (no gravity, no contacts) loses its speed as
    ``exp(-0.1 t)`` and a spinning one its kinetic energy as ``exp(-0.2 t)``, whatever its mass (the port applied no
    damping before: both stayed constant)."""
    import mujoco

    env = google_env("google_pick_coke_can_standing", cameras=())
    env.reset(seed=0, options={"config_id": 0})
    m, d = env.model, env.data
    m.opt.gravity[:] = 0.0
    m.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_CONTACT
    m.opt.enableflags |= mujoco.mjtEnableBit.mjENBL_ENERGY
    dof = m.joint(f"{env._obj_names[0]}_free").dofadr[0]
    one_second = int(round(1.0 / m.opt.timestep))
    d.qvel[:] = 0.0
    d.qvel[dof] = 1.0
    mujoco.mj_step(m, d, nstep=one_second)
    assert d.qvel[dof] == pytest.approx(np.exp(-0.1), rel=0.01)
    d.qvel[:] = 0.0
    d.qvel[dof + 3 : dof + 6] = [0.5, -1.0, 2.0]
    mujoco.mj_forward(m, d)
    before = d.energy[1]
    mujoco.mj_step(m, d, nstep=one_second)
    mujoco.mj_forward(m, d)
    assert d.energy[1] / before == pytest.approx(np.exp(-0.2), rel=0.03)


@pytest.mark.slow
def test_google_scene_settles_with_the_object_locked_upright_first(google_env, monkeypatch):
    """SimplerEnv locks the object's x / y rotation for the first 0.5 s of the settle (grasp_single_in_scene.py
    L300-305): during that time the can never turns about a horizontal axis."""
    import mujoco

    from vla_eval.sims.simpler.real2sim.google_env import GoogleRealEnv

    assert GoogleRealEnv.settle_lock_s == 0.5
    env = google_env("google_pick_coke_can_horizontal", cameras=())
    tilts: list[float] = []
    real_step = mujoco.mj_step

    def watch(m, d, nstep=1):  # the can's horizontal spin as each step starts (after the lock's zeroing)
        name = env._obj_names[0]
        dof = m.joint(f"{name}_free").dofadr[0]
        rot = d.xmat[m.body(name).id].reshape(3, 3)
        tilts.append(float(np.linalg.norm((rot @ d.qvel[dof + 3 : dof + 6])[:2])))
        real_step(m, d, nstep)

    monkeypatch.setattr(mujoco, "mj_step", watch)
    env.reset(seed=0, options={"config_id": 12})
    locked = int(0.5 * env.robot.SIM_HZ)
    assert len(tilts) > locked and max(tilts[: locked + 1]) < 1e-9


@pytest.mark.slow
def test_arm_holds_still_when_its_ik_finds_no_solution(google_env):
    """SimplerEnv's ``PDEEPoseController.set_action`` keeps the joints where they are when IK reports no solution
    (``pd_ee_pose.py`` L114-116); the port used to move the arm as far as the clamped IK got. A target 0.6 m out of
    reach leaves every joint in place; the next reachable step moves the hand again."""
    env = google_env("google_pick_coke_can_standing", cameras=())
    obs, _ = env.reset(options={"config_id": 0})
    q0, p0 = obs["state"]["joint_pos"].copy(), obs["state"]["eef_pos"].copy()
    obs, *_ = env.step([0.6, 0, 0, 0, 0, 0, 0])
    assert env.ik_failures == 1 and not env.last_ik_ok
    np.testing.assert_allclose(obs["state"]["joint_pos"], q0, atol=1e-4)
    obs, *_ = env.step([0.02, 0, 0, 0, 0, 0, 0])
    assert env.ik_failures == 1 and np.linalg.norm(obs["state"]["eef_pos"] - p0) > 0.003


@pytest.mark.slow
def test_arm_goal_past_a_joint_limit_stays_there_as_pinocchios_does(google_env):
    """SimplerEnv's IK (pinocchio's CLIK) ignores the joint limits: a target that needs the wrist past its 1.79 rad
    limit gets a goal past it, and the limit then stops the wrist while the other joints keep theirs, so the hand falls
    short (move near's far objects). The port used to clamp inside its IK, letting the other joints make up for the
    wrist and reach targets SAPIEN's arm never reaches."""
    import mujoco

    env = google_env("google_move_near", cameras=())
    env.reset(seed=0, options={"config_id": 0})
    m, d = env.model, env.data
    wrist = list(G.ARM_JOINTS).index("joint_wrist")
    lo, hi = m.jnt_range[m.joint("joint_wrist").id]
    q = d.qpos[env._arm_q].copy()
    q[wrist] = hi + 0.08
    saved = d.qpos.copy()
    d.qpos[env._arm_q] = q
    mujoco.mj_kinematics(m, d)
    pos, mat = env.ee_pose_at_base()
    d.qpos[:] = saved
    d.qpos[env._arm_q[wrist]] = hi - 0.02
    mujoco.mj_forward(m, d)
    goal = env._ik_or_hold(pos, mat)
    assert env.last_ik_ok
    assert goal[wrist] > hi + 0.02, f"wrist goal {goal[wrist]:.3f} clamped to the limit {hi:.3f}"


@pytest.mark.slow
def test_arm_joint_limit_is_hard_as_physx_makes_it(google_env):
    """A drive target past an arm joint's limit (pinocchio's IK goals may be) leaves the joint at the limit, as PhysX's
    hard limits do (SAPIEN stops the forearm at -2.919 against its -2.92 limit at close-bottom-drawer pose B0). With
    MuJoCo's default soft limit the 100 N drive pushed it 0.28 rad past, and the hand reached what SAPIEN's cannot."""
    import mujoco

    env = google_env("google_close_bottom_drawer", cameras=())
    env.reset(seed=0, options={"config_id": 3})
    m, d = env.model, env.data
    jid = m.joint("joint_forearm").id
    lo, _ = m.jnt_range[jid]
    (act,) = [a for a in range(m.nu) if m.actuator_trnid[a, 0] == jid]
    d.ctrl[act] = lo - 0.3  # 0.3 rad past: the drive pushes with its full 100 N m until the joint is 0.08 rad past
    for _ in range(int(3.0 / m.opt.timestep)):
        mujoco.mj_step(m, d)
    assert d.qpos[m.jnt_qposadr[jid]] > lo - 0.03  # the soft limit settled 0.29 rad past, under 16 N m


def test_arm_planner_is_simplerenvs_jerk_limited_ruckig_path():
    """``arm_pd_ee_delta_pose_align_interpolate_by_planner``: each control step's joint targets follow one Ruckig path
    (1.5 rad/s, 2 rad/s^2, 50 rad/s^3) that starts where the previous step's path ended, at its velocity. The linear,
    velocity-limited ramp it replaced jumped to full speed in the first substep and restarted from rest each step,
    which put the port's arm about 0.7 control steps ahead of SAPIEN's."""
    pytest.importorskip("ruckig")
    from vla_eval.sims.simpler.real2sim.google_env import ArmPlanner

    n, dt = round(G.SIM_HZ / G.CONTROL_HZ), 1.0 / G.SIM_HZ
    p = ArmPlanner(n, dt)
    p.set_goal(np.full(7, 1.0), np.zeros(7), np.zeros(7))
    path = np.array([p.drive_at(k) for k in range(n + 1)])
    v = np.diff(path[:, 0]) / dt
    a = np.diff(v) / dt
    assert v.max() <= G.ARM_VEL_LIMIT + 1e-6 and np.abs(a).max() <= G.ARM_ACC_LIMIT + 1e-2
    assert np.abs(np.diff(a)).max() / dt <= G.ARM_JERK_LIMIT + 1.0
    # from rest: jerk-limited acceleration to 2 rad/s^2, so after 1/3 s about a * t^2 / 2 less the jerk ramp
    assert path[-1, 0] == pytest.approx(0.5 * 2.0 * (1 / 3) ** 2 - 2.0 * (1 / 3) * 0.04 / 2, abs=2e-3)
    end_v = p.vel[-1].copy()
    # the next step continues from the end of this path at its velocity, not from the measured joints at rest
    p.set_goal(np.full(7, 1.0), np.zeros(7), np.zeros(7))
    assert p.path[0] == pytest.approx(path[-1]) and p.vel[0] == pytest.approx(end_v)
    assert p.path[1, 0] - p.path[0, 0] == pytest.approx(end_v[0] * dt, rel=0.05)
    p.reset()  # after a reset the first plan starts from the measured state again
    p.set_goal(np.zeros(7), np.full(7, 0.3), np.zeros(7))
    assert p.path[0] == pytest.approx(np.full(7, 0.3))


@pytest.mark.slow
def test_reset_settles_moving_objects_for_another_one_and_a_half_seconds(google_env, monkeypatch):
    """SimplerEnv lets the scene settle 1.5 s more when the objects' summed speeds exceed 1e-3 m/s or 1e-2 rad/s after
    the first second (move_near_in_scene.py L315-322): in move near's configuration 0 the orange is still rolling
    then, and the reset runs the extra 1.5 s of physics (the coke can at rest gets none)."""
    import mujoco

    env = google_env("google_move_near", cameras=())
    steps = []
    real_step = mujoco.mj_step

    def count(m, d, nstep=1):
        steps.append(nstep)
        real_step(m, d, nstep)

    monkeypatch.setattr(mujoco, "mj_step", count)
    env.reset(seed=0, options={"config_id": 0})
    monkeypatch.setattr(mujoco, "mj_step", real_step)
    assert env.settled_longer
    base = int(env.settle_s * G.SIM_HZ)
    assert sum(steps) == base + int(1.5 * G.SIM_HZ)
    still = google_env("google_pick_coke_can_standing", cameras=())
    still.reset(seed=0, options={"config_id": 12})
    assert not still.settled_longer


def test_scene_robot_collides_with_sapiens_convex_pieces(google_env):
    """The scene's Google robot is converted with one hull per convex piece, as ManiSkill2 loads it (test_robots.py)."""
    env = google_env("google_pick_coke_can_horizontal", cameras=())
    m = env.model
    forearm = m.body("link_forearm").id
    assert sum(1 for g in env._robot_geoms if m.geom_bodyid[g] == forearm and m.geom_contype[g]) == 3
