"""SimplerEnv-style tasks in MuJoCo: env contract, success rules, scripted expert, protocol variants, suites."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from vla_eval.sims.simpler import register_envs, task_env_id
from vla_eval.sims.simpler.env import SimplerEnv
from vla_eval.sims.simpler.expert import SimplerScriptedExpert
from vla_eval.sims.simpler.looks import background_image, split_variants, table_image
from vla_eval.sims.simpler.tasks import BRIDGE_TASKS, GOOGLE_TASKS, TASKS

ALL = sorted(TASKS)
SMALL = (32, 32)
IMG = (64, 64)
NOOP = np.array([0, 0, 0, 0, 0, 0, -1], dtype=np.float32)
SIMPLER_MAX_STEPS = {
    "google_pick_coke_can": 80,
    "google_move_near": 80,
    "apple": 200,
    "drawer": 113,
    "bridge_put_eggplant": 120,
    "bridge": 60,
}


@pytest.fixture
def make_env():
    envs = []

    def factory(task="google_pick_coke_can_standing", **kwargs):
        kwargs.setdefault("image_size", IMG)
        env = SimplerEnv(task, **kwargs)
        envs.append(env)
        return env

    yield factory
    for env in envs:
        env.close()


def _img(env, **reset):
    obs, _ = env.reset(seed=0, options={"config_id": 0}, **reset)
    return obs["images"]["agentview"].astype(float)


def _rollout_expert(env, config_id: int) -> bool:
    """Run to the step limit and judge the last step, as SimplerEnv's evaluator does."""
    policy = SimplerScriptedExpert()
    obs, info = env.reset(seed=config_id, options={"config_id": config_id})
    policy.reset([obs["instruction"]])
    for _ in range(env.task.max_steps):
        obs["privileged"] = env.privileged_state()
        obs, _, _, _, info = env.step(policy.predict([obs]).actions[0, 0])
    return bool(info["success"])


# ------------------------------------------------------------------ tasks
def test_task_families_step_limits_and_grids():
    assert len(GOOGLE_TASKS) == 11 and len(BRIDGE_TASKS) == 4
    for name, task in TASKS.items():
        key = next(k for k in SIMPLER_MAX_STEPS if k in name)
        assert task.max_steps == SIMPLER_MAX_STEPS[key], name
        assert task.control_hz == (3 if task.family == "google" else 5)
    coke = TASKS["google_pick_coke_can_standing"]
    assert len(coke.configs) == 25 and len({c.poses["coke_can"].xy for c in coke.configs}) == 25
    # SimplerEnv's per-variant episode counts (scripts/*.sh): move near 60, each drawer 9, apple 27, Bridge 24
    expected = {
        "google_move_near": 60,
        "google_place_apple_in_closed_top_drawer": 27,
        **{n: 24 for n in BRIDGE_TASKS},
        **{n: 9 for n in TASKS if "drawer" in n and "apple" not in n},
    }
    for name, count in expected.items():
        configs = TASKS[name].configs
        assert len(configs) == count, name
        keys = {
            (
                c.instruction,
                tuple(sorted((k, p.xy, p.quat) for k, p in c.poses.items())),
                tuple(sorted(c.joints.items())),
            )
            for c in configs
        }
        assert len(keys) == count, f"{name}: configurations repeat"
    quats = {
        TASKS[f"google_pick_coke_can_{o}"].configs[0].poses["coke_can"].quat
        for o in ("horizontal", "vertical", "standing")
    }
    assert len(quats) == 3


def test_gym_ids_registered():
    ids = register_envs()
    assert "vla_eval/Simpler-v0" in ids and task_env_id("bridge_put_carrot_on_plate") in ids
    env = gym.make(task_env_id("bridge_put_carrot_on_plate"), image_size=SMALL)
    try:
        obs, _ = env.reset(seed=0)
        assert obs["images"]["agentview"].shape == (*SMALL, 3)
        assert env.spec.max_episode_steps == 60
    finally:
        env.close()


