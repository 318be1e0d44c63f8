"""Policies that misbehave on purpose, for tests/test_hostile.py (imported by spawned workers)."""

from __future__ import annotations

import os
import threading
import time

import numpy as np

from vla_eval.policies.base import ActionChunk, ActionSpace, Policy
from vla_eval.policies.baselines import NoopPolicy


class _OnSeeds(Policy):
    """Behaves like ``noop`` except on the episodes whose seed is in ``bad_seeds`` (all if empty)."""

    needs_images = False

    def __init__(self, bad_seeds: list[int] | None = None, mode: str = ""):
        self.bad_seeds = set(bad_seeds or [])
        self.mode = mode
        self._seed = None

    def reset(self, instructions, seeds=None):
        self._seed = seeds[0] if seeds else None

    def bad(self) -> bool:
        return not self.bad_seeds or self._seed in self.bad_seeds

    def predict(self, obs_batch):
        if not self.bad():
            return NoopPolicy().predict(obs_batch)
        return self.misbehave(obs_batch)

    def misbehave(self, obs_batch):
        raise NotImplementedError


class HangingPolicy(_OnSeeds):
    """``predict`` never returns (mode ``hang``) or is slow on every call (mode ``slow``)."""

    def misbehave(self, obs_batch):
        if self.mode == "slow":
            time.sleep(0.3)
            return NoopPolicy().predict(obs_batch)
        if self.mode == "gil":
            import re

            re.match(r"(a+)+$", "a" * 64 + "b")  # catastrophic backtracking in C, GIL held: no thread runs
        threading.Event().wait()  # forever


class OddOutputPolicy(_OnSeeds):
    """Returns outputs that used to crash the worker: list, space=None, text parse_failure, numpy extras, complex."""

    def misbehave(self, obs_batch):
        n = len(obs_batch)
        zeros = np.zeros((n, 1, 7))
        zeros[:, :, 6] = -1
        if self.mode == "list":
            return zeros.tolist()
        if self.mode == "space_none":
            return ActionChunk(actions=zeros, space=None)
        if self.mode == "parse_failure_text":
            return ActionChunk(actions=zeros, extras=[{"parse_failure": "sometimes"}] * n)
        if self.mode == "complex":
            return ActionChunk(actions=zeros + 1j)
        if self.mode == "numpy_extras":
            return ActionChunk(
                actions=zeros,
                extras=[{"logits": np.arange(3.0), "step": np.int64(2), "handle": threading.Lock(), "pid": os.getpid()}]
                * n,
            )
        raise ValueError(self.mode)


class LeakyPolicy(Policy):
    """Keeps ``mb`` more megabytes alive after every episode; reports its pid in extras."""

    needs_images = False

    def __init__(self, mb: int = 100):
        self.mb = mb
        self._hoard: list[np.ndarray] = []

    def reset(self, instructions, seeds=None):
        self._hoard.append(np.ones(self.mb * 2**20 // 8))

    def predict(self, obs_batch):
        chunk = NoopPolicy().predict(obs_batch)
        from vla_eval.execution.limits import rss_mb

        return ActionChunk(actions=chunk.actions, extras=[{"pid": os.getpid(), "rss_mb": rss_mb()}] * len(obs_batch))


class AlwaysRaises(Policy):
    needs_images = False

    def predict(self, obs_batch):
        raise RuntimeError("checkpoint produces garbage")


__all__ = ["HangingPolicy", "OddOutputPolicy", "LeakyPolicy", "AlwaysRaises", "ActionSpace"]
