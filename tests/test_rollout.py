"""The rollout's chunk execution and termination, driven through ``run_episodes``.

A scripted fake env records every action it receives, and a fake policy emits chunks whose
entries encode (call number, position in the chunk), so each test can say exactly which
action of which chunk reached the simulator at every step. Expected values are written out
by hand (or with the reference formula of ACT's temporal ensembling), not computed with
:class:`vla_eval.actions.ChunkExecutor`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from vla_eval.plan import PlanItem
from vla_eval.policies.base import LIBERO_DELTA_EEF, ActionChunk, Policy
from vla_eval.rollout import EpisodeSettings, run_episode, run_episodes


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
    return EpisodeSettings(run_id="r", suite="s", max_steps={"t": max_steps}, settle_steps=settle,
                           settle_action=(0, 0, 0, 0, 0, 0, -1.0), replan_steps=replan, temporal_ensemble=ensemble)


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