@pytest.mark.parametrize("task", ALL)
def test_check_env(task):
    env = SimplerEnv(task, image_size=SMALL)
    try:
        check_env(env, skip_render_check=True)
        assert env.metadata["render_fps"] == env.task.control_hz
        assert env.n_substeps == round(1 / env.task.control_hz / env.model.opt.timestep)
    finally:
        env.close()


def test_reset_is_deterministic_per_config_and_seed(make_env):
    env = make_env("google_move_near", cameras=())
    a, info_a = env.reset(seed=3, options={"config_id": 5})
    pa = env.privileged_state()
    b, info_b = env.reset(seed=99, options={"config_id": 5})
    pb = env.privileged_state()
    assert info_a["config_id"] == info_b["config_id"] == 5 and a["instruction"] == b["instruction"]
    assert a["instruction"] == "move orange near pepsi can"  # SimplerEnv episode 5: triplet 0, pair (2, 1), layout 0
    for name in ("blue_plastic_bottle", "pepsi_can", "orange"):
        np.testing.assert_allclose(pa[f"{name}_pos"], pb[f"{name}_pos"])
        assert pa[f"{name}_pos"][2] > 0
    assert pa["coke_can_pos"][2] < -1  # not in this episode's triplet: parked under the table
    env.reset(seed=3)  # without an explicit id the seed picks one, reproducibly
    first = env.config_id
    env.reset(seed=3)
    assert env.config_id == first


def test_move_near_rule_needs_the_named_object(make_env):
    env = make_env("google_move_near", cameras=())
    env.reset(seed=0, options={"config_id": 0})
    rule = env.rule
    m, d = env.model, env.data

    def teleport(name, xy):
        adr = m.jnt_qposadr[m.body(name).jntadr[0]]
        d.qpos[adr : adr + 2] = xy

    tgt = d.xpos[m.body(rule["target"]).id][:2].copy()
    env.step(NOOP)
    assert not env._evaluate()
    other = rule["others"][0]
    saved = d.qpos.copy()
    teleport(other, tgt + [0.0, 0.08])  # the wrong object next to the target
    d.qvel[:] = 0
    import mujoco

    mujoco.mj_forward(m, d)
    assert not env._evaluate() and env._stats["moved_wrong_obj"]
    d.qpos[:] = saved
    teleport(
        rule["object"],
        tgt
        + (env._init_xyz[rule["object"]][:2] - tgt) / np.linalg.norm(env._init_xyz[rule["object"]][:2] - tgt) * 0.09,
    )
    mujoco.mj_forward(m, d)
    assert env._evaluate() and env._stats["near_tgt_obj"] and env._stats["moved_correct_obj"]


def test_gripper_modes_absolute_and_sticky_relative(make_env):
    absolute = make_env(cameras=(), gripper_mode="absolute")
    absolute.reset(seed=0, options={"config_id": 0})
    absolute.step(np.array([0, 0, 0, 0, 0, 0, 0.0]))
    assert absolute.data.ctrl[7] == pytest.approx(0.02)
    relative = make_env(cameras=(), gripper_mode="relative")
    relative.reset(seed=0, options={"config_id": 0})
    relative.step(np.array([0, 0, 0, 0, 0, 0, 1.0]))  # close
    assert relative.data.ctrl[7] == pytest.approx(0.0)
    relative.step(np.array([0, 0, 0, 0, 0, 0, 0.0]))  # no command: stays closed (sticky)
    assert relative.data.ctrl[7] == pytest.approx(0.0)
    relative.step(np.array([0, 0, 0, 0, 0, 0, -0.5]))  # half-open
    assert relative.data.ctrl[7] == pytest.approx(0.02)
    with pytest.raises(ValueError, match="gripper_mode"):
        SimplerEnv("google_pick_coke_can_standing", gripper_mode="sticky")


