"""Render on demand: envs draw only what the policy or the video looks at, and the records do not change.

The parity tests run the same cut of a suite twice, ``--render eager`` and the default on-demand
rendering, and require identical outcomes (success, steps, termination, final state digest).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from vla_eval.actions.space import LIBERO_DELTA_EEF, ActionChunk
from vla_eval.adapter import Policy
from vla_eval.execution.plan import PlanItem
from vla_eval.execution.rollout import EpisodeSettings, run_episodes
from vla_eval.execution.runner import RunRequest, run
from vla_eval.sims.contract import check_observation
from vla_eval.spec import SuiteSpec, load_suite
from vla_eval.store import RunStore

TabletopEnv = pytest.importorskip("vla_eval.sims.tabletop.env").TabletopEnv


class _Chunked(Policy):
    """Chunks of 10 zero actions; the harness executes ``replan_steps`` of each."""

    name = "chunked"
    action_space = LIBERO_DELTA_EEF

    def __init__(self, cameras=None):
        self.cameras_needed = cameras
        self.seen: list[tuple[str, ...]] = []

    def predict(self, obs_batch):
        self.seen.append(tuple(sorted(obs_batch[0].get("images", {}))))
        return ActionChunk(actions=np.zeros((len(obs_batch), 10, 7)), space=LIBERO_DELTA_EEF)


def _counting_env(monkeypatch):
    env = TabletopEnv("pick_place_cube", cameras=("agentview", "wrist"), image_size=(32, 32))
    drawn: list[tuple[int, str]] = []
    real = env._render_rgb

    def render(cam):
        drawn.append((env._obs_index, cam))
        return real(cam)

    monkeypatch.setattr(env, "_render_rgb", render)
    return env, drawn


def _settings(render="on_demand", video=None, max_steps=20, settle=0, **kw):
    return EpisodeSettings(
        run_id="r",
        suite="s",
        max_steps={"t": max_steps},
        settle_steps=settle,
        settle_action=(0, 0, 0, 0, 0, 0, -1),
        replan_steps=5,
        video_camera=video,
        render=render,
        **kw,
    )


ITEM = PlanItem(task="t", split="in_domain", episode_index=0, init_state_id=0, seed=3)


def test_policy_cameras_are_drawn_only_on_the_steps_the_policy_is_queried(monkeypatch):
    env, drawn = _counting_env(monkeypatch)
    policy = _Chunked(cameras=("agentview",))
    ((record, ok),) = run_episodes([env], policy, [ITEM], _settings())
    assert ok and record.steps == 20 and record.policy_calls == 4
    assert drawn == [(i, "agentview") for i in (0, 5, 10, 15)]  # queried after reset and every 5th step; no wrist
    assert policy.seen == [("agentview",)] * 4
    env.close()


def test_eager_rendering_draws_every_camera_every_step(monkeypatch):
    env, drawn = _counting_env(monkeypatch)
    ((record, _),) = run_episodes([env], _Chunked(cameras=("agentview",)), [ITEM], _settings(render="eager"))
    assert len(drawn) == 2 * (record.steps + 1)
    env.close()


def test_settle_steps_render_nothing_but_the_first_observation(monkeypatch):
    env, drawn = _counting_env(monkeypatch)
    run_episodes([env], _Chunked(cameras=("wrist",)), [ITEM], _settings(settle=4, max_steps=5))
    assert drawn == [(4, "wrist")]  # the last settle step's picture is the policy's first observation
    env.close()


def test_video_frames_come_from_the_video_camera_every_other_step(monkeypatch):
    env, drawn = _counting_env(monkeypatch)
    frames: list = []
    ((record, _),) = run_episodes([env], _Chunked(cameras=("wrist",)), [ITEM], _settings(video="agentview"), [frames])
    assert [i for i, cam in drawn if cam == "agentview"] == list(range(0, 21, 2))
    assert [i for i, cam in drawn if cam == "wrist"] == [0, 5, 10, 15]
    assert len(frames) == 11 and frames[0].shape == (32, 32, 3)
    assert record.extras["video_frame_stride"] == 2


def test_an_unforeseen_query_renders_late_with_the_same_pictures(monkeypatch):
    """An instruction switch resets the chunk; the policy still gets the current step's pictures."""
    env, _ = _counting_env(monkeypatch)
    env.reset(seed=1)
    env.set_render_cameras(())
    obs, *_ = env.step(np.zeros(7))
    assert "images" not in obs and check_observation(obs, env, rendered=()) == []
    late = env.render_observation(["wrist"])
    env.set_render_cameras(None)
    assert sorted(late["images"]) == ["wrist"]
    assert np.array_equal(late["images"]["wrist"], env._observation()["images"]["wrist"])
    with pytest.raises(ValueError, match="cannot render cameras \\['top'\\]"):
        env.set_render_cameras(["top"])
    env.close()


