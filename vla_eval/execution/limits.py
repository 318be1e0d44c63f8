"""Run-time limits a worker enforces on itself, and the early stop for a dead policy.

* Wall-clock limits (``--policy-timeout``, ``--episode-timeout``): a policy that never
  answers hung the run forever. A watchdog thread in each worker sees every ``reset`` /
  ``predict`` call and every batch of episodes; on an overrun it reports the batch's
  episodes as ``policy_timeout`` / ``episode_timeout`` to the driver and ends its process
  (a call stuck in C code cannot be cancelled from Python), and the driver starts a fresh
  worker, so the run goes on.
* Memory (``--max-worker-rss-mb``): a leaking policy hit ``MemoryError`` once and every
  later episode of that worker failed. A worker whose resident memory passes the limit
  (or that saw a ``MemoryError``) finishes its batch and asks to be replaced.
* Dead policy (``--stop-if-dead K``): when the first K episodes of a run all end in a
  policy failure, the run stops with a verdict instead of burning the whole plan.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from vla_eval.errors import VlaEvalError
from vla_eval.record import POLICY_FAILURES, EpisodeRecord

DEFAULT_DEAD_POLICY_EPISODES = 10


@dataclass(frozen=True)
class Limits:
    """Per-run limits; ``None`` (or 0 for the early stop) switches one off."""

    policy_call_s: float | None = None
    episode_s: float | None = None
    max_rss_mb: float | None = None
    dead_policy_episodes: int = DEFAULT_DEAD_POLICY_EPISODES

    @property
    def timed(self) -> bool:
        return bool(self.policy_call_s or self.episode_s)


def batch_deadline_s(limits: Limits, max_steps: int) -> float | None:
    """Wall-clock limit of one batch as seen by the driver (for a worker that cannot report its own hang).

    The episode limit when set; else the per-call limit times the most calls an episode can
    make (one per step plus the reset). ``None``: no limit.
    """
    if limits.episode_s:
        return limits.episode_s
    if limits.policy_call_s:
        return limits.policy_call_s * (max_steps + 2)
    return None


def rss_mb() -> float:
    """Resident memory of this process now (Linux ``/proc``; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Watchdog:
    """Deadlines for the current batch and the current policy call, checked by a daemon thread.

    ``on_overrun(termination, message)`` runs on the watchdog thread, at most once per
    batch; it must not return control to the stuck main thread (the worker exits there).
    """

    def __init__(self, limits: Limits, on_overrun: Callable[[str, str], None], tick_s: float = 0.05):
        self.limits = limits
        self._on_overrun = on_overrun
        self._lock = threading.Lock()
        self._batch_deadline: float | None = None
        self._call_deadline: float | None = None
        self._call_name = ""
        self._tick = tick_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="vla-eval-watchdog", daemon=True)
        self._thread.start()

    @contextmanager
    def batch(self) -> Iterator[None]:
        with self._lock:
            self._batch_deadline = time.monotonic() + self.limits.episode_s if self.limits.episode_s else None
        try:
            yield
        finally:
            with self._lock:
                self._batch_deadline = None

    @contextmanager
    def call(self, name: str) -> Iterator[None]:
        with self._lock:
            self._call_deadline = time.monotonic() + self.limits.policy_call_s if self.limits.policy_call_s else None
            self._call_name = name
        try:
            yield
        finally:
            with self._lock:
                self._call_deadline = None

    def _loop(self) -> None:
        while not self._stop.wait(self._tick):
            now = time.monotonic()
            with self._lock:
                fired = None
                if self._call_deadline is not None and now > self._call_deadline:
                    fired = (
                        "policy_timeout",
                        f"policy {self._call_name}() did not return within "
                        f"policy_timeout_s={self.limits.policy_call_s:g}",
                    )
                elif self._batch_deadline is not None and now > self._batch_deadline:
                    fired = (
                        "episode_timeout",
                        f"episode did not finish within episode_timeout_s={self.limits.episode_s:g} (wall clock)",
                    )
                if fired:
                    self._call_deadline = self._batch_deadline = None
            if fired:
                self._on_overrun(*fired)

    def close(self) -> None:
        self._stop.set()


class TimedPolicy:
    """A policy whose ``reset`` / ``predict`` run under the watchdog's per-call deadline."""

    def __init__(self, policy: Any, watchdog: Watchdog):
        self._policy, self._watchdog = policy, watchdog

    def __getattr__(self, name: str) -> Any:
        return getattr(self._policy, name)

    def reset(self, *args, **kwargs):
        with self._watchdog.call("reset"):
            return self._policy.reset(*args, **kwargs)

    def predict(self, *args, **kwargs):
        with self._watchdog.call("predict"):
            return self._policy.predict(*args, **kwargs)


def needs_recycling(limits: Limits, records: list[EpisodeRecord]) -> str | None:
    """Why a worker should be replaced after this batch, or ``None``."""
    if any(r.error and "MemoryError" in r.error for r in records):
        return "a MemoryError was raised in this worker"
    if limits.max_rss_mb:
        rss = rss_mb()
        if rss > limits.max_rss_mb:
            return f"resident memory {rss:.0f} MB is above max_worker_rss_mb={limits.max_rss_mb:g}"
    return None


class DeadPolicyError(VlaEvalError):
    """The run stopped early because its policy failed on every one of the first K episodes."""

    exit_code = 3


class DeadPolicyMonitor:
    """Raise :class:`DeadPolicyError` once the first ``k`` records of this session all failed in the policy."""

    def __init__(self, k: int, planned: int):
        self.k = k if k and planned > k else 0
        self.seen = 0
        self.last_error = ""

    def feed(self, record: EpisodeRecord) -> None:
        if not self.k or self.seen < 0:
            return
        if record.termination not in POLICY_FAILURES:
            self.seen = -1  # one healthy episode: the policy is not dead
            return
        self.seen += 1
        self.last_error = record.error or record.termination
        if self.seen >= self.k:
            raise DeadPolicyError(
                f"stopped early: the first {self.k} episodes all ended in a policy failure "
                f"(last: {self.last_error[:300]}); the policy looks dead. Finished episodes are stored; "
                f"fix the policy and continue with --resume, or pass --stop-if-dead 0 to run the whole plan anyway"
            )