def test_google_suites_read_rt1_gripper_outputs_as_relative(make_env):
    """RT-1 on the Google robot sends ``gripper_closedness_action`` (+ closes, |a| < 0.01 zeroed) straight
    to a delta-target controller (SimplerEnv rt1_model.py; ManiSkill2_real2sim google_robot
    ``gripper_pd_joint_target_delta_pos``: normalised, target += a x stroke, clipped). A grasp is a short
    +1 pulse followed by zeros; the fingers must stay shut through the zeros and open on a -1 pulse."""
    from vla_eval.backends import get_backend
    from vla_eval.spec import load_suite

    for suite in ("simpler_google_vm_panda", "simpler_google_va"):
        spec = load_suite(suite)
        env = get_backend("simpler").make_env(spec, spec.tasks[0].name, spec.splits[0].name, cameras=[])
        try:
            assert env.gripper_mode == "relative", suite
        finally:
            env.close()
    env = make_env(cameras=())
    assert env.gripper_mode == "relative"  # the Google family's default
    env.reset(seed=0, options={"config_id": 0})
    open_q = float(env.data.qpos[env._finger_qadr].sum())
    targets, fingers = [], []
    for g in [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.5, 0.5]:
        env.step(np.array([0, 0, 0, 0, 0, 0, g], dtype=np.float32))
        targets.append(float(env.data.ctrl[7]))
        fingers.append(float(env.data.qpos[env._finger_qadr].sum()))
    full = targets[0]
    assert full == pytest.approx(0.04)
    assert targets[1:6] == [pytest.approx(0.0)] * 5  # closed by the pulse, held through five zeros
    assert fingers[5] < 0.2 * open_q  # the fingers really are shut after the zeros
    assert targets[6:9] == [pytest.approx(full)] * 3  # opened by the -1 pulse, held open
    assert targets[9] == pytest.approx(full / 2) and targets[10] == pytest.approx(0.0)  # two half pulses close fully
    bridge = make_env("bridge_put_carrot_on_plate", cameras=())
    assert bridge.gripper_mode == "absolute"  # WidowX: SimplerEnv's pd_joint_pos (absolute) gripper


def test_noop_never_succeeds(make_env):
    for task in (
        "google_pick_coke_can_standing",
        "google_open_top_drawer",
        "google_close_middle_drawer",
        "google_move_near",
        "bridge_put_carrot_on_plate",
    ):
        env = make_env(task, cameras=())
        env.reset(seed=0, options={"config_id": 0})
        for _ in range(40):
            _, _, _, _, info = env.step(NOOP)
            assert not info["success"], task


@pytest.mark.slow
@pytest.mark.parametrize("task", ALL)
def test_scripted_expert_solves_task(task, make_env):
    env = make_env(task, cameras=())
    n = len(TASKS[task].configs)
    for config_id in (0, n - 1):
        assert _rollout_expert(env, config_id), f"{task} config {config_id} failed (judged at the final step)"


# --------------------------------------------------------------- variants
def test_images_are_generated_deterministically():
    np.testing.assert_array_equal(background_image("reference_google"), background_image("reference_google"))
    assert np.abs(background_image("kitchen").astype(float) - background_image("office")).mean() > 20
    assert np.abs(table_image("wood_dark").astype(float) - table_image("marble")).mean() > 20
    with pytest.raises(ValueError, match="table_texture"):
        split_variants([{"type": "table_texture", "texture": "plaid"}])


@pytest.mark.parametrize("family_task", ["google_pick_coke_can_standing", "bridge_put_carrot_on_plate"])
def test_background_variant_changes_backdrop_pixels_only(make_env, family_task):
    base = _img(make_env(family_task, look="simulated"))
    kitchen = _img(make_env(family_task, look="simulated", perturbations=[{"type": "background", "image": "kitchen"}]))
    vm = _img(make_env(family_task, look="visual_matching"))
    env = make_env(family_task, look="simulated", depth=True)
    env.reset(seed=0, options={"config_id": 0})
    seg_depth = env._render_depth("agentview")
    # backdrop pixels are the farthest ones (the backdrop stands behind the table); near ones are table/robot
    far = seg_depth > np.percentile(seg_depth, 85)
    assert np.abs(kitchen - base)[far].mean() > 10
    near = seg_depth < np.percentile(seg_depth, 40)
    assert np.abs(kitchen - base)[near].mean() < np.abs(kitchen - base)[far].mean() / 3
    assert np.abs(vm - base).mean() > 5  # the visual-matching look differs from the simulated base


