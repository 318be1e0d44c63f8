"""The one scheduling loop of a run, shared by the local process executor and the Ray executor.

Executors differ only in how a worker starts, takes a batch, reports and stops (a
:class:`WorkerStarter`); everything a user can observe in the records is decided here, once:

* Batching: a worker gets up to ``batch_envs`` episodes of one (task, split) at a time,
  preferring the key its live envs serve, so envs are reused across episodes.
* Attempts: each send of an episode is one attempt (``record.attempts``).  A worker that
  dies (segfault, OOM kill, ``os._exit``, a killed actor) costs only the episodes it held:
  each is retried alone, so a second death blames exactly one episode, and an episode is
  recorded as ``env_error`` once it has been charged ``MAX_ATTEMPTS`` deaths.
* A lost policy server is not the episode's fault: a worker whose policy raised
  :class:`~vla_eval.errors.RetryEpisode` reports it (``lost``) instead of dying, and its
  episodes are rerun without charging that attempt.  The supervisor's restart limit ends a
  run whose server keeps dying; without one, ``MAX_LOST_ATTEMPTS`` bounds the reruns.
* Time: a batch silent past its wall-clock limit plus the starter's grace is killed by the
  driver and its episodes recorded as timed out (a call stuck in C code cannot report).
* Recycling: a worker that asks to be replaced (memory limit, its own watchdog) finishes its
  batch, is let go and replaced.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from vla_eval.errors import VlaEvalError
from vla_eval.execution.limits import batch_deadline_s
from vla_eval.execution.plan import PlanItem
from vla_eval.execution.rollout import failed_record
from vla_eval.execution.worker import WorkerConfig, timeout_record
from vla_eval.record import EpisodeRecord

MAX_ATTEMPTS = 2
"""Worker deaths an episode may be charged before it is recorded as ``env_error``."""

MAX_LOST_ATTEMPTS = 2
"""Uncharged reruns after a lost policy server; a server that never comes back still ends the episode."""

EventKind = Literal["ready", "fatal", "recycle", "done", "lost", "died", "failed"]


@dataclass(frozen=True)
class WorkerEvent:
    """What a starter observed about one worker.

    ``ready``: it can take a batch.  ``fatal`` (payload: message): it cannot start, the run
    stops.  ``recycle`` (reason): replace it after the batch in flight.  ``done`` (list of
    record dicts): the batch finished.  ``lost`` (reason): the policy server was lost, the
    batch is given back unrecorded.  ``died`` (what died, e.g. ``worker process died (exit
    code -9)``).  ``failed`` (message): the batch failed but the worker lives.
    """

    kind: EventKind
    handle: Hashable
    payload: Any = None


class WorkerStarter(Protocol):
    """How one kind of worker (a spawned process, a Ray actor) is started, fed, observed and stopped."""

    backstop_grace_s: float
    """Time allowed past a batch's wall-clock limit before the driver kills the worker (0 when
    the worker has no watchdog of its own to report the overrun first)."""

    def start(self, config: WorkerConfig) -> Hashable: ...

    def send(self, handle: Hashable, items: list[PlanItem]) -> None: ...

    def wait(self, handles: list[Hashable], timeout: float | None) -> list[WorkerEvent]:
        """Events of ``handles`` in the order they happened per worker; ``[]`` after ``timeout``."""
        ...

    def release(self, handle: Hashable) -> None:
        """Let a worker that finished its last batch close (flush videos) and go."""
        ...

    def kill(self, handle: Hashable) -> None:
        """End a dead, stuck or unwanted worker now."""
        ...

    def stop(self, handles: list[Hashable]) -> None:
        """The end of the run: close every worker, killing those that do not finish in time."""
        ...


@dataclass
class ExecutionSummary:
    retried: list[tuple[str, str, int]] = field(default_factory=list)
    worker_deaths: int = 0
    recycled: list[str] = field(default_factory=list)


@dataclass(eq=False)
class _Worker:
    handle: Hashable
    items: list[PlanItem] = field(default_factory=list)
    env_key: tuple[str, str] | None = None
    ready: bool = False
    recycle: str | None = None
    sent_at: float = 0.0


class Scheduler:
    """Runs plan items on ``workers`` workers from ``starter``; see the module docstring for the rules."""

    def __init__(
        self, starter: WorkerStarter, config: WorkerConfig, workers: int, batch_envs: int, supervisor: Any = None
    ):
        self.starter, self.config = starter, config
        self.n_workers, self.batch_envs = workers, batch_envs
        self.supervisor = supervisor  # a policy server to keep alive (``--policy-server auto``)
        self.summary = ExecutionSummary()
        self._workers: dict[Hashable, _Worker] = {}
        self._attempts: dict[tuple, int] = {}
        self._lost: dict[tuple, int] = {}
        self._solo: deque[PlanItem] = deque()

    def run(
        self,
        items: list[PlanItem],
        on_record: Callable[[EpisodeRecord], None],
        should_stop: Callable[[], bool] | None = None,
    ) -> ExecutionSummary:
        """Run ``items``; ``on_record`` is called in the driver for each finished episode, in completion order.

        With ``should_stop`` (a gated run), items are launched strictly in the given order
        and nothing new is launched once it returns True; episodes in flight still finish.
        """
        self._on_record = on_record
        pending: deque[PlanItem] = deque(items)
        limit = batch_deadline_s(self.config.limits, max(self.config.settings.max_steps.values(), default=1))
        backstop = None if limit is None else limit + self.starter.backstop_grace_s
        timeout = 0.5 if backstop is not None else (1.0 if self.supervisor is not None else None)
        try:
            for _ in range(min(self.n_workers, max(len(items), 1))):
                self._add_worker()
            while pending or self._solo or self._busy():
                if should_stop is not None and should_stop():
                    pending.clear()
                    if not (self._solo or self._busy()):
                        break
                for w in list(self._workers.values()):
                    if w.ready and w.recycle is None and not w.items and (pending or self._solo):
                        self._send(
                            w,
                            [self._solo.popleft()]
                            if self._solo
                            else _take(pending, None if should_stop else w.env_key, self.batch_envs),
                        )
                if backstop is not None:
                    for w in [w for w in self._workers.values() if w.items]:
                        if time.monotonic() - w.sent_at > backstop:
                            self._kill_overdue(w, backstop)
                events = self.starter.wait(list(self._workers), timeout)
                self._check_server()
                for event in events:
                    w = self._workers.get(event.handle)
                    if w is not None:  # else: already replaced (e.g. its death after a recycle)
                        self._handle(w, event)
        except BaseException:
            # Ctrl-C, or the driver cannot record (a full disk): what is in flight can never be
            # stored, so end it now rather than wait for the episodes to finish for nobody
            for handle in list(self._workers):
                self.starter.kill(handle)
            self._workers.clear()
            raise
        finally:
            self.starter.stop(list(self._workers))
        return self.summary

    def _busy(self) -> bool:
        return any(w.items for w in self._workers.values())

    def _add_worker(self) -> None:
        handle = self.starter.start(self.config)
        self._workers[handle] = _Worker(handle)

    def _replace(self, w: _Worker, graceful: bool) -> None:
        del self._workers[w.handle]
        if graceful:
            self.starter.release(w.handle)
        else:
            self.starter.kill(w.handle)
        self._check_server()  # a replacement must meet a live policy server
        self._add_worker()

    def _send(self, w: _Worker, batch: list[PlanItem]) -> None:
        w.items, w.env_key = batch, batch[0].env_key
        for item in batch:
            self._attempts[item.key] = self._attempts.get(item.key, 0) + 1
        self.starter.send(w.handle, batch)
        w.sent_at = time.monotonic()

    def _check_server(self) -> None:
        """Let the supervisor restart a dead policy server before workers need it."""
        if self.supervisor is not None:
            new_policy = self.supervisor.check()
            if new_policy is not None:
                self.config = replace(self.config, policy=new_policy)

    def _handle(self, w: _Worker, event: WorkerEvent) -> None:
        kind, payload = event.kind, event.payload
        if kind == "ready":
            w.ready = True
        elif kind == "fatal":
            raise VlaEvalError(payload)
        elif kind == "recycle":
            w.recycle = str(payload)
        elif kind == "done":
            w.items = []
            for raw in payload:
                record = EpisodeRecord.model_validate(raw)
                record.attempts = self._attempts.get(record.key, 1)
                self._on_record(record)
            if w.recycle is not None:
                self.summary.recycled.append(w.recycle)
                self._replace(w, graceful=True)
        elif kind == "failed":
            for item in w.items:
                self._on_record(
                    failed_record(self.config.settings, item, str(payload), attempts=self._attempts[item.key])
                )
            w.items = []
        elif kind == "lost":
            self._give_back(w, str(payload))
        elif kind == "died":
            self._died(w, str(payload))
        else:
            raise ValueError(f"unknown worker event {kind!r}")

    def _give_back(self, w: _Worker, reason: str) -> None:
        """The policy server was lost under this worker's batch: rerun it without charging the attempt."""
        self.summary.worker_deaths += 1
        self._check_server()  # a server that died once too often ends the run here
        for item in w.items:
            lost = self._lost[item.key] = self._lost.get(item.key, 0) + 1
            if lost <= MAX_LOST_ATTEMPTS:
                self.summary.retried.append(item.key)
                self._solo.append(item)
            else:
                self._on_record(
                    failed_record(
                        self.config.settings,
                        item,
                        attempts=self._attempts[item.key],
                        error=f"policy server lost on {lost} attempts: {reason}"[:2000],
                    )
                )
        w.items = []
        self._replace(w, graceful=True)

    def _died(self, w: _Worker, what: str) -> None:
        """Retry what the dead worker held, each episode alone so a second death blames exactly one."""
        if not w.items and not w.ready:
            raise VlaEvalError(f"a worker died while starting ({what})")
        self.summary.worker_deaths += 1
        for item in w.items:
            attempts = self._attempts[item.key]
            if attempts - self._lost.get(item.key, 0) < MAX_ATTEMPTS or len(w.items) > 1:
                self.summary.retried.append(item.key)
                self._solo.append(item)
            else:
                self._on_record(
                    failed_record(self.config.settings, item, attempts=attempts, error=f"{what} on {attempts} attempts")
                )
        w.items = []
        self._replace(w, graceful=False)

    def _kill_overdue(self, w: _Worker, backstop: float) -> None:
        """A worker silent past its batch limit: kill it, record its episodes as timed out, start a fresh one."""
        grace = self.starter.backstop_grace_s
        term = "episode_timeout" if self.config.limits.episode_s else "policy_timeout"
        message = (
            f"worker gave no answer within {backstop:g}s (batch limit{f' + {grace:g}s' if grace else ''}); "
            "killed by the driver"
        )
        for item in w.items:
            record = timeout_record(self.config, item, term, message)
            record.attempts = self._attempts[item.key]
            self._on_record(record)
        w.items = []
        self.summary.recycled.append(message)
        self._replace(w, graceful=False)


def _take(pending: deque[PlanItem], env_key: tuple[str, str] | None, count: int) -> list[PlanItem]:
    """Up to ``count`` episodes sharing one env key, preferring the worker's live envs' key."""
    key = env_key if env_key is not None and any(i.env_key == env_key for i in pending) else pending[0].env_key
    taken = [i for i in pending if i.env_key == key][:count]
    for item in taken:
        pending.remove(item)
    return taken
