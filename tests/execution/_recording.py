"""A tabletop backend whose env logs every reset and action, and a policy that logs every call.

Both append JSON lines to the file named by ``$VLA_EVAL_TEST_RECORD_LOG``, so a test can read,
per episode seed, the order in which the env and the policy were driven by a real
``vla-eval run`` (workers are spawned processes: an environment variable and a file are what
reach them). Imported by name (``_recording:RecordingBackend``) from suite files and ``--policy``.
"""

from __future__ import annotations

import json
import os

import numpy as np

from vla_eval.policies.base import ActionChunk, Policy
from vla_eval.sims.tabletop.backend import TabletopBackend

POLICY_ACTION = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
"""What :class:`LoggingPolicy` always asks for (gripper closed): unlike any settle action the tests use."""


def _log(event: str, seed, **fields) -> None:
    with open(os.environ["VLA_EVAL_TEST_RECORD_LOG"], "a") as f:
        f.write(json.dumps({"event": event, "seed": None if seed is None else int(seed), **fields}) + "\n")


class _RecordingEnv:
    def __init__(self, env):
        self._env, self._seed = env, None

    def __getattr__(self, name):
        return getattr(self._env, name)

    def reset(self, seed=None, options=None):
        self._seed = seed
        _log("reset", seed)
        return self._env.reset(seed=seed, options=options)

    def step(self, action):
        _log("step", self._seed, action=[round(float(a), 6) for a in np.asarray(action).reshape(-1)])
        return self._env.step(action)


class RecordingBackend(TabletopBackend):
    """The tabletop backend, its envs wrapped to log what they receive."""

    name = "recording"

    def make_env(self, spec, task, split, cameras, depth=False):
        return _RecordingEnv(super().make_env(spec, task, split, cameras, depth))


class LoggingPolicy(Policy):
    """State-only; always returns :data:`POLICY_ACTION` and logs each ``reset`` and ``predict`` with its seeds."""

    name = "logging"
    needs_images = False

    def __init__(self):
        self._seeds: list = []

    def reset(self, instructions, seeds=None):
        self._seeds = list(seeds or [])
        for seed in self._seeds:
            _log("policy_reset", seed)

    def predict(self, obs_batch):
        for seed in self._seeds:
            _log("predict", seed)
        return ActionChunk(actions=np.tile(np.asarray(POLICY_ACTION), (len(obs_batch), 1, 1)))