def test_table_texture_variant_changes_table(make_env):
    base = make_env(look="simulated")
    marble = make_env(look="simulated", perturbations=[{"type": "table_texture", "texture": "marble"}])
    tid = base.model.texture("table_tex").id
    assert not np.array_equal(
        base.model.tex_data[base.model.tex_adr[tid] :], marble.model.tex_data[marble.model.tex_adr[tid] :]
    )
    a, b = _img(base), _img(marble)
    assert np.abs(a - b)[-16:].mean() > 10  # bottom rows of the google view: table


def test_lighting_variant_changes_light_intensity(make_env):
    base = make_env(look="simulated")
    dark = make_env(look="simulated", perturbations=[{"type": "lighting", "scale": 0.5}])
    bright = make_env(look="simulated", perturbations=[{"type": "lighting", "scale": 1.6}])
    np.testing.assert_allclose(dark.model.light_diffuse, base.model.light_diffuse * 0.5)
    assert (bright.model.light_diffuse >= base.model.light_diffuse).all() and (
        bright.model.light_diffuse > base.model.light_diffuse
    ).any()
    assert _img(dark).mean() < _img(base).mean() < _img(bright).mean()


def test_distractor_variant_adds_objects_on_the_table(make_env):
    base = make_env("bridge_put_carrot_on_plate", look="simulated")
    env = make_env(
        "bridge_put_carrot_on_plate", look="simulated", perturbations=[{"type": "distractors", "count": 2, "seed": 1}]
    )
    assert base.model.nbody + 2 == env.model.nbody
    img_base, img = _img(base), _img(env)
    priv = env.privileged_state()
    for k in range(2):
        pos = priv[f"distractor_{k}_pos"]
        assert 0.2 < pos[0] < 0.8 and abs(pos[1]) < 0.4 and 0.0 < pos[2] < 0.05
        for name in ("carrot", "plate"):
            assert np.linalg.norm(pos[:2] - priv[f"{name}_pos"][:2]) > 0.05
    assert np.abs(img - img_base).max() > 50


def test_distractors_keep_out_of_the_drawer_path(make_env):
    env = make_env(
        "google_open_middle_drawer", cameras=(), perturbations=[{"type": "distractors", "count": 4, "seed": 2}]
    )
    for cid in range(9):
        env.reset(seed=cid, options={"config_id": cid})
        priv = env.privileged_state()
        cab = priv["cabinet_pos"]
        for k in range(4):
            rel = priv[f"distractor_{k}_pos"][:2] - cab[:2]
            assert not (-0.5 <= rel[0] <= 0.15 and abs(rel[1]) <= 0.26)


def test_camera_pose_variant_moves_the_camera(make_env):
    base = make_env(look="simulated", depth=True)
    moved = make_env(
        look="simulated",
        depth=True,
        perturbations=[{"type": "camera_pose", "pos_delta": [0.04, 0.05, 0.03], "fovy_delta": 3}],
    )
    cam = base.model.camera("agentview").id
    np.testing.assert_allclose(moved.model.cam_pos[cam] - base.model.cam_pos[cam], [0.04, 0.05, 0.03])
    assert moved.model.cam_fovy[cam] == pytest.approx(base.model.cam_fovy[cam] + 3)
    ob, _ = base.reset(seed=0, options={"config_id": 0})
    om, _ = moved.reset(seed=0, options={"config_id": 0})
    ext_b, ext_m = ob["camera_params"]["agentview"]["extrinsics"], om["camera_params"]["agentview"]["extrinsics"]
    np.testing.assert_allclose(ext_m[:3, 3] - ext_b[:3, 3], [0.04, 0.05, 0.03], atol=1e-5)
    assert np.abs(om["images"]["agentview"].astype(float) - ob["images"]["agentview"]).mean() > 5


