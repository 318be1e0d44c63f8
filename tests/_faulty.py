"""Deliberately broken policies and envs for fault-injection tests (imported by spawned workers)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from vla_eval.errors import RetryEpisode
from vla_eval.policies.base import ActionChunk, Policy
from vla_eval.policies.baselines import NoopPolicy, RandomPolicy
from vla_eval.sims.tabletop.backend import TabletopBackend
from vla_eval.sims.tabletop.expert import ScriptedExpert


class BadOutputPolicy(Policy):
    """Returns NaN, a wrong shape, or raises, on the episodes whose index is in ``bad``."""

    name = "bad_output"
    needs_images = False

    def __init__(self, mode: str = "nan", bad_seeds: list[int] | None = None):
        self.mode = mode
        self.bad_seeds = set(bad_seeds or [])
        self._seed = None

    def reset(self, instructions, seeds=None):
        self._seed = seeds[0] if seeds else None

    def predict(self, obs_batch):
        if self.bad_seeds and self._seed not in self.bad_seeds:
            return NoopPolicy().predict(obs_batch)
        if self.mode == "nan":
            return ActionChunk(actions=np.full((len(obs_batch), 1, 7), np.nan))
        if self.mode == "shape":
            return ActionChunk(actions=np.zeros((len(obs_batch), 1, 5)))
        raise RuntimeError("model exploded")


class CrashingPolicy(Policy):
    """Kills its worker process (like a segfault) on one seed; once only if ``marker`` is given."""

    name = "crashing"
    needs_images = False

    def __init__(self, crash_seed: int, marker: str | None = None):
        self.crash_seed = crash_seed
        self.marker = marker

    def reset(self, instructions, seeds=None):
        if seeds and seeds[0] == self.crash_seed:
            if self.marker is None or not Path(self.marker).exists():
                if self.marker:
                    Path(self.marker).write_text("crashed")
                os._exit(137)

    def predict(self, obs_batch):
        return NoopPolicy().predict(obs_batch)


class _RaisingEnv:
    def __init__(self, env, bad_seed):
        self._env, self._bad_seed, self._seed = env, bad_seed, None

    def __getattr__(self, name):
        return getattr(self._env, name)

    def reset(self, seed=None, options=None):
        self._seed = seed
        return self._env.reset(seed=seed, options=options)

    def step(self, action):
        if self._seed == self._bad_seed:
            raise RuntimeError("simulated physics blow-up")
        return self._env.step(action)


class FaultyBackend(TabletopBackend):
    """Tabletop backend whose env raises in ``step`` for the seed in $VLA_EVAL_TEST_BAD_SEED."""

    name = "faulty"

    def make_env(self, spec, task, split, cameras, depth=False):
        return _RaisingEnv(
            super().make_env(spec, task, split, cameras, depth), int(os.environ["VLA_EVAL_TEST_BAD_SEED"])
        )


class ImageEchoPolicy(Policy):
    """Needs images, declares an orientation, and reports the image it 'fed its model' (for the doctor)."""

    name = "image_echo"
    needs_images = True

    def __init__(self, image_orientation: str = "upright", nan: bool = False):
        self.image_orientation = image_orientation
        self.nan = nan
        self.last_model_images: list[np.ndarray] = []

    def predict(self, obs_batch):
        self.last_model_images = [np.asarray(o["images"]["agentview"])[::2, ::2] for o in obs_batch]
        out = NoopPolicy().predict(obs_batch)
        if self.nan:
            out.actions[..., 0] = np.nan
        return out


class CheckpointNoop(NoopPolicy):
    """A no-op policy that names a checkpoint (for resume / provenance tests); loads nothing."""

    name = "checkpoint_noop"

    def __init__(self, checkpoint: str = "", chunk_size: int = 1):
        super().__init__(chunk_size)
        self.checkpoint = checkpoint


class ScriptedWithErrors(ScriptedExpert):
    """The scripted expert, except that ``predict`` raises on the episodes whose seed is in
    ``bad_seeds`` or whose instruction contains one of ``bad_instructions``."""

    name = "scripted_with_errors"

    def __init__(self, bad_seeds: list[int] | None = None, bad_instructions: list[str] | None = None):
        super().__init__()
        self.bad_seeds = set(bad_seeds or [])
        self.bad_instructions = list(bad_instructions or [])
        self._bad = False

    def reset(self, instructions, seeds=None, slots=None):
        self._bad = bool(seeds) and seeds[0] in self.bad_seeds
        self._bad |= any(b in instructions[0] for b in self.bad_instructions)
        return super().reset(instructions, seeds=seeds, slots=slots)

    def predict(self, obs_batch, slots=None):
        if self._bad:
            raise RuntimeError("model exploded on purpose")
        return super().predict(obs_batch, slots=slots)


class ServerCrashingPolicy(NoopPolicy):
    """Slot-aware; kills its process when an episode with ``crash_seed`` starts, once (``marker``).
    Served by a batching server, it dies whatever else shares the batch."""

    name = "server_crashing"
    slot_aware = True

    def __init__(self, crash_seed: int, marker: str):
        super().__init__()
        self.crash_seed, self.marker = crash_seed, marker

    def reset(self, instructions, seeds=None, slots=None):
        if seeds and self.crash_seed in seeds and not Path(self.marker).exists():
            Path(self.marker).write_text("crashed")
            os._exit(137)

    def predict(self, obs_batch, slots=None):
        return super().predict(obs_batch)


class SlowRandomPolicy(RandomPolicy):
    """The random baseline, paced: each call waits ``delay_s`` so a run lasts long enough for a test to kill
    a worker mid-run on any machine (an unpaced 16-episode run can finish between two polls)."""

    name = "slow_random"

    def __init__(self, delay_s: float = 0.02, **kwargs):
        super().__init__(**kwargs)
        self.delay_s = float(delay_s)

    def predict(self, obs_batch, slots=None):
        time.sleep(self.delay_s)
        return super().predict(obs_batch, slots)


class FaultPlanPolicy(NoopPolicy):
    """Follows ``faults`` (seed -> list of faults): attempt n (from 1) of the episode with that seed does
    the list's n-th fault, later attempts run normally. ``crash`` kills the worker process (like a
    segfault); ``lost`` gives the episode up as a policy whose server died does. Attempts are counted
    in files under ``marker_dir``, since every attempt after a fault runs in a fresh process or actor."""

    name = "fault_plan"

    def __init__(self, faults: dict, marker_dir: str):
        super().__init__()
        self.faults = {int(seed): list(plan) for seed, plan in faults.items()}
        self.marker_dir = Path(marker_dir)

    def reset(self, instructions, seeds=None):
        for seed in seeds or []:
            if seed not in self.faults:
                continue
            folder = self.marker_dir / str(seed)
            folder.mkdir(parents=True, exist_ok=True)
            done = len(list(folder.iterdir()))
            (folder / f"attempt_{done + 1}").write_text(str(os.getpid()))
            fault = self.faults[seed][done] if done < len(self.faults[seed]) else None
            if fault == "crash":
                os._exit(137)
            if fault == "lost":
                raise RetryEpisode("connection to the policy server lost (test double)")
