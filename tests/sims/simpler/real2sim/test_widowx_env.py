"""Bridge visual matching on SimplerEnv's WidowX and assets: grids, camera, overlay, env contract, expert.

Tests that need the asset pack take the ``simpler_assets`` fixture (tests/conftest.py): they
run where ``../shared/assets/simpler-real2sim`` (CI, the worktrees) or ``$VLA_EVAL_ASSETS``
exists and skip elsewhere, saying so.
"""

from __future__ import annotations

import math
from pathlib import Path

import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from vla_eval.assets import AssetError
from vla_eval.sims.simpler.real2sim import widowx_robot as W
from vla_eval.sims.simpler.real2sim.overlay import composite, foreground_mask
from vla_eval.sims.simpler.real2sim.widowx_env import REAL_TASKS, SIMPLER_WIDOWX_ACTION, BridgeRealEnv, native_config
from vla_eval.sims.simpler.tasks import get_task

TASKS = sorted(REAL_TASKS)


def _simpler_pairs(halves):
    """put_on_in_scene.py, written out again: ordered pairs of distinct corners of each square."""
    out = []
    for half in halves:
        grid = (np.array([[0, 0], [0, 1], [1, 0], [1, 1]]) * 2 - 1) * half + np.array([-0.16, 0.0])
        out += [(grid[i], grid[j]) for i in range(4) for j in range(4) if i != j]
    return out