def test_visual_matching_colours_match_the_family(make_env):
    google = make_env("google_pick_coke_can_standing")
    bridge = make_env("bridge_put_carrot_on_plate")

    def link(env):
        return env.model.geom_rgba[
            [g for g in range(env.model.ngeom) if env.model.geom_bodyid[g] == env.model.body("link3").id][0]
        ]

    assert link(google)[:3].mean() > 0.7 and link(bridge)[:3].mean() < 0.3


def test_unsupported_perturbations_rejected():
    with pytest.raises(ValueError, match="object_layout"):
        SimplerEnv(
            "bridge_put_carrot_on_plate",
            cameras=(),
            perturbations=[{"type": "object_layout", "objects": {"carrot": {"shift": [0.1, 0.0]}}}],
        )


def test_render_cost_256_is_a_few_ms(make_env):
    env = make_env("google_move_near", image_size=(256, 256))
    env.reset(seed=0, options={"config_id": 0})
    env._render_rgb("agentview")
    for _ in range(10):
        env._render_rgb("agentview")


# ------------------------------------------------------------------ suites
SIMPLER_COUNTS = {
    # episodes per task, from SimplerEnv scripts/*.sh: VM = grid x 4 URDF colourings; VA = grid x aggregated variants
    "simpler_google_vm_panda": {"coke": 25 * 4, "google_move_near": 60 * 4, "apple": 27 * 4, "drawer": 9 * 4},
    "simpler_google_va": {"coke": 25 * 9, "google_move_near": 60 * 8, "apple": 27 * 7, "drawer": 9 * 7},
    "simpler_bridge_vm_panda": {"bridge": 24},
}


@pytest.mark.parametrize("suite", sorted(SIMPLER_COUNTS))
def test_suite_plans_have_simplerenv_episode_counts(suite):
    from collections import Counter

    from vla_eval.execution.plan import build_plan
    from vla_eval.sims.simpler.protocol import aggregated_splits
    from vla_eval.spec import load_suite

    spec = load_suite(suite)
    assert spec.success_rule == "final_step"
    agg = set(aggregated_splits(spec.model_dump(mode="json")))
    plan = build_plan(spec)
    counts = Counter(i.task for i in plan if i.split in agg)
    for task in (t.name for t in spec.tasks):
        key = next(k for k in SIMPLER_COUNTS[suite] if k in task)
        assert counts[task] == SIMPLER_COUNTS[suite][key], task
    keys = [(i.task, i.split, i.episode_index) for i in plan]
    assert len(set(keys)) == len(keys)  # every (task, split, configuration) once
    assert all(i.episode_index < len(TASKS[i.task].configs) for i in plan)


def test_bridge_variant_suite_is_labelled_an_extension():
    from vla_eval.results.report import family_label
    from vla_eval.sims.simpler.protocol import protocol_title
    from vla_eval.spec import load_suite

    spec = load_suite("simpler_bridge_va_ext")
    assert "not a SimplerEnv protocol" in spec.description
    assert "not a SimplerEnv protocol" in protocol_title(spec.model_dump(mode="json"))
    assert "extension" in family_label(spec.name)


def test_suite_rejects_more_episodes_than_configurations(tmp_path):
    import yaml

    from vla_eval.errors import ConfigError
    from vla_eval.spec import load_suite

    data = yaml.safe_load(open("suites/simpler_google_vm_panda.yaml"))
    data["tasks"][4]["episodes"] = 10  # a drawer has 9 configurations
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="9 distinct configurations"):
        load_suite(str(path))