class _Lazy(_Chunked):
    """Declares lazy images and reads ``agentview`` only on the calls ``reads`` names (1-based)."""

    lazy_images = True

    def __init__(self, cameras=("agentview",), reads=(1, 3), orientation="upright"):
        super().__init__(cameras)
        self.image_orientation = orientation
        self.reads, self.calls, self.got = set(reads), 0, []

    def predict(self, obs_batch):
        self.calls += 1
        o = obs_batch[0]
        self.seen.append(tuple(sorted(o.get("images", {}))))  # the keys: nothing is drawn for them
        assert "agentview" in o["images"] and "top" not in o["images"]
        if self.calls in self.reads:
            views = {k: o[k]["agentview"] for k in ("images", "depth", "camera_params") if k in o}
            self.got.append(views)
        return ActionChunk(actions=np.zeros((len(obs_batch), 10, 7)), space=LIBERO_DELTA_EEF)


def test_a_lazy_policy_draws_only_the_pictures_it_reads(monkeypatch):
    env, drawn = _counting_env(monkeypatch)
    policy = _Lazy(reads=(1, 3))
    ((record, ok),) = run_episodes([env], policy, [ITEM], _settings())
    assert ok and record.steps == 20 and record.policy_calls == 4 and record.termination == "timeout"
    assert drawn == [(0, "agentview"), (10, "agentview")]  # queried at 0, 5, 10, 15; read at the 1st and 3rd
    assert policy.seen == [("agentview",)] * 4  # every call sees which cameras it may read
    assert record.extras["lazy_renders"] == 2
    env.close()


def test_a_lazy_picture_read_after_the_env_stepped_on_fails_the_episode_clearly(monkeypatch):
    env, drawn = _counting_env(monkeypatch)

    class Stale(_Lazy):
        def predict(self, obs_batch):
            if self.calls == 1:
                self.old["agentview"]  # the previous call's mapping: the env has stepped since
            self.old = obs_batch[0]["images"]
            return super().predict(obs_batch)

    ((record, _),) = run_episodes([env], Stale(reads=()), [ITEM], _settings())
    assert record.termination == "policy_error" and record.steps == 5
    assert "read after the env stepped on" in record.error and drawn == []
    env.close()


def _views_at_queries(render: str, lazy: bool) -> tuple[list, object]:
    env = TabletopEnv("pick_place_cube", cameras=("agentview", "wrist"), image_size=(32, 24), depth=True)
    policy = _Lazy(reads=(1, 2, 3, 4), orientation="libero_rot180")
    policy.lazy_images = lazy
    ((record, ok),) = run_episodes([env], policy, [ITEM], _settings(render=render))
    env.close()
    assert ok and len(policy.got) == 4
    return policy.got, record


@pytest.mark.parametrize("render, lazy", [("eager", False), ("on_demand", False)])
def test_lazily_drawn_images_depth_and_camera_params_match_eager_after_orientation(render, lazy):
    """A picture drawn on first read is converted to the policy's orientation like one drawn with the step."""
    lazy_views, lazy_record = _views_at_queries("on_demand", lazy=True)
    ref_views, _ = _views_at_queries(render, lazy)
    assert lazy_record.extras["lazy_renders"] == 4
    assert lazy_record.extras["image_conversion"] == "top_left->libero_rot180:flip_cols"
    for got, ref in zip(lazy_views, ref_views):
        assert sorted(got) == ["camera_params", "depth", "images"]
        assert np.array_equal(got["images"], ref["images"]) and got["images"].shape == (32, 24, 3)
        assert np.array_equal(got["depth"], ref["depth"])
        K = np.asarray(got["camera_params"]["intrinsics"])
        assert np.array_equal(K, ref["camera_params"]["intrinsics"]) and K[0, 0] < 0  # columns flipped
        assert np.array_equal(got["camera_params"]["extrinsics"], ref["camera_params"]["extrinsics"])


def test_gymnasium_check_env_still_passes():
    from gymnasium.utils.env_checker import check_env

    env = TabletopEnv("pick_place_cube", cameras=("agentview",), image_size=(32, 32))
    check_env(env, skip_render_check=True)
    env.close()


