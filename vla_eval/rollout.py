"""One episode: env and policy in a loop, turned into an :class:`EpisodeRecord`.

This runs inside worker processes. Nothing here may raise for a bad policy or a
failing env: both end the episode with a recorded termination reason instead.
"""

from __future__ import annotations

import hashlib
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vla_eval.actions import to_env_actions
from vla_eval.plan import PlanItem
from vla_eval.policies.base import LIBERO_DELTA_EEF, Policy, PolicyOutputError, validate_chunk
from vla_eval.record import EpisodeRecord


@dataclass(frozen=True)
class EpisodeSettings:
    """The per-run knobs a worker needs; plain data so it pickles to spawned workers."""

    run_id: str
    suite: str
    max_steps: dict[str, int]
    settle_steps: int
    settle_action: tuple[float, ...]
    replan_steps: int | None = None
    video_camera: str | None = None
    reset_options: dict[str, Any] = field(default_factory=dict)


def state_digest(obs: dict[str, Any]) -> str:
    """Hash of the final proprio state: equal digests mean bit-identical rollouts."""
    h = hashlib.sha256()
    for key in sorted(obs.get("state", {})):
        h.update(key.encode())
        h.update(np.ascontiguousarray(obs["state"][key]).tobytes())
    return h.hexdigest()[:16]


def _error_text(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" at {last[0].filename}:{last[0].lineno}" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"[:2000]


class EnvFailure(Exception):
    """The env raised; the worker must discard it before the next episode."""


def run_episode(
    env,
    policy: Policy,
    item: PlanItem,
    settings: EpisodeSettings,
    frames: list[np.ndarray] | None = None,
) -> tuple[EpisodeRecord, bool]:
    """Roll out ``item``; returns the record and whether the env is still usable."""
    wall0 = time.perf_counter()
    base = dict(
        run_id=settings.run_id,
        suite=settings.suite,
        task=item.task,
        split=item.split,
        episode_index=item.episode_index,
        init_state_id=item.init_state_id,
        seed=item.seed,
    )
    stats = dict(steps=0, policy_calls=0, policy_time_s=0.0, sim_time_s=0.0, parse_failures=0, outputs_checked=0)
    extras: dict[str, Any] = {}
    instruction = ""
    success = False
    termination = "timeout"
    error: str | None = None
    env_ok = True
    obs: dict[str, Any] = {}

    def step(action: np.ndarray):
        t = time.perf_counter()
        try:
            result = env.step(np.asarray(action, dtype=np.float32))
        except Exception as exc:
            raise EnvFailure(_error_text(exc)) from exc
        finally:
            stats["sim_time_s"] += time.perf_counter() - t
        return result

    def grab_frame(o: dict[str, Any]) -> None:
        if frames is not None and settings.video_camera and "images" in o:
            frames.append(o["images"][settings.video_camera])

    try:
        t = time.perf_counter()
        try:
            obs, info = env.reset(seed=item.seed, options=settings.reset_options or None)
        except Exception as exc:
            raise EnvFailure(_error_text(exc)) from exc
        finally:
            stats["sim_time_s"] += time.perf_counter() - t
        instruction = str(obs.get("instruction", ""))
        for _ in range(settings.settle_steps):
            obs, _, _, _, info = step(np.asarray(settings.settle_action))
        grab_frame(obs)
        policy.reset([instruction], seeds=[item.seed])
        success = bool(info.get("success", False))
        max_steps = settings.max_steps[item.task]
        queue: list[np.ndarray] = []
        while not success and stats["steps"] < max_steps:
            if not queue:
                queue = _next_actions(env, policy, obs, stats, extras)
                if settings.replan_steps:
                    queue = queue[: settings.replan_steps]
            obs, _, _, _, info = step(queue.pop(0))
            stats["steps"] += 1
            grab_frame(obs)
            success = bool(info.get("success", False))
        termination = "success" if success else "timeout"
    except EnvFailure as exc:
        termination, error, env_ok, success = "env_error", str(exc), False, False
    except PolicyOutputError as exc:
        termination, error, success = "policy_error", f"invalid policy output: {exc}", False
    except Exception as exc:
        termination, error, success = "policy_error", _error_text(exc), False

    record = EpisodeRecord(
        **base,
        instruction=instruction,
        success=success,
        termination=termination,
        error=error,
        final_state_digest=state_digest(obs) if env_ok else "",
        wall_time_s=time.perf_counter() - wall0,
        extras=extras,
        **stats,
    )
    return record, env_ok


def _next_actions(env, policy: Policy, obs: dict[str, Any], stats: dict, extras: dict) -> list[np.ndarray]:
    policy_obs = dict(obs)
    if policy.needs_privileged:
        policy_obs["privileged"] = env.unwrapped.privileged_state()
    t = time.perf_counter()
    try:
        chunk = policy.predict([policy_obs])
    finally:
        stats["policy_time_s"] += time.perf_counter() - t
        stats["policy_calls"] += 1
    if getattr(chunk, "extras", None):
        _merge_extras(extras, chunk.extras[0], stats)
    env_space = getattr(env.unwrapped, "native_action_space", LIBERO_DELTA_EEF)
    actions = validate_chunk(chunk, batch_size=1, action_dim=chunk.space.dim if hasattr(chunk, "space") else 7)
    actions = to_env_actions(actions, chunk.space, env_space)
    return list(actions[0])


def _merge_extras(extras: dict, new: dict[str, Any], stats: dict) -> None:
    """Fold one call's extras into the episode: counters add up, texts are kept (bounded)."""
    stats["parse_failures"] += int(new.get("parse_failure", 0))
    stats["outputs_checked"] += int("parse_failure" in new)
    for key, value in new.items():
        if key == "parse_failure":
            continue
        bucket = extras.setdefault(key, [])
        if len(bucket) < 50:
            bucket.append(value)
