"""The SimplerEnv wrapper presets, end to end through the rollout: hand-made raw model outputs in, the env's actions
out, checked against the wrappers' formulas (tests/actions/test_wrapper_rules.py transcribes them from the upstream
files) and SimplerEnv's ``ActionEnsembler`` (``simpler_env/utils/action/action_ensemble.py`` @ 4ab7178)."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from tests.actions.test_wrapper_rules import UpstreamOctoLike, upstream_rt1
from vla_eval.actions.wrapper_rules import GOOGLE_ENV_ACTION, WIDOWX_ENV_ACTION
from vla_eval.execution.plan import PlanItem
from vla_eval.execution.rollout import EpisodeSettings, run_episode
from vla_eval.execution.settings import chunk_execution
from vla_eval.policies.base import ActionChunk, ActionSpace, Policy
from vla_eval.policies.image_preprocess import ImagePreprocess, lanczos3_resize, tf_resize_with_pad
from vla_eval.policy_config import resolve_policy

ITEM = PlanItem(task="t", split="in_domain", episode_index=0, init_state_id=0, seed=1)
PRESETS = ["rt1_simpler", "rt1x_simpler", "octo_simpler", "openvla_simpler", "openvla_simpler_google"]


class SimplerLikeEnv:
    """Records actions; declares a SimplerEnv robot (``policy_setup``) and its metric action space."""

    def __init__(self, setup: str, subtasks: int = 1, max_success_step: int | None = None):
        self.policy_setup = setup
        self.native_action_space = GOOGLE_ENV_ACTION if setup == "google_robot" else WIDOWX_ENV_ACTION
        self.subtasks, self.subtask = subtasks, 0
        self.actions: list[np.ndarray] = []
        self.advanced_at: list[int] = []

    @property
    def unwrapped(self):
        return self

    def is_final_subtask(self):
        return self.subtask == self.subtasks - 1

    def advance_to_next_subtask(self):
        self.advanced_at.append(len(self.actions))
        self.subtask += 1

    def _obs(self):
        return {"state": {"eef_pos": np.zeros(3)}, "instruction": "pick coke can"}

    def reset(self, seed=None, options=None):
        self.actions, self.subtask = [], 0
        return self._obs(), {"success": False}

    def step(self, action):
        self.actions.append(np.array(action, dtype=np.float64))
        return self._obs(), 0.0, False, False, {"success": False}


class RawPolicy(Policy):
    """Returns scripted raw chunks (``raws[call]``, shape (T, D)) in a deliberately wrong declared space: with an
    action rule the harness must read the numbers as the wrapper does, not convert them."""

    needs_images = False

    def __init__(self, raws: list[np.ndarray]):
        self.raws, self.calls = raws, 0

    def reset(self, instructions, seeds=None):
        self.calls = 0

    def predict(self, obs_batch):
        raw = self.raws[min(self.calls, len(self.raws) - 1)]
        self.calls += 1
        space = ActionSpace(dim=raw.shape[-1], rotation="quat_wxyz" if raw.shape[-1] == 8 else "axis_angle")
        return ActionChunk(actions=raw[None], space=space)


def _settings(preset: str, max_steps: int) -> EpisodeSettings:
    cfg = resolve_policy(preset)
    replan, ensemble = chunk_execution(cfg, None)
    return EpisodeSettings(
        run_id="r",
        suite="s",
        max_steps={"t": max_steps},
        settle_steps=0,
        settle_action=(0.0,) * 7,
        replan_steps=replan,
        temporal_ensemble=ensemble,
        action_rule=cfg.execution.action_rule,
        success_rule="final_step",
    )


def test_presets_resolve_with_their_wrappers_image_chain_and_rule():
    want = {
        "rt1_simpler": ("remote", "simpler_rt1", "tf_resize_with_pad", (256, 320)),
        "rt1x_simpler": ("remote", "simpler_rt1", "tf_resize_with_pad", (256, 320)),
        "octo_simpler": ("remote", "simpler_octo", "tf_lanczos3", (256, 256)),
        "openvla_simpler": ("openvla", "simpler_openvla", "cv2_inter_area", (224, 224)),
        "openvla_simpler_google": ("openvla", "simpler_openvla", "cv2_inter_area", (224, 224)),
    }
    for name in PRESETS:
        cfg = resolve_policy(name)
        adapter, rule, chain, size = want[name]
        image = cfg.args["obs"]["image"] if adapter == "remote" else cfg.args["image"]
        assert (cfg.adapter, cfg.execution.action_rule, image["chain"], tuple(image["resize"])) == (
            adapter,
            rule,
            chain,
            size,
        )
    octo = resolve_policy("octo_simpler")
    assert (octo.execution.replan_steps, octo.execution.temporal_ensemble, octo.args["max_chunk"]) == (1, 0.0, 4)
    assert octo.args["obs"]["history"] == 2
    vla = resolve_policy("openvla_simpler")
    assert vla.args["prompt_template"] == "{instruction}" and vla.args["binarize_gripper"] is False
    assert (vla.args["unnorm_key"], resolve_policy("openvla_simpler_google").args["unnorm_key"]) == (
        "bridge_orig",
        "fractal20220817_data",
    )


def upstream_ensemble(predictions: list[np.ndarray], horizon: int = 4, temp: float = 0.0) -> list[np.ndarray]:
    """SimplerEnv's ``ActionEnsembler.ensemble_action`` (action_ensemble.py L15-30), one call per step."""
    history: deque = deque(maxlen=horizon)
    out = []
    for cur in predictions:
        history.append(cur)
        n = len(history)
        preds = np.stack([p[i] for i, p in zip(range(n - 1, -1, -1), history)])
        w = np.exp(-temp * np.arange(n))
        w = w / w.sum()
        out.append(np.sum(w[:, None] * preds, axis=0))
    return out