@pytest.mark.parametrize(
    "task, names, halves, quats",
    [
        (
            "bridge_put_spoon_on_towel",
            ("spoon", "towel"),
            (0.075,),
            [(1, 0, 0, 0), (math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4))],
        ),
        (
            "bridge_put_carrot_on_plate",
            ("carrot", "plate"),
            (0.075,),
            [(0, 0, 0, 1), (math.cos(-math.pi / 4), 0, 0, math.sin(-math.pi / 4))],
        ),
        ("bridge_stack_green_on_yellow", ("green_cube", "yellow_cube"), (0.05, 0.1), [(1, 0, 0, 0)]),
    ],
)
def test_native_grid_is_simplerenvs(task, names, halves, quats):
    """Episode i: xy pair i // len(quats), source quat i % len(quats) (SimplerEnv's episode_id decoding)."""
    t = get_task(task)
    pairs = _simpler_pairs(halves)
    assert len(t.configs) == len(pairs) * len(quats) == 24
    for i in range(len(t.configs)):
        cfg = native_config(t, i)
        src_xy, tgt_xy = pairs[i // len(quats)]
        np.testing.assert_allclose(cfg[names[0]][0], src_xy, atol=1e-9)
        np.testing.assert_allclose(cfg[names[1]][0], tgt_xy, atol=1e-9)
        q = np.array(quats[i % len(quats)], float)
        got = cfg[names[0]][1]
        assert min(np.abs(got - q).max(), np.abs(got + q).max()) < 1e-9  # q and -q are one rotation


def test_camera_looks_along_simplerenvs_direction():
    """3rd_view_camera: SAPIEN forward = look_at([0,0,0], [1, 0.553, -1.085]); MuJoCo looks along -z."""
    rot = W.sapien_camera_axes(("look", W.CAMERA_LOOK))
    xy = np.array(W.mujoco_xyaxes(rot)).reshape(2, 3)
    right, up = xy
    forward_mj = -np.cross(right, up)  # MuJoCo camera z points backwards
    want = np.array(W.CAMERA_LOOK) / np.linalg.norm(W.CAMERA_LOOK)
    np.testing.assert_allclose(forward_mj, want, atol=1e-9)
    assert abs(up[2]) > 0.4 and abs(right[2]) < 1e-9  # no roll: image right stays horizontal
    # fovy from fy = 623.588 at 480 rows
    assert W.fovy_degrees() == pytest.approx(2 * math.degrees(math.atan(240 / 623.588)))


def test_composite_keeps_sim_only_on_foreground():
    rgb = np.full((4, 5, 3), 10, np.uint8)
    photo = np.full((4, 5, 3), 200, np.uint8)
    seg = np.full((4, 5, 2), -1, np.int32)
    seg[0, 0] = (3, int(mujoco.mjtObj.mjOBJ_GEOM))  # robot geom 3
    seg[1, 1] = (7, int(mujoco.mjtObj.mjOBJ_GEOM))  # table geom 7: background
    seg[2, 2] = (3, int(mujoco.mjtObj.mjOBJ_SITE))  # a site with id 3 is not geom 3
    out = composite(rgb, seg, photo, {3, 9})
    assert out[0, 0].tolist() == [10, 10, 10]
    assert out[1, 1].tolist() == [200, 200, 200] and out[2, 2].tolist() == [200, 200, 200]
    assert foreground_mask(seg, {3}).sum() == 1
    with pytest.raises(ValueError, match="resize the photo first"):
        composite(rgb, seg, photo[:2], {3})


def test_missing_assets_name_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("VLA_EVAL_ASSETS", str(tmp_path))
    with pytest.raises(AssetError, match=r"Run: vla-eval assets fetch simpler$"):
        BridgeRealEnv("bridge_put_carrot_on_plate")


def test_run_without_assets_fails_before_starting(tmp_path, monkeypatch, capsys):
    from vla_eval.cli.main import main

    monkeypatch.setenv("VLA_EVAL_ASSETS", str(tmp_path / "none"))
    rc = main(
        [
            "run",
            "--suite",
            "simpler_bridge_vm_real",
            "--policy",
            "noop",
            "--results-root",
            str(tmp_path / "runs"),
            "--workers",
            "1",
        ]
    )
    assert rc == 2
    assert "Run: vla-eval assets fetch simpler" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_suite_matches_the_panda_look_suite():
    from vla_eval.spec import load_suite

    real, panda = load_suite("simpler_bridge_vm_real"), load_suite("simpler_bridge_vm_panda")
    steps = {t.name: t.max_steps for t in panda.tasks}
    assert [t.name for t in real.tasks] == [n for n in steps if n in REAL_TASKS]
    assert all(t.max_steps == steps[t.name] for t in real.tasks)
    assert real.success_rule == panda.success_rule == "final_step"
    assert real.episodes_per_task == panda.episodes_per_task == 24


@pytest.fixture
def bridge_env(make_real_env):
    return lambda task, **kw: make_real_env(BridgeRealEnv, task, **kw)


@pytest.mark.slow
def test_first_frame_is_photo_behind_robot_and_objects(bridge_env):
    env = bridge_env("bridge_put_carrot_on_plate", image_size=(480, 640))
    obs, info = env.reset(seed=0, options={"config_id": 0})
    frame = obs["images"]["agentview"]
    assert frame.shape == (480, 640, 3) and not info["success"]
    rgb_r, seg_r = env._renderers()
    seg_r.update_scene(env.data, camera=env._cam, scene_option=env._opt)
    fg = foreground_mask(seg_r.render(), env._foreground)
    assert 0.02 < fg.mean() < 0.5  # robot, carrot and plate are in view, most of the image is the photo
    # the one-pass composite's mask (whatever the colour pass drew) is SimplerEnv's actor segmentation but for
    # antialiased edge pixels
    drawn = np.any(frame != env._photo, axis=2)
    assert (drawn != fg).mean() < 0.003
    assert np.array_equal(frame[~fg & ~drawn], env._photo[~fg & ~drawn])
    assert np.abs(frame[fg].astype(int) - env._photo[fg].astype(int)).mean() > 20
    # each object is seen: its geoms cover some pixels
    seg = seg_r.render()
    for name in env._obj_names:
        assert foreground_mask(seg, env._obj_geoms[name]).sum() > 200, name


@pytest.mark.slow
def test_check_env_and_native_action_space(bridge_env):
    env = bridge_env("bridge_stack_green_on_yellow", image_size=(64, 64))
    check_env(env, skip_render_check=True)
    assert env.native_action_space == SIMPLER_WIDOWX_ACTION
    from vla_eval.sims.contract import check_observation

    obs, _ = env.reset(seed=0, options={"config_id": 3})
    assert check_observation(obs, env) == []


@pytest.mark.slow
def test_controller_moves_the_target_in_the_base_frame(bridge_env):
    """+x in the base frame is -x in the world (the base is turned 180 degrees, as in SimplerEnv)."""
    env = bridge_env("bridge_put_carrot_on_plate", cameras=())
    env.reset(seed=0, options={"config_id": 0})
    p0, _ = env.ee_pose_at_base()
    w0 = env.data.xpos[env._ee].copy()
    for _ in range(3):
        env.step(np.array([0.02, 0, 0, 0, 0, 0, 1.0]))
    p1, _ = env.ee_pose_at_base()
    assert p1[0] - p0[0] == pytest.approx(0.06, abs=0.012)
    assert env.data.xpos[env._ee][0] - w0[0] == pytest.approx(-0.06, abs=0.012)
    env.step(np.array([0, 0, 0, 0, 0, 0, -1.0]))
    env.step(np.array([0, 0, 0, 0, 0, 0, -1.0]))
    assert env.data.qpos[env._finger_q].max() < 0.02  # absolute gripper: -1 closes


@pytest.mark.slow
@pytest.mark.parametrize(
    "task, config",
    [("bridge_put_carrot_on_plate", 0), ("bridge_stack_green_on_yellow", 1), ("bridge_put_eggplant_in_basket", 2)],
)
def test_expert_succeeds_and_noop_does_not(bridge_env, task, config):
    from vla_eval.sims.simpler.expert import SimplerScriptedExpert

    env = bridge_env(task, cameras=())
    results = {}
    for who in ("expert", "noop"):
        env.reset(seed=0, options={"config_id": config})
        expert = SimplerScriptedExpert()
        expert.reset([env.instruction])
        success = False
        for _ in range(env.task.max_steps):
            if who == "expert":
                chunk = expert.predict([{"privileged": env.privileged_state()}])
                assert chunk.space == SIMPLER_WIDOWX_ACTION
                action = chunk.actions[0, 0]
            else:
                action = np.array([0, 0, 0, 0, 0, 0, 1.0])
            _, _, success, _, info = env.step(action)
        results[who] = success
    assert results == {"expert": True, "noop": False}


@pytest.mark.slow
def test_pinched_spoon_stays_level_and_lands_on_the_towel(bridge_env):
    """Held as SimplerEnv's PhysX holds it, the spoon stays level through the lift and carry. Without the noslip pass
    it crept out of the fingers; a single hull over the spoon's four pieces made it twice as heavy, and it swung
    about the line between the fingers during the carry."""
    from vla_eval.sims.simpler.expert import SimplerScriptedExpert

    env = bridge_env("bridge_put_spoon_on_towel", cameras=())
    env.reset(seed=0, options={"config_id": 1})
    expert = SimplerScriptedExpert()
    expert.reset([env.instruction])
    spoon = env.model.body("spoon").id
    pitches, success = [], False
    for _ in range(env.task.max_steps):
        chunk = expert.predict([{"privileged": env.privileged_state()}])
        _, _, success, _, _ = env.step(chunk.actions[0, 0])
        if chunk.extras[0]["phase"] in ("lift", "carry") and env.privileged_state()["is_src_obj_grasped"]:
            long_axis = env.data.xmat[spoon].reshape(3, 3)[:, 0]
            pitches.append(math.degrees(math.asin(abs(long_axis[2]))))
    assert len(pitches) >= 10
    assert max(pitches) < 15.0
    assert success


@pytest.mark.slow
def test_spoon_has_simplers_four_convex_pieces_and_weight(bridge_env):
    """SAPIEN splits each mesh of a collision file into its vertex-connected pieces before taking hulls; SimplerEnv's
    spoon is one OBJ object of four pieces, which SAPIEN weighs at 43 g with its centre of mass 8.7 mm along the
    handle. One hull over the whole object made it 80 g with the centre of mass 3.5 mm the other way."""
    env = bridge_env("bridge_put_spoon_on_towel", cameras=())
    env.reset(seed=0, options={"config_id": 0})
    m = env.model
    spoon = m.body("spoon").id
    assert sum(1 for g in range(m.ngeom) if m.geom_bodyid[g] == spoon and m.geom_contype[g]) == 4
    assert m.body_mass[spoon] == pytest.approx(0.0431, rel=0.1)
    np.testing.assert_allclose(m.body_ipos[spoon], [0.0087, 0.0001, 0.0007], atol=0.001)


@pytest.mark.slow
def test_fingers_pinching_the_spoon_rest_as_far_apart_as_sapiens(bridge_env):
    """SAPIEN's fingers, pinching the spoon at configuration 2 during the lift, rest at 26.5 and 27.1 mm (PhysX's
    contact stops at the surface); MuJoCo's soft contact let them sink 1.1 mm further in together, 52.5 mm apart."""
    from vla_eval.sims.simpler.expert import SimplerScriptedExpert

    env = bridge_env("bridge_put_spoon_on_towel", cameras=())
    env.reset(seed=0, options={"config_id": 2})
    expert = SimplerScriptedExpert()
    expert.reset([env.instruction])
    for _ in range(21):
        env.step(expert.predict([{"privileged": env.privileged_state()}]).actions[0, 0])
    assert env.privileged_state()["is_src_obj_grasped"]
    assert float(env.data.qpos[env._finger_q].sum()) == pytest.approx(0.0265 + 0.0271, abs=4e-4)


@pytest.mark.slow
def test_widowx_arm_holds_its_pose_under_gravity(bridge_env):
    """ManiSkill2 cancels the robot's passive forces, gravity included, every simulation step (DictController
    balance_passive_force): with a still target the WidowX hand stays put. Without it the hand sagged 1.1 mm over two
    seconds under its PD drives."""
    env = bridge_env("bridge_put_carrot_on_plate", cameras=())
    env.reset(seed=0, options={"config_id": 0})
    start = env.data.xpos[env._ee].copy()
    for _ in range(10):
        env.step(np.array([0, 0, 0, 0, 0, 0, 1.0]))
    assert np.linalg.norm(env.data.xpos[env._ee] - start) < 2e-4


def test_expert_eases_the_hand_holding_a_long_object():
    from vla_eval.sims.simpler.real2sim.expert import ACCEL, _ease, _step
    from vla_eval.sims.tabletop.expert import _Episode

    ep = _Episode()
    ep.go("carry")
    steps = [_ease(ep, _step(np.zeros(3), np.array([0.3, 0.0, 0.0]), 0.015), ACCEL) for _ in range(4)]
    assert [float(s[0]) for s in steps] == pytest.approx([ACCEL, 2 * ACCEL, 3 * ACCEL, 4 * ACCEL])
    ep.go("open")  # not holding: no easing
    assert _ease(ep, np.zeros(3), ACCEL)[0] == 0.0
    # slowing to stop at the goal: never more than the distance left, and no faster than the deceleration allows
    near = _step(np.zeros(3), np.array([0.004, 0.0, 0.0]), 0.015, ACCEL)
    assert 0 < near[0] <= 0.004 and near[0] <= math.sqrt(2 * ACCEL * 0.004) + 1e-12


@pytest.mark.slow
def test_picture_first_frames_beside_simplerenvs_photo(simpler_assets, mesh_cache, tmp_path, monkeypatch):
    """The picture a person checks: [our first frame | SimplerEnv's photo] per task. Written to
    $VLA_EVAL_PICTURES if set (else a temp folder); committed copies live in docs/simpler_vm/."""
    import os

    from PIL import Image

    from vla_eval.sims.simpler.real2sim.pictures import first_frames

    monkeypatch.setenv("VLA_EVAL_CACHE", str(mesh_cache))
    out = Path(os.environ.get("VLA_EVAL_PICTURES") or tmp_path / "pictures")
    paths = first_frames(out, tasks=TASKS, scale=0.5)
    assert sorted(p.name for p in paths) == sorted(f"{t}_config0.png" for t in TASKS)
    for path in paths:
        overlay = "bridge_sink.png" if "eggplant" in path.name else "bridge_real_eval_1.png"
        photo = np.asarray(
            Image.open(simpler_assets / "data/real_inpainting" / overlay).convert("RGB").resize((320, 240))
        )
        pair = np.asarray(Image.open(path).convert("RGB"))
        assert pair.shape == ((240, 960, 3) if "stack" in path.name else (240, 640, 3))  # + the real first frame
        ours, theirs = pair[:, :320].astype(int), pair[:, 320:640].astype(int)
        assert np.abs(theirs - photo).mean() < 3  # right half: SimplerEnv's photo
        same = np.abs(ours - theirs).max(axis=2) < 12
        assert 0.5 < same.mean() < 0.98  # left half: the photo around the robot and objects
    print("pictures:", *paths, sep="\n  ")


def test_backend_rejects_bad_render_scale(tmp_path):
    from vla_eval.errors import ConfigError
    from vla_eval.spec import load_suite

    text = (Path(__file__).resolve().parents[4] / "suites" / "simpler_bridge_vm_real.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        text.replace("backend: simpler_real\n", "backend: simpler_real\nbackend_options: {render_scale: 3}\n")
    )
    with pytest.raises(ConfigError, match=r"backend_options.render_scale.*\[0.1, 1.0\], got 3"):
        load_suite(str(bad))
    bad.write_text(
        text.replace("backend: simpler_real\n", "backend: simpler_real\nbackend_options: {protocol: visual_matching}\n")
    )
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['protocol'\]"):
        load_suite(str(bad))


@pytest.mark.slow
def test_half_scale_render_is_the_same_composite(bridge_env):
    env = bridge_env("bridge_put_carrot_on_plate", image_size=(128, 128), render_scale=0.5)
    obs, _ = env.reset(seed=0, options={"config_id": 0})
    assert env.render_wh == (320, 240) and obs["images"]["agentview"].shape == (128, 128, 3)
    frame = env.render_native()
    _, seg_r = env._renderers()
    seg_r.update_scene(env.data, camera=env._cam, scene_option=env._opt)
    fg = foreground_mask(seg_r.render(), env._foreground)
    assert frame.shape == (240, 320, 3) and 0.02 < fg.mean() < 0.5
    assert (np.any(frame != env._photo, axis=2) != fg).mean() < 0.005  # the one-pass mask, but antialiased edges


# --------------------------------------------------------------------------- eggplant in the sink's basket
def test_eggplant_sink_scene_is_simplerenvs(bridge_env):
    """PutEggplantInBasketScene: widowx_sink_camera_setup (base (0.127, 0.06, 0.85), its start joints, its camera on
    the base), the sink locked at (-0.16, 0.13, 0.88), eggplant episode i = 2 x 4 grid cell i // 3 (x outer) around
    (-0.105, 0.206) at yaw (0, pi/4, -pi/4)[i % 3], the target plane at (-0.125, 0.025); sink and plane are drawn by
    the photo only (rgb_always_overlay_objects) and the sink collides as its 82 convex pieces (an open basin)."""
    from vla_eval.sims.simpler.real2sim import widowx_robot as W
    from vla_eval.sims.simpler.real2sim.widowx_env import native_config
    from vla_eval.sims.simpler.tasks import get_task

    task = get_task("bridge_put_eggplant_in_basket")
    xs, ys = np.linspace(-0.115, -0.095, 2), np.linspace(0.191, 0.221, 4)
    for i in (0, 4, 23):
        cfg = native_config(task, i)
        np.testing.assert_allclose(cfg["eggplant"][0], [xs[(i // 3) // 4], ys[(i // 3) % 4]], atol=1e-12)
        yaw = (0.0, math.pi / 4, -math.pi / 4)[i % 3]
        np.testing.assert_allclose(cfg["eggplant"][1], [math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)], atol=1e-12)
        np.testing.assert_allclose(cfg["sink_target"][0], [-0.125, 0.025])
    env = bridge_env("bridge_put_eggplant_in_basket", image_size=(64, 64), render_scale=0.25)
    m, d = env.model, env.data
    _, info = env.reset(seed=0, options={"config_id": 4})
    assert info["overlay"] == "real_inpainting/bridge_sink.png" and env.rule["target"] == "sink_target"
    np.testing.assert_allclose(d.xpos[env._base], [0.127, 0.06, 0.85], atol=1e-9)
    np.testing.assert_allclose(
        d.qpos[env._arm_q], W.INIT_QPOS_SINK[:6], atol=0.05
    )  # held by the drives after the settle
    np.testing.assert_allclose(d.xpos[m.body("sink").id], [-0.16, 0.13, 0.88], atol=1e-9)
    cam = d.cam_xpos[env._cam] - d.xpos[env._base]
    np.testing.assert_allclose(d.xmat[env._base].reshape(3, 3).T @ cam, [-0.003, -0.21, 0.39], atol=1e-6)
    for name in ("sink", "sink_target"):
        groups = {int(m.geom_group[g]) for g in range(m.ngeom) if m.geom_bodyid[g] == m.body(name).id}
        assert groups == {3}  # collision only: never drawn
    assert sum(1 for g in range(m.ngeom) if m.geom_bodyid[g] == m.body("sink").id) == 82
    p = env.privileged_state()
    assert np.linalg.norm(p["sink_target_pos"][:2] - [-0.125, 0.025]) < 0.01  # settled flat in the basket
    assert 0.9 < p["eggplant_pos"][2] < 1.0  # resting on the sink, not dropped through it


def test_eggplant_rule_z_offset_and_no_contact_requirement(bridge_env):
    """PutEggplantInBasketScene.evaluate: on the plane's xy (half diagonal + 3 mm), above it by at most the two half
    heights + 0.06 m, touching allowed (success_require_src_completely_on_target False)."""
    env = bridge_env("bridge_put_eggplant_in_basket", cameras=())
    env.reset(seed=0, options={"config_id": 0})
    m, d = env.model, env.data
    plane = d.xpos[m.body("sink_target").id].copy()
    halves = env.facts["bbox"]["eggplant"][2] / 2 + env.facts["bbox"]["sink_target"][2] / 2
    adr = m.joint("eggplant_free").qposadr[0]
    for dz, ok in ((halves + 0.055, True), (halves + 0.065, False), (-0.005, False)):
        d.qpos[adr : adr + 3] = plane + np.array([0.02, 0.0, dz])
        mujoco.mj_forward(m, d)
        assert env._evaluate() is ok, dz
    d.qpos[adr : adr + 3] = plane + np.array([0.085, 0.0, halves + 0.01])  # beyond the 7.6 cm half diagonal
    mujoco.mj_forward(m, d)
    assert env._evaluate() is False


def test_collision_pieces_split_objects_at_shared_vertices_as_sapien_does(tmp_path):
    """SAPIEN's ``loadMeshGroup``: per object, corners at one position are one vertex, and each vertex-connected piece
    (two triangles touching at a single corner are one piece) becomes its own hull."""
    from vla_eval.sims.simpler.real2sim.meshes import collision_pieces

    path = tmp_path / "collision.obj"
    path.write_text(
        "o a\n"
        "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 0 0\nv 2 0 0\nv 1 1 0\n"  # two triangles sharing the corner (1, 0, 0)
        "v 5 0 0\nv 6 0 0\nv 5 1 0\n"  # and one apart
        "f 1 2 3\nf 4 5 6\nf 7 8 9\n"
        "o b\nv 9 0 0\nv 9 1 0\nv 9 0 1\nf 10 11 12\n"
    )
    pieces = collision_pieces(path)
    assert [len(v) for v, _ in pieces] == [5, 3, 3]
    assert [len(f) for _, f in pieces] == [2, 1, 1]
    np.testing.assert_allclose(pieces[1][0][:, 0], [5, 5, 6])


def test_collision_obj_objects_become_separate_hulls(tmp_path):
    """Each ``o`` of a collision.obj is its own piece (SAPIEN's convex decomposition loading), faces renumbered."""
    from vla_eval.sims.simpler.real2sim.meshes import obj_objects

    path = tmp_path / "collision.obj"
    path.write_text(
        "o a\nv 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 2 4\n"
        "o b\nv 5 0 0\nv 6 0 0\nv 5 1 0\nv 5 0 1\nf 5/1 6/1 7/1 8/1\n"
    )
    parts = obj_objects(path)
    assert len(parts) == 2
    np.testing.assert_allclose(parts[1][0][:, 0], [5, 6, 5, 5])
    assert parts[0][1].tolist() == [[0, 1, 2], [0, 1, 3]] and parts[1][1].tolist() == [[0, 1, 2], [0, 2, 3]]


@pytest.mark.slow
def test_on_top_rule_reads_centres_of_mass_as_simplerenv_does(bridge_env):
    """put_on_in_scene.py judges "on top" from the source's and target's centres of mass (``source_obj_pose`` /
    ``target_obj_pose``), not the actors' origins; the carrot's centre of mass sits ~5 mm from its origin. A carrot
    whose centre of mass is 1 mm inside the plate's xy margin (its origin outside) is on the plate."""
    from vla_eval.sims.simpler.rules import on_top

    env = bridge_env("bridge_put_carrot_on_plate", cameras=())
    env.reset(seed=0, options={"config_id": 0})
    m, d = env.model, env.data
    carrot, plate = m.body("carrot").id, m.body("plate").id
    off = d.xipos[carrot] - d.xpos[carrot]
    assert np.linalg.norm(off[:2]) > 0.003
    src_half, tgt_half = env.facts["bbox"]["carrot"] / 2, env.facts["bbox"]["plate"] / 2
    u = -off[:2] / np.linalg.norm(off[:2])
    com = np.empty(3)
    com[:2] = d.xipos[plate][:2] + u * (np.linalg.norm(tgt_half[:2]) + 0.003 - 0.001)
    com[2] = d.xipos[plate][2] + tgt_half[2] + src_half[2] + 0.01
    adr = m.joint("carrot_free").qposadr[0]
    d.qpos[adr : adr + 3] = com - off  # the carrot's origin, orientation unchanged
    mujoco.mj_forward(m, d)
    np.testing.assert_allclose(d.xipos[carrot], com, atol=1e-9)
    assert not on_top(d.xpos[carrot], d.xpos[plate], src_half, tgt_half, 0.02)  # judged by origins: off the plate
    assert env._evaluate() and env._stats["src_on_target"]


def test_scene_robot_collides_with_sapiens_convex_pieces(bridge_env):
    """The scene's WidowX is converted with one hull per convex piece, as ManiSkill2 loads it (test_robots.py)."""
    env = bridge_env("bridge_put_carrot_on_plate", cameras=())
    m = env.model
    finger = m.body("left_finger_link").id
    assert sum(1 for g in env._robot_geoms if m.geom_bodyid[g] == finger and m.geom_contype[g]) == 2