def _subset_suite(tmp_path, suite: str, tasks: list[str], splits: int) -> str:
    import yaml

    data = yaml.safe_load(open(f"suites/{suite}.yaml"))
    data["tasks"] = [t for t in data["tasks"] if t["name"] in tasks]
    kept = []
    for sp in data["splits"][:splits]:
        if sp.get("tasks"):
            sp["tasks"] = [t for t in sp["tasks"] if t in tasks]
            if not sp["tasks"]:
                continue  # this split runs on none of the kept tasks
        kept.append(sp)
    data["splits"] = kept
    opts = data["backend_options"]
    opts["task_groups"] = {
        g: [t for t in m if t in tasks] for g, m in opts.get("task_groups", {}).items() if set(m) & set(tasks)
    }
    opts["exclude_from_aggregate"] = [
        s for s in opts.get("exclude_from_aggregate", []) if s in [x["name"] for x in data["splits"]]
    ]
    data["image_size"] = [32, 32]
    path = tmp_path / f"{suite}_subset.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.slow
@pytest.mark.parametrize(
    "suite,tasks,splits",
    [
        ("simpler_google_vm_panda", ["google_pick_coke_can_standing", "google_open_top_drawer"], 2),
        ("simpler_google_va", ["google_move_near", "google_close_middle_drawer"], 4),
        ("simpler_bridge_vm_panda", ["bridge_put_carrot_on_plate", "bridge_put_eggplant_in_basket"], 1),
    ],
)
def test_noop_runs_every_episode_to_its_step_limit(suite, tasks, splits, tmp_path):
    from vla_eval.cli.main import main
    from vla_eval.execution.plan import build_plan
    from vla_eval.spec import load_suite
    from vla_eval.store import RunStore

    path = _subset_suite(tmp_path, suite, tasks, splits)
    run_dir = tmp_path / "run"
    assert (
        main(
            [
                "run",
                "--suite",
                path,
                "--policy",
                "noop",
                "--episodes",
                "1",
                "--workers",
                "1",
                "--run-dir",
                str(run_dir),
                "--no-progress",
            ]
        )
        == 0
    )
    spec = load_suite(path, {"episodes_per_task": 1})
    with RunStore(run_dir, readonly=True) as store:
        records = list(store.records())
    assert len(records) == len(build_plan(spec)) > 0
    per_task = {t: sum(1 for r in records if r.task == t) for t in tasks}
    assert per_task == {t: sum(1 for s in spec.splits if s.applies_to(t)) for t in tasks}
    if "google_move_near" in tasks:  # table textures run on move near, not on drawers (SimplerEnv's lists)
        assert per_task == {"google_move_near": 3, "google_close_middle_drawer": 1}
    for r in records:
        assert r.steps == TASKS[r.task].max_steps and r.success_rule == "final_step" and r.termination == "timeout"
    table = (run_dir / "table.md").read_text()
    assert "then per task group the mean over its cells" in table


@pytest.mark.slow
def test_suite_runs_with_scripted_expert(tmp_path):
    from vla_eval.cli.main import main
    from vla_eval.execution.runner import load_run_table
    from vla_eval.sims.simpler.protocol import group_aggregation

    tasks = ["google_pick_coke_can_vertical", "google_close_top_drawer"]
    path = _subset_suite(tmp_path, "simpler_google_vm_panda", tasks, 2)
    run_dir = tmp_path / "run"
    assert (
        main(
            [
                "run",
                "--suite",
                path,
                "--policy",
                "simpler_scripted",
                "--episodes",
                "1",
                "--workers",
                "1",
                "--run-dir",
                str(run_dir),
                "--no-progress",
            ]
        )
        == 0
    )
    config, summary, _ = load_run_table(run_dir)
    groups = group_aggregation(summary, config["suite"])
    cells = dict(zip(groups["group"], groups["cells"]))
    assert cells == {"pick coke can": 2, "close drawer": 2, "mean over groups": 4}
    assert (groups["aggregate"] == 1.0).all()
    from vla_eval.results.report import build_report

    report = build_report(tmp_path, tmp_path / "report")
    md = report.markdown_path.read_text()
    assert "SimplerEnv-style aggregate % (mean over task groups)" in md
    assert "group: pick coke can | 100.0 | 2 | 2" in md
    assert "task: google\\_close\\_top\\_drawer | 100.0 | 2 | 2" in md  # Markdown-escaped underscores
