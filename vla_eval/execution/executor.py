"""Local executor: N spawned worker processes, each keeping its env alive.

Why not ``ProcessPoolExecutor``: when a worker dies it breaks the whole pool and loses
every pending future without saying which episode killed it. Here each worker has its
own pipe, so the driver knows exactly which episode was in flight on a dead worker,
retries that one episode once on a fresh worker, and records ``env_error`` if it dies
again; other episodes are untouched.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from multiprocessing.connection import wait
from typing import Callable, Iterator

from vla_eval.errors import VlaEvalError
from vla_eval.execution.limits import batch_deadline_s
from vla_eval.execution.plan import PlanItem
from vla_eval.record import EpisodeRecord
from vla_eval.execution.rollout import failed_record
from vla_eval.execution.worker import WORKER_ENV, WorkerConfig, timeout_record, worker_main

MAX_ATTEMPTS = 2
BACKSTOP_GRACE_S = 30.0
"""Extra time the driver allows past a batch's wall-clock limit before it kills a worker
whose own watchdog never reported (a call stuck in C code that holds the GIL)."""


@contextmanager
def _worker_environment() -> Iterator[None]:
    """Spawned children inherit os.environ at start: set per-worker thread limits only then."""
    saved = {k: os.environ.get(k) for k in WORKER_ENV}
    for key, value in WORKER_ENV.items():
        os.environ.setdefault(key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class _Slot:
    process: mp.Process
    conn: object
    items: list[PlanItem] = field(default_factory=list)
    env_key: tuple[str, str] | None = None
    ready: bool = False
    recycle: str | None = None
    sent_at: float = 0.0


@dataclass
class ExecutionSummary:
    retried: list[tuple[str, str, int]] = field(default_factory=list)
    worker_deaths: int = 0
    recycled: list[str] = field(default_factory=list)


class LocalExecutor:
    def __init__(self, config: WorkerConfig, workers: int, batch_envs: int = 1):
        if workers < 1:
            raise VlaEvalError(f"--workers must be >= 1, got {workers}")
        if batch_envs < 1:
            raise VlaEvalError(f"--batch-envs must be >= 1, got {batch_envs}")
        self.config = config
        self.n_workers = workers
        self.batch_envs = batch_envs
        self._ctx = mp.get_context("spawn")
        self.supervisor = None  # a policy server to keep alive (``--policy-server auto``)

    def _check_server(self) -> None:
        """Let the supervisor restart a dead policy server before workers need it."""
        if self.supervisor is not None:
            new_policy = self.supervisor.check()
            if new_policy is not None:
                self.config = replace(self.config, policy=new_policy)

    def _start(self) -> _Slot:
        parent, child = self._ctx.Pipe()
        with _worker_environment():
            proc = self._ctx.Process(target=worker_main, args=(child, self.config), daemon=True)
            proc.start()
        child.close()
        return _Slot(process=proc, conn=parent)

    def run(self, items: list[PlanItem], on_record: Callable[[EpisodeRecord], None],
            should_stop: Callable[[], bool] | None = None) -> ExecutionSummary:
        """Run ``items``; ``on_record`` is called in the driver for each finished episode, in completion order.

        With ``should_stop`` (a gated run), items are launched strictly in the given order
        and nothing new is launched once it returns True; episodes in flight still finish.
        """
        summary = ExecutionSummary()
        pending: deque[PlanItem] = deque(items)
        solo: deque[PlanItem] = deque()
        attempts = self._attempts = {}
        slots = [self._start() for _ in range(min(self.n_workers, max(len(items), 1)))]
        limit = batch_deadline_s(self.config.limits, max(self.config.settings.max_steps.values(), default=1))
        backstop = None if limit is None else limit + BACKSTOP_GRACE_S
        try:
            while pending or solo or any(s.items for s in slots):
                if should_stop is not None and should_stop():
                    pending.clear()
                    if not (solo or any(s.items for s in slots)):
                        break
                for slot in slots:
                    if slot.ready and slot.recycle is None and not slot.items and (pending or solo):
                        slot.items = [solo.popleft()] if solo else _take(
                            pending, None if should_stop else slot.env_key, self.batch_envs)
                        slot.env_key = slot.items[0].env_key
                        for item in slot.items:
                            attempts[item.key] = attempts.get(item.key, 0) + 1
                        slot.conn.send(("run", slot.items))
                        slot.sent_at = time.monotonic()
                if backstop is not None:
                    for i, slot in enumerate(slots):
                        if slot.items and time.monotonic() - slot.sent_at > backstop:
                            slots[i] = self._kill_stuck(slot, backstop, summary, on_record)
                waitables = [s.conn for s in slots] + [s.process.sentinel for s in slots]
                ready_now = wait(waitables, timeout=1.0 if (self.supervisor is not None or backstop is not None) else None)
                self._check_server()
                for ready in ready_now:
                    slot = next((s for s in slots if ready is s.conn or ready == s.process.sentinel), None)
                    if slot is None:
                        continue
                    if ready is slot.conn:
                        try:
                            msg = slot.conn.recv()
                        except (EOFError, OSError):
                            msg = None
                        if msg is not None:
                            self._handle(slot, msg, on_record)
                            continue
                    slot.process.join(timeout=10)
                    slots[slots.index(slot)] = self._replace_dead(slot, solo, attempts, summary, on_record)
        finally:
            self._shutdown(slots)
        return summary

    def _handle(self, slot: _Slot, msg: tuple, on_record) -> None:
        kind, payload = msg
        if kind == "ready":
            slot.ready = True
        elif kind == "fatal":
            raise VlaEvalError(payload)
        elif kind == "recycle":
            slot.recycle = str(payload)
        elif kind == "done":
            slot.items = []
            for raw in payload:
                record = EpisodeRecord.model_validate(raw)
                record.attempts = self._attempts.get(record.key, 1)
                on_record(record)

    def _replace_dead(self, slot, solo, attempts, summary, on_record) -> _Slot:
        """Retry what the dead worker held, each episode alone so a second death blames exactly one."""
        try:
            while slot.conn.poll():
                self._handle(slot, slot.conn.recv(), on_record)
        except (EOFError, OSError):
            pass
        if slot.recycle is not None and not slot.items:
            summary.recycled.append(slot.recycle)
        else:
            summary.worker_deaths += 1
        code = slot.process.exitcode
        for item in slot.items:
            if attempts[item.key] < MAX_ATTEMPTS or len(slot.items) > 1:
                summary.retried.append(item.key)
                solo.append(item)
            else:
                on_record(failed_record(self.config.settings, item, attempts=attempts[item.key],
                                        error=f"worker process died (exit code {code}) on {attempts[item.key]} attempts"))
        if not slot.items and not slot.ready:
            raise VlaEvalError(f"a worker process died while starting (exit code {slot.process.exitcode})")
        try:
            slot.conn.close()
        except OSError:
            pass
        self._check_server()
        return self._start()

    def _kill_stuck(self, slot: _Slot, backstop: float, summary: ExecutionSummary, on_record) -> _Slot:
        """A worker silent past its batch limit: kill it, record its episodes as timed out, start a fresh one."""
        slot.process.kill()
        slot.process.join(timeout=10)
        term = "episode_timeout" if self.config.limits.episode_s else "policy_timeout"
        message = f"worker gave no answer within {backstop:g}s (batch limit + {BACKSTOP_GRACE_S:g}s); killed by the driver"
        for item in slot.items:
            on_record(timeout_record(self.config, item, term, message))
        summary.recycled.append(message)
        try:
            slot.conn.close()
        except OSError:
            pass
        return self._start()

    def _shutdown(self, slots: list[_Slot]) -> None:
        for slot in slots:
            try:
                slot.conn.send(("stop",))
            except (OSError, BrokenPipeError):
                pass
        for slot in slots:
            slot.process.join(timeout=60)
            if slot.process.is_alive():
                slot.process.terminate()
                slot.process.join(timeout=5)


def _take(pending: deque[PlanItem], env_key: tuple[str, str] | None, count: int) -> list[PlanItem]:
    """Up to ``count`` episodes sharing one env key, preferring the worker's live envs' key."""
    key = env_key if env_key is not None and any(i.env_key == env_key for i in pending) else pending[0].env_key
    taken = [i for i in pending if i.env_key == key][:count]
    for item in taken:
        pending.remove(item)
    return taken