def test_image_noise_does_not_depend_on_which_frames_were_rendered():
    pert = [{"type": "image_noise", "std": 12}]
    eager = TabletopEnv("pick_place_cube", cameras=("agentview",), image_size=(32, 32), perturbations=pert)
    lazy = TabletopEnv("pick_place_cube", cameras=("agentview",), image_size=(32, 32), perturbations=pert)
    eager.reset(seed=5)
    lazy.reset(seed=5)
    lazy.set_render_cameras(())
    for _ in range(3):
        eager_obs, *_ = eager.step(np.zeros(7))
        lazy.step(np.zeros(7))
    lazy.set_render_cameras(None)
    eager_obs, *_ = eager.step(np.zeros(7))
    lazy_obs, *_ = lazy.step(np.zeros(7))
    assert np.array_equal(eager_obs["images"]["agentview"], lazy_obs["images"]["agentview"])
    eager.close()
    lazy.close()


# ------------------------------------------------------------------ records identical, eager vs on demand
def _cut(
    suite: str, tasks: list[str] | None, image_size: int, cameras: list[str] | None = None, max_steps: int | None = None
) -> SuiteSpec:
    data = load_suite(suite).model_dump(mode="json")
    if tasks is not None:
        data["tasks"] = [t for t in data["tasks"] if t["name"] in tasks]
    data["splits"] = data["splits"][:1]
    data["episodes_per_task"] = 1
    data["image_size"] = [image_size, image_size]
    if cameras is not None:
        data["cameras"] = cameras
    if max_steps is not None:
        data["max_steps"] = max_steps
        for t in data["tasks"]:
            t.pop("max_steps", None)
    data["backend_options"].pop("task_groups", None)
    return SuiteSpec.model_validate(data)


def _outcomes(tmp_path, spec, policy, render: str, args=()) -> list[tuple]:
    out = tmp_path / render
    run(
        RunRequest(
            suite=spec,
            policy=policy,
            policy_args=list(args),
            workers=1,
            run_dir=out,
            progress=False,
            render=render,
            dead_policy_episodes=10**6,
        )
    )
    with RunStore(out, readonly=True) as store:
        recs = sorted(store.records(), key=lambda r: (r.task, r.episode_index))
    assert json.loads((out / "run.json").read_text())["render"] == render  # the run says how it was drawn
    return [(r.task, r.success, r.steps, r.termination, r.final_state_digest, r.policy_calls) for r in recs]


def _assert_same(tmp_path, spec, policy, args=()):
    eager = _outcomes(tmp_path, spec, policy, "eager", args)
    lazy = _outcomes(tmp_path, spec, policy, "on_demand", args)
    assert all(o[3] != "policy_error" for o in eager), eager
    assert lazy == eager
    return eager


def _openvla_oracle(ckpts):
    from vla_eval.conformance.checkpoints import build_llava_oracle_checkpoint
    from vla_eval.policy_config import PolicyConfig, resolve_policy

    user = resolve_policy("openvla", [])
    args = {
        **user.args,
        "checkpoint": str(build_llava_oracle_checkpoint(ckpts / "llava_oracle")),
        "device": "cpu",
        "dtype": "float32",
        "trust_remote_code": False,
        "model_class": "auto",
        "append_token_id": None,
        "unnorm_key": "conformance",
    }
    return PolicyConfig(
        name="openvla_oracle",
        adapter="vla_eval.conformance.openvla_oracle:OpenVlaOracle",
        args=args,
        execution=user.execution,
    )


def _pi0_oracle():
    from vla_eval.conformance.openpi_oracle import start_oracle_server
    from vla_eval.policy_config import PolicyConfig, resolve_policy

    user = resolve_policy("pi0_remote", [])
    server = start_oracle_server(replan_steps=5, chunk=10)
    args = {**user.args, "uri": server.url, "send_privileged": True, "send_reset": True, "check_health": True}
    args.pop("host", None), args.pop("port", None)
    return server, PolicyConfig(
        name="pi0_remote_oracle",
        adapter="vla_eval.conformance.openpi_oracle:OracleClient",
        args=args,
        execution=user.execution,
    )


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    return tmp_path_factory.mktemp("render_oracle_checkpoints")


TABLETOP = dict(suite="tabletop_basic", tasks=None, image_size=64)


@pytest.mark.parametrize("policy", ["scripted", "random", "reference"])
def test_tabletop_records_identical_eager_and_on_demand(tmp_path, policy):
    _assert_same(tmp_path, _cut(**TABLETOP), policy)


def test_tabletop_openvla_oracle_records_identical(tmp_path, ckpts):
    pytest.importorskip("transformers")
    rows = _assert_same(tmp_path, _cut(**TABLETOP, cameras=["agentview"]), _openvla_oracle(ckpts))
    assert any(r[1] for r in rows)  # the oracle succeeds somewhere: the comparison is not of empty episodes


def test_tabletop_pi0_oracle_records_identical(tmp_path):
    server, cfg = _pi0_oracle()
    try:
        rows = _assert_same(tmp_path, _cut(**TABLETOP), cfg)
    finally:
        server.shutdown()
    assert any(r[1] for r in rows)