@pytest.mark.parametrize("setup", ["google_robot", "widowx_bridge"])
def test_octo_preset_ensembles_the_raw_predictions_then_applies_the_gripper_rule(setup):
    rng = np.random.default_rng(3)
    steps = 30
    raws = []
    for c in range(steps):
        chunk = np.concatenate([rng.uniform(-0.02, 0.02, (4, 3)), rng.uniform(-0.2, 0.2, (4, 3)), np.zeros((4, 1))], 1)
        chunk[:, 6] = 1.0 if (c // 6) % 2 == 0 else 0.0  # open for 6 calls, closed for 6, ...
        chunk[:, 6] += rng.uniform(-0.3, 0.3, 4)  # so the ensembled gripper sits between 0 and 1 at the switches
        raws.append(chunk)
    env = SimplerLikeEnv(setup)
    record, _ = run_episode(env, RawPolicy(raws), ITEM, _settings("octo_simpler", steps))
    assert record.termination == "timeout" and record.steps == steps
    upstream = UpstreamOctoLike(setup)
    want = [upstream.step(a) for a in upstream_ensemble(raws)]
    np.testing.assert_allclose(np.stack(env.actions), np.stack(want), atol=1e-12)
    if setup == "widowx_bridge":
        assert set(np.stack(env.actions)[:, 6]) == {-1.0, 1.0}  # binarised after ensembling, never fractional


@pytest.mark.parametrize("setup", ["google_robot", "widowx_bridge"])
def test_rt1_preset_actions_are_the_wrappers_and_terminate_ends_the_episode_after_that_step(setup):
    rng = np.random.default_rng(4)
    reach = 0.9 if setup == "google_robot" else 2.0  # the harness keeps the env's +-1 bounds (metres, radians)
    raws = [np.concatenate([rng.uniform(-reach, reach, 6), rng.uniform(-1, 1, 1), [0.0]])[None] for _ in range(9)]
    raws[4][0, 7] = 1.0  # the fifth call says terminate_episode
    env = SimplerLikeEnv(setup)
    record, _ = run_episode(env, RawPolicy(raws), ITEM, _settings("rt1_simpler", 80))
    assert (record.termination, record.steps, record.success) == ("policy_terminated", 5, False)
    want = [upstream_rt1(r[0], setup)[0] for r in raws[:5]]
    np.testing.assert_allclose(np.stack(env.actions), np.stack(want), atol=1e-12)


def test_rt1_terminate_before_the_last_subtask_advances_it_instead():
    raws = [np.array([[0.01, 0, 0, 0, 0, 0, 0, 0.0]])] * 2 + [np.array([[0.01, 0, 0, 0, 0, 0, 0, 1.0]])]
    raws += [np.array([[0.01, 0, 0, 0, 0, 0, 0, 0.0]])] * 3 + [np.array([[0.01, 0, 0, 0, 0, 0, 0, 1.0]])]
    env = SimplerLikeEnv("google_robot", subtasks=2)
    record, _ = run_episode(env, RawPolicy(raws), ITEM, _settings("rt1_simpler", 80))
    assert env.advanced_at == [2]  # advanced before stepping the third action, as the evaluator does
    assert record.extras["policy_advanced_subtask"] == [2]
    assert (record.termination, record.steps) == ("policy_terminated", 7)


def test_a_rule_on_a_robot_it_does_not_know_fails_the_episode_with_the_reason():
    env = SimplerLikeEnv("panda")
    record, _ = run_episode(env, RawPolicy([np.zeros((1, 8))]), ITEM, _settings("rt1_simpler", 5))
    assert record.termination == "policy_error" and "policy_setup is 'panda'" in record.error


def test_a_raw_output_of_the_wrong_width_is_a_policy_error_not_a_crash():
    env = SimplerLikeEnv("google_robot")
    record, _ = run_episode(env, RawPolicy([np.zeros((1, 7))]), ITEM, _settings("rt1_simpler", 5))
    assert record.termination == "policy_error" and "takes 8 numbers" in record.error


# ----------------------------------------------------------------------------- images from the native frame
def _frame(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_rt1_resize_with_pad_from_the_google_and_bridge_frames():
    google = _frame(512, 640)
    out = ImagePreprocess(chain="tf_resize_with_pad", resize=(256, 320)).apply(google)
    # exactly half size: TensorFlow's half-pixel bilinear averages each 2x2 block; the cast truncates
    block = google.astype(np.float64).reshape(256, 2, 320, 2, 3).mean(axis=(1, 3))
    np.testing.assert_array_equal(out, np.floor(block).astype(np.uint8))
    bridge = _frame(480, 640, 1)
    out = tf_resize_with_pad(bridge, (256, 320))
    assert out.shape == (256, 320, 3)
    assert not out[:8].any() and not out[-8:].any()  # 320x240 centred: 8 black rows above and below
    block = bridge.astype(np.float64).reshape(240, 2, 320, 2, 3).mean(axis=(1, 3))
    np.testing.assert_array_equal(out[8:-8], np.floor(block).astype(np.uint8))


def test_octo_and_openvla_resizes():
    cv2 = pytest.importorskip("cv2")
    frame = _frame(512, 640, 2)
    octo = ImagePreprocess(chain="tf_lanczos3", resize=(256, 256)).apply(frame)
    np.testing.assert_array_equal(octo, lanczos3_resize(frame, (256, 256)))
    vla = ImagePreprocess(chain="cv2_inter_area", resize=(224, 224)).apply(frame)
    np.testing.assert_array_equal(vla, cv2.resize(frame, (224, 224), interpolation=cv2.INTER_AREA))
    with pytest.raises(ValueError, match="needs resize"):
        ImagePreprocess(chain="cv2_inter_area")
    with pytest.raises(ValueError, match="one resize, nothing else"):
        ImagePreprocess(chain="tf_lanczos3", resize=(256, 256), jpeg_quality=95)


def test_octo_preset_sends_the_two_frame_window_over_the_wire():
    """The preset's client against a real ``vla-eval serve`` server: the served policy sees the 256x256 lanczos3
    frames, one after a reset and then the last two, oldest first, with an all-ones pad mask."""
    pytest.importorskip("websockets")
    from vla_eval.remote.openpi_policy import RemotePolicy
    from vla_eval.remote.server import PolicyServer

    seen: list[dict] = []

    class Recorder(Policy):
        name = "recorder"

        def predict(self, obs_batch):
            seen.extend({"history": o["image_history"], "mask": o["pad_mask"]} for o in obs_batch)
            return ActionChunk(actions=np.zeros((len(obs_batch), 4, 7)))

    server = PolicyServer(Recorder(), port=0)
    server.start_in_thread()
    try:
        args = dict(resolve_policy("octo_simpler").args, port=server.port, check_health=False)
        client = RemotePolicy(**args)
        frames = [_frame(512, 640, s) for s in range(3)]
        client.reset(["pick coke can"], [0], [0])
        for f in frames:
            client.predict([{"images": {"agentview": f}, "state": {}, "instruction": "pick coke can"}], [0])
        client.reset(["pick coke can"], [0], [0])
        client.predict([{"images": {"agentview": frames[2]}, "state": {}, "instruction": "pick coke can"}], [0])
        client.close()
    finally:
        server.shutdown()
    small = [lanczos3_resize(f, (256, 256)) for f in frames]
    assert [s["history"].shape[0] for s in seen] == [1, 2, 2, 1]
    np.testing.assert_array_equal(seen[1]["history"], np.stack(small[:2]))
    np.testing.assert_array_equal(seen[2]["history"], np.stack(small[1:]))
    np.testing.assert_array_equal(seen[3]["history"][0], small[2])
    assert all(np.array_equal(s["mask"], np.ones(s["history"].shape[0])) for s in seen)
