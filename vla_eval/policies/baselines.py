"""Honest lower bounds: what success rate a task gives away for free."""

from __future__ import annotations

import numpy as np

from vla_eval.actions.space import LIBERO_DELTA_EEF, ActionChunk
from vla_eval.adapter import Policy, SlotStates


class NoopPolicy(Policy):
    """Holds still with the gripper open (LIBERO's settle action)."""

    name = "noop"
    needs_images = False

    def __init__(self, chunk_size: int = 1):
        self.chunk_size = int(chunk_size)

    def predict(self, obs_batch):
        actions = np.zeros((len(obs_batch), self.chunk_size, LIBERO_DELTA_EEF.dim))
        actions[..., -1] = -1.0
        return ActionChunk(actions=actions, space=LIBERO_DELTA_EEF)

    def describe(self):
        return {"name": self.name, "chunk_size": self.chunk_size}


class RandomPolicy(Policy):
    """Uniform actions in [-1, 1]; seeded per episode so reruns are identical."""

    name = "random"
    needs_images = False
    slot_aware = True

    def __init__(self, chunk_size: int = 1, scale: float = 1.0):
        self.chunk_size = int(chunk_size)
        self.scale = float(scale)
        self._rngs: SlotStates[np.random.Generator] = SlotStates(lambda instruction, seed: np.random.default_rng(seed))

    def reset(self, instructions, seeds=None, slots=None):
        self._rngs.reset(instructions, seeds, slots)

    def release(self, slots):
        self._rngs.release(slots)

    def predict(self, obs_batch, slots=None):
        actions = np.stack(
            [
                rng.uniform(-self.scale, self.scale, size=(self.chunk_size, LIBERO_DELTA_EEF.dim))
                for rng in self._rngs.rows(obs_batch, slots)
            ]
        )
        return ActionChunk(actions=actions, space=LIBERO_DELTA_EEF)

    def describe(self):
        return {"name": self.name, "chunk_size": self.chunk_size, "scale": self.scale}


class FixedLatencyPolicy(Policy):
    """Holds still, but each ``predict`` call costs ``latency_ms`` whatever the batch size.

    A stand-in for a GPU model (one forward pass per call, extra rows almost free) with no
    model: sizes a serving layout (``--policy-server auto``, ``--batch-envs``) before the real
    checkpoint is at hand, and is what ``benchmarks/serving.py`` measures with.
    """

    name = "fixed_latency"
    needs_images = False

    def __init__(self, latency_ms: float = 50.0, chunk_size: int = 1):
        if latency_ms < 0:
            raise ValueError(f"fixed_latency: latency_ms must be >= 0, got {latency_ms}")
        self.latency_s = float(latency_ms) / 1000.0
        self.chunk_size = int(chunk_size)

    def predict(self, obs_batch):
        import time

        time.sleep(self.latency_s)
        actions = np.zeros((len(obs_batch), self.chunk_size, LIBERO_DELTA_EEF.dim))
        actions[..., -1] = -1.0
        return ActionChunk(actions=actions, space=LIBERO_DELTA_EEF)

    def describe(self):
        return {"name": self.name, "latency_ms": self.latency_s * 1000.0, "chunk_size": self.chunk_size}
