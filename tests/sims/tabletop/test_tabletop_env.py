"""The built-in MuJoCo tabletop backend: env contract, determinism, cameras, perturbations, scene files."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import vla_eval.sims as tabletop_envs
from vla_eval.sims.tabletop.env import TabletopEnv
from vla_eval.sims.tabletop.perturbations import validate_perturbations
from vla_eval.sims.tabletop.scene import SceneError, envs_dir, list_scenes, load_scene

SCENES = ["open_drawer", "pick_place_cube", "push_block"]
SMALL = (48, 48)
NOOP = np.array([0, 0, 0, 0, 0, 0, -1], dtype=np.float32)


@pytest.fixture
def make_env():
    envs = []

    def factory(scene="pick_place_cube", **kwargs):
        kwargs.setdefault("image_size", SMALL)
        env = TabletopEnv(scene, **kwargs)
        envs.append(env)
        return env

    yield factory
    for env in envs:
        env.close()


def _rollout(env, seed, steps, action_seed=0):
    rng = np.random.default_rng(action_seed)
    obs, _ = env.reset(seed=seed)
    trace = [obs]
    for _ in range(steps):
        obs, *_ = env.step(rng.uniform(-1, 1, 7).astype(np.float32))
        trace.append(obs)
    return trace


def _assert_same_obs(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            _assert_same_obs(a[key], b[key])
        elif isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        else:
            assert a[key] == b[key]


def test_builtin_scenes_and_ids():
    assert set(SCENES) <= set(list_scenes())
    ids = tabletop_envs.registered_env_ids()
    for env_id in [
        "vla_eval/Tabletop-v0",
        "vla_eval/PickPlaceCube-v0",
        "vla_eval/PushBlock-v0",
        "vla_eval/OpenDrawer-v0",
    ]:
        assert env_id in ids


TABLETOP_IDS = [i for i in tabletop_envs.registered_env_ids() if gym.spec(i).entry_point == tabletop_envs.ENTRY_POINT]


@pytest.mark.parametrize("env_id", TABLETOP_IDS)
@pytest.mark.parametrize("cameras", [(), ("agentview", "wrist")], ids=["state_only", "two_cameras"])
def test_check_env(env_id, cameras):
    kwargs = {"scene": "push_block"} if env_id.endswith("/Tabletop-v0") else {}
    env = gym.make(env_id, cameras=cameras, image_size=SMALL, **kwargs)
    try:
        check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()


def test_check_env_with_depth(make_env):
    check_env(make_env("open_drawer", cameras=("agentview",), depth=True), skip_render_check=True)


def test_reset_reuse_matches_fresh_env(make_env):
    reused = make_env(cameras=("agentview",))
    _rollout(reused, seed=11, steps=12, action_seed=3)  # a different episode first
    again = _rollout(reused, seed=5, steps=10)
    fresh = _rollout(make_env(cameras=("agentview",)), seed=5, steps=10)
    for a, b in zip(again, fresh):
        _assert_same_obs(a, b)
    other = make_env(cameras=("agentview",)).reset(seed=6)[0]
    assert not np.array_equal(other["images"]["agentview"], fresh[0]["images"]["agentview"])


@pytest.mark.parametrize("scene", SCENES)
def test_seed_changes_layout(make_env, scene):
    env = make_env(scene, cameras=())
    env.reset(seed=0)
    first = {k: v for k, v in env.privileged_state().items() if k.endswith("_pos")}
    env.reset(seed=1)
    second = env.privileged_state()
    assert any(not np.allclose(first[k], second[k]) for k in first if k != "eef_pos")


def test_images_shape_dtype_not_blank(make_env):
    env = make_env(image_size=(64, 80))
    obs, info = env.reset(seed=0)
    assert set(obs["images"]) == {"agentview", "wrist"}
    for img in obs["images"].values():
        assert img.shape == (64, 80, 3) and img.dtype == np.uint8
        assert img.std() > 10 and len(np.unique(img.reshape(-1, 3), axis=0)) > 20
    assert not np.array_equal(obs["images"]["agentview"], obs["images"]["wrist"])
    assert info == {"success": False}


def test_state_only_renders_nothing(make_env):
    env = make_env(cameras=())
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(NOOP)
    assert "images" not in obs and "depth" not in obs
    assert env._renderer is None
    assert obs["state"]["eef_pos"].shape == (3,) and obs["state"]["eef_quat"].shape == (4,)
    assert obs["state"]["gripper_qpos"].shape == (2,) and obs["state"]["joint_pos"].shape == (7,)
    assert all(v.dtype == np.float32 for v in obs["state"].values())
    assert abs(np.linalg.norm(obs["state"]["eef_quat"]) - 1) < 1e-5


def test_render_mode_rgb_array(make_env):
    env = make_env(cameras=(), render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (*SMALL, 3) and frame.dtype == np.uint8 and frame.std() > 10


def test_step_contract_and_controller(make_env):
    env = make_env(cameras=())
    obs, _ = env.reset(seed=0)
    start = obs["state"]["eef_pos"].copy()
    obs, reward, terminated, truncated, info = env.step(np.array([1, 0, 0, 0, 0, 0, -1], dtype=np.float32))
    assert truncated is False and terminated is False and reward == 0.0 and info["success"] is False
    moved = obs["state"]["eef_pos"] - start
    assert 0.035 < moved[0] < 0.06 and abs(moved[1]) < 0.01 and abs(moved[2]) < 0.01
    for _ in range(5):
        obs, *_ = env.step(np.array([0, 0, 0, 0, 0, 0, 1], dtype=np.float32))
    assert obs["state"]["gripper_qpos"].max() < 0.005
    for _ in range(5):
        obs, *_ = env.step(NOOP)
    assert obs["state"]["gripper_qpos"].min() > 0.035


def test_depth_and_camera_params_project_consistently(make_env):
    env = make_env(cameras=("agentview",), depth=True, image_size=(96, 128))
    obs, _ = env.reset(seed=0)
    params = obs["camera_params"]["agentview"]
    intr, extr = params["intrinsics"].astype(float), params["extrinsics"].astype(float)
    assert intr.shape == (3, 3) and extr.shape == (4, 4)
    np.testing.assert_allclose(extr[:3, :3] @ extr[:3, :3].T, np.eye(3), atol=1e-5)
    depth = obs["depth"]["agentview"]
    assert depth.shape == (96, 128) and depth.dtype == np.float32
    cube = env.privileged_state()["red_cube_pos"]
    cam = extr[:3, :3].T @ (cube - extr[:3, 3])
    assert cam[2] > 0
    u, v, _ = intr @ (cam / cam[2])
    col, row = int(round(u)), int(round(v))
    assert 0 <= col < 128 and 0 <= row < 96
    r, g, b = obs["images"]["agentview"][row, col].astype(int)
    assert r > g + 40 and r > b + 40, "the red cube's centre projects onto a red pixel"
    assert abs(depth[row, col] - cam[2]) < 0.04
    eef = obs["state"]["eef_pos"].astype(float)
    cam_eef = extr[:3, :3].T @ (eef - extr[:3, 3])
    u_eef, v_eef, _ = intr @ (cam_eef / cam_eef[2])
    assert 0 <= u_eef < 128 and 0 <= v_eef < 96 and v_eef < v, "the gripper sits above (farther than) the cube"


# ------------------------------------------------------------------ perturbations
def test_lighting_scales_lights_and_darkens(make_env):
    base = make_env(cameras=("agentview",))
    dark = make_env(cameras=("agentview",), perturbations=[{"type": "lighting", "scale": 0.4}])
    np.testing.assert_allclose(dark.model.light_diffuse, base.model.light_diffuse * 0.4, atol=1e-6)
    np.testing.assert_allclose(dark.model.light_ambient, base.model.light_ambient * 0.4, atol=1e-6)
    a, b = base.reset(seed=0)[0]["images"]["agentview"], dark.reset(seed=0)[0]["images"]["agentview"]
    assert b.mean() < 0.75 * a.mean()


def test_object_layout_shifts_positions(make_env):
    base = make_env(cameras=())
    moved = make_env(
        cameras=(),
        perturbations=[
            {"type": "object_layout", "objects": {"red_cube": {"shift": [0.0, 0.26]}, "plate": {"shift": [0.0, -0.26]}}}
        ],
    )
    base.reset(seed=3)
    moved.reset(seed=3)
    p, q = base.privileged_state(), moved.privileged_state()
    np.testing.assert_allclose(q["red_cube_pos"] - p["red_cube_pos"], [0, 0.26, 0], atol=1e-6)
    np.testing.assert_allclose(q["plate_pos"] - p["plate_pos"], [0, -0.26, 0], atol=1e-6)


def test_object_layout_overrides_fixture_ranges(make_env):
    env = make_env(
        "open_drawer", cameras=(), perturbations=[{"type": "object_layout", "objects": {"cabinet": {"y": [0.15, 0.2]}}}]
    )
    for seed in range(3):
        env.reset(seed=seed)
        assert 0.15 <= env.privileged_state()["cabinet_pos"][1] <= 0.2


def test_camera_pose_moves_camera(make_env):
    base = make_env(cameras=("agentview",))
    shifted = make_env(
        cameras=("agentview",), perturbations=[{"type": "camera_pose", "pos_delta": [0.0, 0.1, 0.05], "fovy_delta": 5}]
    )
    cid = base.model.camera("agentview").id
    np.testing.assert_allclose(shifted.model.cam_pos[cid] - base.model.cam_pos[cid], [0, 0.1, 0.05])
    assert shifted.model.cam_fovy[cid] == pytest.approx(base.model.cam_fovy[cid] + 5)
    a, b = base.reset(seed=0)[0], shifted.reset(seed=0)[0]
    np.testing.assert_allclose(shifted.data.cam_xpos[cid] - base.data.cam_xpos[cid], [0, 0.1, 0.05], atol=1e-9)
    assert np.abs(a["images"]["agentview"].astype(int) - b["images"]["agentview"]).mean() > 5


def test_table_color_changes_table_pixels(make_env):
    base = make_env(cameras=("agentview",))
    blue = make_env(cameras=("agentview",), perturbations=[{"type": "table_color", "rgba": [0.1, 0.2, 0.9, 1]}])
    assert tuple(blue.model.geom_rgba[blue.model.geom("table_top").id]) == pytest.approx((0.1, 0.2, 0.9, 1))
    a, b = base.reset(seed=0)[0]["images"]["agentview"], blue.reset(seed=0)[0]["images"]["agentview"]
    centre_a, centre_b = a[-8:, :, :].reshape(-1, 3).mean(0), b[-8:, :, :].reshape(-1, 3).mean(0)
    assert centre_a[0] > centre_a[2] and centre_b[2] > centre_b[0] + 30


def test_distractors_add_objects(make_env):
    env = make_env(cameras=("agentview",), perturbations=[{"type": "distractors", "count": 3}])
    base = make_env(cameras=("agentview",))
    obs = env.reset(seed=0)[0]
    priv = env.privileged_state()
    positions = [priv[f"distractor_{k}_pos"] for k in range(3)]
    objects = [priv["red_cube_pos"], priv["plate_pos"]]
    for i, p in enumerate(positions):
        assert p[2] > 0 and all(
            np.linalg.norm(p[:2] - q[:2]) >= env.scene.min_separation - 1e-9 for q in objects + positions[:i]
        )
    base_obs = base.reset(seed=0)[0]
    np.testing.assert_allclose(priv["red_cube_pos"], base.privileged_state()["red_cube_pos"])
    assert not np.array_equal(obs["images"]["agentview"], base_obs["images"]["agentview"])


def test_image_noise_is_seeded(make_env):
    clean = make_env(cameras=("agentview",))
    noisy = make_env(cameras=("agentview",), perturbations=[{"type": "image_noise", "std": 10}])
    a = clean.reset(seed=0)[0]["images"]["agentview"].astype(float)
    b = noisy.reset(seed=0)[0]["images"]["agentview"].astype(float)
    assert 5 < np.abs(a - b).mean() < 12
    np.testing.assert_array_equal(b, noisy.reset(seed=0)[0]["images"]["agentview"])
    assert not np.array_equal(b, noisy.reset(seed=1)[0]["images"]["agentview"])


def test_language_paraphrase_is_seeded(make_env):
    env = make_env(cameras=(), perturbations=[{"type": "language"}])
    spec = load_scene("pick_place_cube")
    allowed = {spec.render_instruction(p) for p in spec.paraphrases}
    seen = [env.reset(seed=s)[0]["instruction"] for s in range(12)]
    assert set(seen) <= allowed and len(set(seen)) > 1
    assert env.reset(seed=4)[0]["instruction"] == seen[4]
    fixed = make_env(cameras=(), perturbations=[{"type": "language", "index": 1}])
    assert fixed.reset(seed=0)[0]["instruction"] == "move the red cube to the plate"
    assert make_env(cameras=()).reset(seed=0)[0]["instruction"] == "put the red cube on the plate"


def test_perturbations_keep_layout_of_same_seed(make_env):
    base = make_env(cameras=())
    pert = make_env(cameras=(), perturbations=[{"type": "language"}, {"type": "lighting", "scale": 2.0}])
    base.reset(seed=9)
    pert.reset(seed=9)
    np.testing.assert_array_equal(base.data.qpos, pert.data.qpos)


def test_validate_perturbations_errors_name_field():
    with pytest.raises(ValueError, match="scale"):
        validate_perturbations([{"type": "lighting", "scale": -1}])
    with pytest.raises(ValueError, match="1"):
        validate_perturbations([{"type": "lighting", "scale": 1}, {"type": "wobble"}])
    with pytest.raises(ValueError, match="colour"):
        validate_perturbations([{"type": "table_color", "rgba": [1, 0, 0, 1], "colour": "red"}])
    with pytest.raises(ValueError, match="objects.mug"):
        TabletopEnv(
            "pick_place_cube",
            cameras=(),
            perturbations=[{"type": "object_layout", "objects": {"mug": {"shift": [0, 0]}}}],
        )
    with pytest.raises(ValueError, match="index"):
        TabletopEnv("push_block", cameras=(), perturbations=[{"type": "language", "index": 9}])
    assert len(validate_perturbations([{"type": "image_noise", "std": 3}, {"type": "distractors", "count": 2}])) == 2


# ------------------------------------------------------------------ predicates
def test_on_top_predicate(make_env):
    env = make_env(cameras=())
    env.reset(seed=0)
    plate = env.privileged_state()["plate_pos"]
    adr = env.model.joint("red_cube_joint").qposadr[0]
    env.data.qpos[adr : adr + 3] = [plate[0], plate[1], 0.012 + 0.02 + 0.002]
    env.data.qvel[:] = 0
    _, _, terminated, _, info = env.step(NOOP)
    assert info["success"] and terminated


def test_joint_predicate(make_env):
    env = make_env("open_drawer", cameras=())
    env.reset(seed=0)
    assert not env.step(NOOP)[4]["success"]
    env.data.qpos[env.model.joint("drawer_slide").qposadr[0]] = 0.15
    assert env.step(NOOP)[4]["success"]


def test_in_region_predicate(make_env):
    env = make_env("push_block", cameras=())
    env.reset(seed=0)
    target = env.privileged_state()["target_pos"]
    adr = env.model.joint("blue_block_joint").qposadr[0]
    env.data.qpos[adr : adr + 3] = [target[0] + 0.02, target[1], 0.025]
    assert env.step(NOOP)[4]["success"]


# ------------------------------------------------------------------ scene files
def test_bad_scene_yaml_names_file_and_field(tmp_path):
    good = (envs_dir() / "scenes" / "pick_place_cube.yaml").read_text()
    bad = tmp_path / "broken.yaml"
    bad.write_text(good.replace("    size: [0.02, 0.02, 0.02]", "    size: [0.02, 0.02]\n    colour: red"))
    with pytest.raises(SceneError) as err:
        load_scene(bad)
    text = str(err.value)
    assert str(bad) in text and "objects.0.colour" in text and "objects.0" in text
    bad.write_text(good.replace("support: plate", "support: saucer"))
    with pytest.raises(SceneError, match="saucer"):
        load_scene(bad)
    bad.write_text(good.replace("type: on_top", "type: on_tpo"))
    with pytest.raises(SceneError, match=r"broken\.yaml: field 'success'"):
        load_scene(bad)
    bad.write_text("objects: [")
    with pytest.raises(SceneError, match="broken.yaml"):
        load_scene(bad)


def test_scene_from_custom_envs_dir(tmp_path, monkeypatch):
    source = envs_dir()
    (tmp_path / "scenes").mkdir()
    (tmp_path / "assets").symlink_to(source / "assets")
    text = (source / "scenes" / "push_block.yaml").read_text().replace("name: push_block", "name: my_push")
    (tmp_path / "scenes" / "my_push.yaml").write_text(text)
    monkeypatch.setenv("VLA_EVAL_ENVS_DIR", str(tmp_path))
    assert list_scenes() == ["my_push"]
    env = TabletopEnv("my_push", cameras=())
    assert env.reset(seed=0)[0]["instruction"] == "push the blue block onto the green target"
    env.close()


def test_unknown_camera_and_scene():
    with pytest.raises(ValueError, match="camera"):
        TabletopEnv("push_block", cameras=("overhead",))
    with pytest.raises(KeyError, match="(?i)did you mean"):
        TabletopEnv("push_blok", cameras=())