def _vla_r1_oracle(ckpts):
    from vla_eval.conformance.checkpoints import build_qwen_oracle_checkpoint
    from vla_eval.policy_config import PolicyConfig, resolve_policy

    user = resolve_policy("vla_r1", [])
    checkpoint = build_qwen_oracle_checkpoint(ckpts / "qwen2_5_vl_oracle")
    args = {**user.args, "checkpoint": str(checkpoint), "device": "cpu", "dtype": "float32", "task_mode": "pick_place"}
    return PolicyConfig(
        name="vla_r1_oracle",
        adapter="vla_eval.conformance.vla_r1_oracle:VlaR1Oracle",
        args=args,
        execution=user.execution,
    )


def test_tabletop_vla_r1_oracle_records_identical_with_lazy_images(tmp_path, ckpts):
    """VLA-R1 reads its camera only when it plans: on demand draws exactly one picture per model query."""
    pytest.importorskip("transformers")
    rows = _assert_same(tmp_path, _cut(**TABLETOP), _vla_r1_oracle(ckpts))
    assert any(r[1] for r in rows)
    with RunStore(tmp_path / "on_demand", readonly=True) as store:
        recs = list(store.records())
    for r in recs:
        assert r.outputs_checked >= 1 and r.extras.get("lazy_renders") == r.outputs_checked, (r.task, r.extras)
        assert r.outputs_checked < r.policy_calls  # queried every step, drawn only when it planned


LIBERO_TASKS = [
    "pick_up_the_black_bowl_between_the_plate_and_the_ramekin_and_place_it_on_the_plate",
    "pick_up_the_black_bowl_next_to_the_ramekin_and_place_it_on_the_plate",
]


def _libero_cut(**kw):
    pytest.importorskip("libero")
    return _cut("libero_spatial", LIBERO_TASKS, 64, max_steps=30, **kw)


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["expert", "random", "reference"])
def test_libero_records_identical_eager_and_on_demand(tmp_path, policy):
    if policy == "expert":
        from vla_eval.backends import get_backend

        policy = str(get_backend("libero").expert)
    _assert_same(tmp_path, _libero_cut(), policy)


@pytest.mark.slow
def test_libero_openvla_oracle_records_identical(tmp_path, ckpts):
    pytest.importorskip("transformers")
    _assert_same(tmp_path, _libero_cut(cameras=["agentview"]), _openvla_oracle(ckpts))


@pytest.mark.slow
def test_libero_pi0_oracle_records_identical(tmp_path):
    server, cfg = _pi0_oracle()
    try:
        _assert_same(tmp_path, _libero_cut(), cfg)
    finally:
        server.shutdown()


@pytest.mark.slow
def test_libero_frames_match_eager_on_the_steps_drawn():
    """robosuite samples a step's frame at its first physics substep; a gated sensor keeps that clock."""
    from vla_eval.sims.libero.env import LiberoEnv

    envs = [LiberoEnv(LIBERO_TASKS[0], suite="libero_spatial", image_size=(64, 64)) for _ in range(2)]
    eager, lazy = envs
    for e in envs:
        e.reset(seed=0, options={"init_state_id": 0})
    rng = np.random.default_rng(0)
    for t in range(7):
        a = rng.uniform(-1, 1, 7)
        lazy.set_render_cameras(("wrist",) if t % 3 == 2 else ())
        eo, *_ = eager.step(a)
        lo, *_ = lazy.step(a)
        assert sorted(lo.get("images", {})) == (["wrist"] if t % 3 == 2 else [])
        if t % 3 == 2:
            assert np.array_equal(eo["images"]["wrist"], lo["images"]["wrist"])
        assert all(np.array_equal(eo["state"][k], lo["state"][k]) for k in eo["state"])
    for e in envs:
        e.close()


def test_doctor_reports_what_will_be_rendered(tmp_path, capsys):
    import json

    from vla_eval.cli.main import main

    def rendering(policy: str) -> dict:
        out = tmp_path / policy
        assert main(["doctor", "--suite", "tabletop_basic", "--policy", policy, "--out", str(out)]) == 0
        return json.loads((out / "doctor.json").read_text())["protocol"]["rendering"]

    scripted, reference = rendering("scripted"), rendering("reference")
    assert scripted["policy_cameras"] == [] and scripted["policy_cameras_drawn"] == "never"
    assert reference["policy_cameras"] and "when the policy is queried" in reference["policy_cameras_drawn"]
    assert reference["settle_steps_and_success_checks"] == "nothing drawn"
    assert "rendering:" in capsys.readouterr().out
