"""The rollout's chunk execution and termination, driven through ``run_episodes``.

A scripted fake env records every action it receives, and a fake policy emits chunks whose
entries encode (call number, position in the chunk), so each test can say exactly which
action of which chunk reached the simulator at every step. Expected values are written out
by hand (or with the reference formula of ACT's temporal ensembling), not computed with
:class:`vla_eval.actions.convert.ChunkExecutor`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from vla_eval.execution.plan import PlanItem
from vla_eval.execution.rollout import EpisodeSettings, run_episode, run_episodes
from vla_eval.policies.base import LIBERO_DELTA_EEF, ActionChunk, Policy


class RecordingEnv:
    """Counts steps and records actions; reports success from step ``succeed_at`` on (1-based)."""

    native_action_space = LIBERO_DELTA_EEF

    def __init__(self, succeed_at: int | None = None, success_at_reset: bool = False, raise_at: int | None = None):
        self.succeed_at, self.success_at_reset, self.raise_at = succeed_at, success_at_reset, raise_at
        self.actions: list[np.ndarray] = []
        self.t = 0

    @property
    def unwrapped(self):
        return self

    def privileged_state(self):
        return {"t": self.t}

    def _obs(self):
        return {"state": {"eef_pos": np.array([self.t, 0.0, 0.0])}, "instruction": "do it"}

    def reset(self, seed=None, options=None):
        self.t = 0
        self.actions = []
        return self._obs(), {"success": self.success_at_reset}

    def step(self, action):
        self.t += 1
        if self.raise_at is not None and self.t == self.raise_at:
            raise RuntimeError("physics blew up")
        self.actions.append(np.array(action, dtype=np.float64))
        ok = self.succeed_at is not None and self.t >= self.succeed_at
        return self._obs(), 0.0, ok, False, {"success": ok}


class ChunkPolicy(Policy):
    """Chunks of ``length`` actions; action i of call c has x = 0.1 * c + 0.01 * i (c counts from 0)."""

    needs_images = False

    def __init__(self, length: int):
        self.length = length
        self.calls = 0
        self.batch_sizes: list[int] = []

    def reset(self, instructions, seeds=None):
        self.calls = 0

    def predict(self, obs_batch):
        self.batch_sizes.append(len(obs_batch))
        a = np.zeros((len(obs_batch), self.length, 7))
        a[:, :, 0] = 0.1 * self.calls + 0.01 * np.arange(self.length)
        a[:, :, -1] = -1.0
        self.calls += 1
        return ActionChunk(actions=a, space=LIBERO_DELTA_EEF)


def _settings(max_steps=7, replan=None, ensemble=None, settle=0):
    return EpisodeSettings(
        run_id="r",
        suite="s",
        max_steps={"t": max_steps},
        settle_steps=settle,
        settle_action=(0, 0, 0, 0, 0, 0, -1.0),
        replan_steps=replan,
        temporal_ensemble=ensemble,
    )


ITEM = PlanItem(task="t", split="in_domain", episode_index=0, init_state_id=0, seed=1)


def _x(env):
    return [round(float(a[0]), 6) for a in env.actions]


def test_replan_steps_runs_first_k_actions_of_each_chunk():
    env, policy = RecordingEnv(), ChunkPolicy(length=5)
    rec, ok = run_episode(env, policy, ITEM, _settings(max_steps=7, replan=3))
    # calls 0, 1, 2; each contributes its actions 0, 1, 2 in order
    assert _x(env) == [0.0, 0.01, 0.02, 0.1, 0.11, 0.12, 0.2]
    assert rec.policy_calls == policy.calls == math.ceil(7 / 3)
    assert rec.steps == 7 and rec.termination == "timeout" and not rec.success and ok


def test_without_replan_the_whole_chunk_runs():
    env, policy = RecordingEnv(), ChunkPolicy(length=4)
    rec, _ = run_episode(env, policy, ITEM, _settings(max_steps=10))
    assert _x(env) == [0.0, 0.01, 0.02, 0.03, 0.1, 0.11, 0.12, 0.13, 0.2, 0.21]
    assert rec.policy_calls == math.ceil(10 / 4) == 3


@pytest.mark.parametrize("replan,steps", [(1, 5), (2, 9), (4, 13), (10, 13)])
def test_policy_calls_are_ceil_steps_over_replan(replan, steps):
    # chunk of 4: replanning after more than 4 actions is capped by the chunk length
    env, policy = RecordingEnv(), ChunkPolicy(length=4)
    rec, _ = run_episode(env, policy, ITEM, _settings(max_steps=steps, replan=replan))
    assert rec.policy_calls == math.ceil(steps / min(replan, 4))
    assert rec.steps == steps == len(env.actions)


@pytest.mark.parametrize("k", [0.0, 0.5])
def test_temporal_ensemble_averages_overlapping_chunks_oldest_first(k):
    env, policy = RecordingEnv(), ChunkPolicy(length=3)
    rec, _ = run_episode(env, policy, ITEM, _settings(max_steps=5, replan=1, ensemble=k))
    # ACT: at step t every chunk c (issued at step c) with c <= t < c + 3 predicts x = 0.1 c + 0.01 (t - c);
    # weights exp(-k * j), j = 0 for the oldest live chunk, normalised.
    expected = []
    for t in range(5):
        live = [c for c in range(t + 1) if t < c + 3]
        w = [math.exp(-k * j) for j in range(len(live))]
        expected.append(round(sum(wi * (0.1 * c + 0.01 * (t - c)) for wi, c in zip(w, live)) / sum(w), 6))
    assert _x(env) == pytest.approx(expected, abs=1e-9)
    if k == 0.0:  # by hand: chunks 0, 1, 2 all cover step 2
        assert _x(env)[2] == pytest.approx((0.02 + 0.11 + 0.2) / 3)
    assert rec.policy_calls == 5


def test_success_ends_the_episode_at_that_step():
    env, policy = RecordingEnv(succeed_at=4), ChunkPolicy(length=3)
    rec, _ = run_episode(env, policy, ITEM, _settings(max_steps=10, replan=2))
    assert rec.success and rec.termination == "success"
    assert rec.steps == 4 == len(env.actions)
    assert rec.policy_calls == 2


def test_timeout_has_exactly_max_steps():
    env, policy = RecordingEnv(), ChunkPolicy(length=3)
    rec, _ = run_episode(env, policy, ITEM, _settings(max_steps=8))
    assert rec.termination == "timeout" and rec.steps == 8 == len(env.actions) and not rec.success


def test_success_on_the_last_allowed_step_counts():
    env = RecordingEnv(succeed_at=6)
    rec, _ = run_episode(env, ChunkPolicy(length=2), ITEM, _settings(max_steps=6))
    assert rec.success and rec.termination == "success" and rec.steps == 6


def test_success_already_at_reset_takes_no_step_and_no_policy_call():
    env, policy = RecordingEnv(success_at_reset=True), ChunkPolicy(length=2)
    rec, _ = run_episode(env, policy, ITEM, _settings(max_steps=6))
    assert rec.success and rec.steps == 0 and policy.calls == 0 and env.actions == []


def test_settle_steps_are_not_counted_and_use_the_settle_action():
    env, policy = RecordingEnv(), ChunkPolicy(length=2)
    rec, _ = run_episode(env, policy, ITEM, _settings(max_steps=3, settle=2))
    assert rec.steps == 3 and len(env.actions) == 5
    assert [a.tolist() for a in env.actions[:2]] == [[0, 0, 0, 0, 0, 0, -1.0]] * 2
    assert _x(env)[2:] == [0.0, 0.01, 0.1]


def test_env_error_is_recorded_with_steps_so_far():
    env = RecordingEnv(raise_at=3)
    rec, ok = run_episode(env, ChunkPolicy(length=5), ITEM, _settings(max_steps=10))
    assert rec.termination == "env_error" and not ok and not rec.success
    assert rec.steps == 2 and "physics blew up" in rec.error


class RaisingPolicy(ChunkPolicy):
    def predict(self, obs_batch):
        if self.calls == 1:
            raise RuntimeError("model exploded")
        return super().predict(obs_batch)


def test_policy_error_ends_only_that_episode_with_its_calls_counted():
    env = RecordingEnv()
    rec, ok = run_episode(env, RaisingPolicy(length=2), ITEM, _settings(max_steps=10))
    assert rec.termination == "policy_error" and ok and rec.steps == 2 and rec.policy_calls == 2
    assert "model exploded" in rec.error


def test_lock_step_batch_calls_policy_once_per_refill_with_the_whole_batch():
    envs = [RecordingEnv(succeed_at=2), RecordingEnv()]
    policy = ChunkPolicy(length=2)
    items = [ITEM, PlanItem(task="t", split="in_domain", episode_index=1, init_state_id=1, seed=2)]
    out = run_episodes(envs, policy, items, _settings(max_steps=5))
    (r0, _), (r1, _) = out
    assert r0.termination == "success" and r0.steps == 2 and r0.policy_calls == 1
    assert r1.termination == "timeout" and r1.steps == 5 and r1.policy_calls == 3
    assert policy.batch_sizes == [2, 2, 2]  # finished episodes stay in the batch
    assert _x(envs[1]) == [0.0, 0.01, 0.1, 0.11, 0.2]


def test_actions_are_clipped_to_the_env_space():
    class Big(ChunkPolicy):
        def predict(self, obs_batch):
            a = np.full((len(obs_batch), 1, 7), 5.0)
            return ActionChunk(actions=a, space=LIBERO_DELTA_EEF)

    env = RecordingEnv()
    run_episode(env, Big(1), ITEM, _settings(max_steps=1))
    assert env.actions[0].tolist() == [1.0] * 7


# ---------------------------------------------------------------- what an episode record carries


class ImageEnv(RecordingEnv):
    def _obs(self):
        o = super()._obs()
        o["images"] = {"cam": np.full((2, 2, 3), self.t, np.uint8)}
        o["instruction"] = f"task at {self.t}"
        return o


def test_record_fields_frames_and_timings():
    import time as _time

    class Slow(ChunkPolicy):
        def predict(self, obs_batch):
            _time.sleep(0.002)
            return super().predict(obs_batch)

    env = ImageEnv()
    frames: list = []
    settings = EpisodeSettings(
        run_id="run-x",
        suite="suite-y",
        max_steps={"t": 3},
        settle_steps=1,
        settle_action=(0, 0, 0, 0, 0, 0, -1.0),
        video_camera="cam",
    )
    item = PlanItem(task="t", split="ood", episode_index=4, init_state_id=2, seed=99)
    rec, ok = run_episode(env, Slow(length=2), item, settings, frames)
    assert (rec.run_id, rec.suite, rec.task, rec.split, rec.episode_index, rec.init_state_id, rec.seed) == (
        "run-x",
        "suite-y",
        "t",
        "ood",
        4,
        2,
        99,
    )
    assert rec.instruction == "task at 0"  # the instruction at reset, not after settling
    assert [int(f[0, 0, 0]) for f in frames] == [1, 2, 3, 4]  # after settle, then one per counted step
    assert rec.policy_time_s >= 2 * 0.002 and rec.sim_time_s > 0 and rec.wall_time_s >= rec.policy_time_s
    assert rec.finished_at and rec.final_state_digest and ok and all(a.dtype == np.float64 for a in env.actions)


def test_actions_reach_the_env_as_float32():
    seen = []

    class Dtype(RecordingEnv):
        def step(self, action):
            seen.append(action.dtype)
            return super().step(action)

    run_episode(Dtype(), ChunkPolicy(length=2), ITEM, _settings(max_steps=2))
    assert seen == [np.float32, np.float32]


def test_state_digest_identifies_the_final_state():
    from vla_eval.execution.rollout import state_digest

    a = {"state": {"x": np.array([1.0, 2.0]), "y": np.array([3.0])}}
    b = {"state": {"y": np.array([3.0]), "x": np.array([1.0, 2.0])}}
    assert state_digest(a) == state_digest(b) and len(state_digest(a)) == 16
    assert state_digest(a) != state_digest({"state": {"x": np.array([1.0, 2.5]), "y": np.array([3.0])}})
    assert state_digest({}) == state_digest({"state": {}})
    r1, _ = run_episode(RecordingEnv(), ChunkPolicy(2), ITEM, _settings(max_steps=3))
    r2, _ = run_episode(RecordingEnv(), ChunkPolicy(2), ITEM, _settings(max_steps=4))
    assert r1.final_state_digest != r2.final_state_digest
    r3, _ = run_episode(RecordingEnv(raise_at=2), ChunkPolicy(2), ITEM, _settings(max_steps=4))
    assert r3.final_state_digest == ""


def test_privileged_state_only_for_policies_that_ask():
    seen = []

    class Peek(ChunkPolicy):
        needs_privileged = True

        def predict(self, obs_batch):
            seen.append(obs_batch[0].get("privileged"))
            return super().predict(obs_batch)

    run_episode(RecordingEnv(), Peek(2), ITEM, _settings(max_steps=3))
    assert seen == [{"t": 0}, {"t": 2}]
    plain = []

    class Plain(ChunkPolicy):
        def predict(self, obs_batch):
            plain.append("privileged" in obs_batch[0])
            return super().predict(obs_batch)

    run_episode(RecordingEnv(), Plain(2), ITEM, _settings(max_steps=2))
    assert plain == [False]


class RowPolicy(ChunkPolicy):
    """Row 1 of the batch is NaN / the chunk has a wrong shape / reset raises, per ``mode``."""

    def __init__(self, mode):
        super().__init__(length=2)
        self.mode = mode

    def reset(self, instructions, seeds=None):
        if self.mode == "reset":
            raise RuntimeError("cannot load")
        super().reset(instructions, seeds)

    def predict(self, obs_batch):
        chunk = super().predict(obs_batch)
        if self.mode == "nan":
            chunk.actions[1, 0, 0] = np.nan
        elif self.mode == "shape":
            chunk.actions = chunk.actions[:, :, :5]
        elif self.mode == "space":
            chunk.space = type(chunk.space)(kind="joint", dim=7)
        return chunk


ITEMS2 = [ITEM, PlanItem(task="t", split="in_domain", episode_index=1, init_state_id=1, seed=2)]


def test_a_nan_row_fails_only_its_own_episode():
    (r0, _), (r1, _) = run_episodes([RecordingEnv(), RecordingEnv()], RowPolicy("nan"), ITEMS2, _settings(max_steps=3))
    assert r0.termination == "timeout" and r0.steps == 3 and r0.error is None
    assert r1.termination == "policy_error" and r1.steps == 0
    assert r1.error == "invalid policy output: actions contain NaN or infinite values"


@pytest.mark.parametrize(
    "mode,message",
    [
        ("shape", "invalid policy output: actions have shape (2, 2, 5), expected (2, T>=1, 7)"),
        ("space", "invalid policy output: no stateless conversion from joint to the env's delta_eef"),
        ("reset", "policy reset failed: RuntimeError: cannot load"),
    ],
)
def test_malformed_output_or_reset_fails_every_episode_with_its_reason(mode, message):
    out = run_episodes([RecordingEnv(), RecordingEnv()], RowPolicy(mode), ITEMS2, _settings(max_steps=3))
    for rec, ok in out:
        assert rec.termination == "policy_error" and rec.error.startswith(message) and rec.steps == 0 and ok


def test_error_text_names_type_message_and_place():
    from vla_eval.execution.rollout import error_text

    try:
        raise KeyError("boom")
    except KeyError as exc:
        text = error_text(exc)
    assert text.startswith("KeyError: 'boom' at ") and "test_rollout.py:" in text
    assert error_text(ValueError("x" * 5000)) == ("ValueError: " + "x" * 5000)[:2000]


def test_failed_record_is_an_env_error_with_the_plan_item():
    from vla_eval.execution.rollout import failed_record

    item = PlanItem(task="t", split="s", episode_index=3, init_state_id=5, seed=8)
    rec = failed_record(_settings(), item, "worker died", attempts=2)
    assert (rec.run_id, rec.suite, rec.task, rec.split, rec.episode_index, rec.init_state_id, rec.seed) == (
        "r",
        "s",
        "t",
        "s",
        3,
        5,
        8,
    )
    assert rec.termination == "env_error" and not rec.success and rec.steps == 0
    assert rec.error == "worker died" and rec.attempts == 2 and rec.finished_at


def test_extras_counters_add_up_and_texts_are_bounded():
    class Talk(ChunkPolicy):
        def predict(self, obs_batch):
            chunk = super().predict(obs_batch)
            chunk.extras = [{"parse_failure": self.calls % 2, "raw_text": f"answer {self.calls}"} for _ in obs_batch]
            return chunk

    rec, _ = run_episode(RecordingEnv(), Talk(1), ITEM, _settings(max_steps=60))
    assert rec.outputs_checked == 60 and rec.parse_failures == 30  # calls 1, 3, 5, ... (counted after predict)
    assert rec.extras["raw_text"] == [f"answer {i}" for i in range(1, 51)]  # the first 50 kept
    assert "parse_failure" not in rec.extras


# ------------------------------------------------------------ instruction switch (two-subtask tasks)


class SwitchingEnv(RecordingEnv):
    """``obs["instruction"]`` changes from "open the drawer" to "place the apple" after step ``switch_at``."""

    def __init__(self, switch_at: int):
        super().__init__()
        self.switch_at = switch_at

    def _obs(self):
        o = super()._obs()
        o["instruction"] = "place the apple" if self.t >= self.switch_at else "open the drawer"
        return o


class SlotAwareChunks(ChunkPolicy):
    """Slot-aware ``ChunkPolicy`` that logs every reset as (slots, instructions)."""

    slot_aware = True

    def __init__(self, length: int):
        super().__init__(length)
        self.resets: list[tuple[list, list[str]]] = []

    def reset(self, instructions, seeds=None, slots=None):
        self.resets.append((list(slots), list(instructions)))
        self.calls = 0

    def predict(self, obs_batch, slots=None):
        return super().predict(obs_batch)


def test_instruction_switch_resets_only_that_episode_and_drops_its_stale_actions():
    envs = [SwitchingEnv(switch_at=3), SwitchingEnv(switch_at=100)]
    policy = SlotAwareChunks(length=5)
    items = [ITEM, PlanItem(task="t", split="in_domain", episode_index=1, init_state_id=1, seed=2)]
    (rec, _), (other, _) = run_episodes(envs, policy, items, _settings(max_steps=6))
    # reset for both at the start, then only slot 0 with the new instruction, as SimplerEnv's models do
    assert policy.resets == [([0, 1], ["open the drawer"] * 2), ([0], ["place the apple"])]
    # the rest of the first chunk (planned for the old subtask) never reached env 0: after 3 actions a
    # new chunk starts (its x restarts from the reset call counter)
    assert _x(envs[0])[:3] == [0.0, 0.01, 0.02] and _x(envs[0])[3] != 0.03
    assert rec.extras["instruction_switches"] == [{"step": 3, "instruction": "place the apple"}]
    assert rec.instruction == "open the drawer"  # the record keeps the episode's first instruction
    assert "instruction_switches" not in other.extras and _x(envs[1])[:5] == [0.0, 0.01, 0.02, 0.03, 0.04]


def test_instruction_switch_with_a_batch_of_one_resets_a_plain_policy():
    env, policy = SwitchingEnv(switch_at=2), ChunkPolicy(length=4)
    resets = []
    policy.reset = lambda instructions, seeds=None: resets.append(list(instructions))
    rec, _ = run_episode(env, policy, ITEM, _settings(max_steps=5))
    assert resets == [["open the drawer"], ["place the apple"]]
    assert rec.extras["instruction_switches"][0]["step"] == 2 and rec.steps == 5
