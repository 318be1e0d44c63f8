"""Local executor: N spawned worker processes, each keeping its env alive.

Why not ``ProcessPoolExecutor``: when a worker dies it breaks the whole pool and loses
every pending future without saying which episode killed it. Here each worker has its
own pipe, so the driver knows exactly which episodes were in flight on a dead worker;
what happens to them (retried once alone, then ``env_error``) is the shared
:class:`~vla_eval.execution.scheduler.Scheduler`'s rule, the same as under Ray.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from vla_eval.errors import VlaEvalError
from vla_eval.execution.lifeline import die_with_parent, ignore_interrupts, interrupts_ignored_by_children
from vla_eval.execution.plan import PlanItem
from vla_eval.execution.scheduler import (
    MAX_ATTEMPTS,
    ExecutionSummary,
    Scheduler,
    WorkerEvent,
)
from vla_eval.execution.worker import WORKER_ENV, WorkerConfig, worker_main
from vla_eval.record import EpisodeRecord

__all__ = ["BACKSTOP_GRACE_S", "MAX_ATTEMPTS", "ExecutionSummary", "LocalExecutor", "ProcessStarter"]

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


def _worker_entry(conn: Connection, config: WorkerConfig, driver_pid: int) -> None:
    """A local worker: dies with its driver, leaves Ctrl-C to it (:mod:`vla_eval.execution.lifeline`)."""
    ignore_interrupts()
    die_with_parent(driver_pid)
    worker_main(conn, config)


@dataclass(eq=False)
class _Proc:
    process: mp.Process
    conn: Connection


class ProcessStarter:
    """Workers as spawned processes (GL and CUDA are not fork-safe), one pipe each."""

    def __init__(self) -> None:
        self._ctx = mp.get_context("spawn")

    @property
    def backstop_grace_s(self) -> float:
        return BACKSTOP_GRACE_S  # read at run time, so a test can shorten it

    def start(self, config: WorkerConfig) -> _Proc:
        parent, child = self._ctx.Pipe()
        with _worker_environment(), interrupts_ignored_by_children():
            proc = self._ctx.Process(target=_worker_entry, args=(child, config, os.getpid()), daemon=True)
            proc.start()
        child.close()
        return _Proc(proc, parent)

    def send(self, handle: _Proc, items: list[PlanItem]) -> None:
        try:
            handle.conn.send(("run", items))
        except OSError:
            pass  # the worker is gone; its sentinel reports the death with this batch in flight

    def wait(self, handles: list[_Proc], timeout: float | None) -> list[WorkerEvent]:
        if not handles:
            return []
        by_waitable: dict = {}
        for h in handles:
            by_waitable[h.conn] = h
            by_waitable[h.process.sentinel] = h
        fired = dict.fromkeys(by_waitable[r] for r in wait(list(by_waitable), timeout=timeout))
        events: list[WorkerEvent] = []
        for h in fired:
            dead = not h.process.is_alive()
            try:
                while h.conn.poll():
                    kind, *payload = h.conn.recv()
                    events.append(WorkerEvent(kind, h, payload[0] if payload else None))
            except (EOFError, OSError):
                dead = True
            if dead:
                h.process.join(timeout=10)
                events.append(WorkerEvent("died", h, f"worker process died (exit code {h.process.exitcode})"))
        return events

    def release(self, handle: _Proc) -> None:
        self.stop([handle])

    def kill(self, handle: _Proc) -> None:
        handle.process.kill()
        handle.process.join(timeout=10)
        _close(handle.conn)

    def stop(self, handles: list[_Proc]) -> None:
        for h in handles:
            try:
                h.conn.send(("stop",))
            except OSError:
                pass
        for h in handles:
            h.process.join(timeout=60)
            if h.process.is_alive():
                h.process.terminate()
                h.process.join(timeout=5)
            _close(h.conn)


def _close(conn: Connection) -> None:
    try:
        conn.close()
    except OSError:
        pass


class LocalExecutor:
    def __init__(self, config: WorkerConfig, workers: int, batch_envs: int = 1):
        if workers < 1:
            raise VlaEvalError(f"--workers must be >= 1, got {workers}")
        if batch_envs < 1:
            raise VlaEvalError(f"--batch-envs must be >= 1, got {batch_envs}")
        self.config = config
        self.n_workers = workers
        self.batch_envs = batch_envs
        self.supervisor = None  # a policy server to keep alive (``--policy-server auto``)

    def run(
        self,
        items: list[PlanItem],
        on_record: Callable[[EpisodeRecord], None],
        should_stop: Callable[[], bool] | None = None,
    ) -> ExecutionSummary:
        """Run ``items`` as :meth:`Scheduler.run <vla_eval.execution.scheduler.Scheduler.run>` describes."""
        scheduler = Scheduler(ProcessStarter(), self.config, self.n_workers, self.batch_envs, self.supervisor)
        try:
            return scheduler.run(items, on_record, should_stop)
        finally:
            self.config = scheduler.config
