"""Ray executor: the same episode workers as Ray actors, locally or on a cluster.

Each actor wraps :class:`~vla_eval.execution.worker.EpisodeWorker` (so records are identical to the
local executor's), keeps its envs alive across episodes of a task, and returns finished
records to the driver, which writes them durably as they arrive. Scheduling, retries and
recording are the shared :class:`~vla_eval.execution.scheduler.Scheduler`'s: an actor that dies
(segfault, OOM kill, ``os._exit``) costs only its episodes in flight, exactly as a local worker.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vla_eval.errors import VlaEvalError
from vla_eval.execution.plan import PlanItem
from vla_eval.execution.scheduler import ExecutionSummary, Scheduler, WorkerEvent
from vla_eval.execution.worker import WORKER_ENV, WorkerConfig
from vla_eval.record import EpisodeRecord


class _EnvActor:
    """An :class:`EpisodeWorker` in an actor, speaking the same events as ``worker_main``."""

    def __init__(self, config: WorkerConfig):
        for key, value in WORKER_ENV.items():
            os.environ.setdefault(key, value)
        from vla_eval.execution.worker import EpisodeWorker, start_error

        self._limits = config.limits
        self._worker = None
        self._error = None
        try:
            self._worker = EpisodeWorker(config)
        except Exception as exc:  # reported by ready(): a policy that cannot load stops the run, as locally
            self._error = start_error(exc)

    def ready(self) -> tuple[str, Any]:
        return ("fatal", self._error) if self._error else ("ready", os.getpid())

    def run_batch(self, items: list[PlanItem]) -> dict[str, Any]:
        from vla_eval.errors import RetryEpisode
        from vla_eval.execution.limits import needs_recycling

        try:
            records = self._worker.run_batch(items)
        except RetryEpisode as exc:
            return {"lost": str(exc)}
        return {
            "records": [r.model_dump(mode="json") for r in records],
            "recycle": needs_recycling(self._limits, records),
        }

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()


@dataclass(eq=False)
class _Actor:
    actor: Any


class RayStarter:
    """Workers as Ray actors. An actor has no watchdog of its own (its hang cannot be reported
    from inside), so the driver's wall-clock limit applies with no grace."""

    backstop_grace_s = 0.0

    def __init__(self, ray, cpus_per_actor: float):
        self._ray = ray
        self._cls = ray.remote(num_cpus=cpus_per_actor, max_restarts=0)(_EnvActor)
        self._calls: dict[Any, tuple[_Actor, str]] = {}

    def start(self, config: WorkerConfig) -> _Actor:
        handle = _Actor(self._cls.remote(config))
        self._calls[handle.actor.ready.remote()] = (handle, "ready")
        return handle

    def send(self, handle: _Actor, items: list[PlanItem]) -> None:
        self._calls[handle.actor.run_batch.remote(items)] = (handle, "batch")

    def wait(self, handles: list[_Actor], timeout: float | None) -> list[WorkerEvent]:
        live = set(handles)
        refs = [ref for ref, (h, _) in self._calls.items() if h in live]
        if not refs:
            time.sleep(timeout or 0.1)
            return []
        done, rest = self._ray.wait(refs, num_returns=1, timeout=timeout)
        if done and rest:
            more, _ = self._ray.wait(rest, num_returns=len(rest), timeout=0)
            done += more
        events: list[WorkerEvent] = []
        for ref in done:
            handle, call = self._calls.pop(ref)
            events += self._outcome(handle, call, ref)
        return events

    def _outcome(self, handle: _Actor, call: str, ref) -> list[WorkerEvent]:
        from ray.exceptions import RayActorError, RayError

        try:
            value = self._ray.get(ref)
        except RayActorError as exc:
            return [WorkerEvent("died", handle, f"Ray actor died ({type(exc).__name__})")]
        except RayError as exc:  # the task failed but its actor lives (e.g. a result Ray cannot serialise)
            return [WorkerEvent("failed", handle, f"Ray task failed: {type(exc).__name__}: {str(exc)[:500]}")]
        if call == "ready":
            return [WorkerEvent(value[0], handle, value[1])]
        if "lost" in value:
            return [WorkerEvent("lost", handle, value["lost"])]
        events = [WorkerEvent("recycle", handle, value["recycle"])] if value.get("recycle") else []
        return events + [WorkerEvent("done", handle, value["records"])]

    def _forget(self, handle: _Actor) -> None:
        for ref in [r for r, (h, _) in self._calls.items() if h is handle]:
            del self._calls[ref]

    def release(self, handle: _Actor) -> None:
        self.stop([handle])

    def kill(self, handle: _Actor) -> None:
        self._forget(handle)
        self._ray.kill(handle.actor, no_restart=True)

    def stop(self, handles: list[_Actor]) -> None:
        closing = []
        for h in handles:
            self._forget(h)
            closing.append(h.actor.close.remote())  # a dead actor's call fails in ray.wait, not here
        if closing:
            self._ray.wait(closing, num_returns=len(closing), timeout=60)
        for h in handles:
            self._ray.kill(h.actor, no_restart=True)


def _check_address(address: str) -> None:
    """Fail fast: Ray retries an unreachable explicit address for minutes."""
    if address in ("auto", "local") or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=3):
            pass
    except (OSError, ValueError) as exc:
        raise VlaEvalError(f"--ray-address {address}: no Ray cluster reachable there ({exc})") from exc


class RayExecutor:
    def __init__(
        self,
        config: WorkerConfig,
        workers: int,
        batch_envs: int = 1,
        address: str | None = None,
        cpus_per_actor: float = 1.0,
    ):
        if address and (os.path.exists(os.path.expanduser("~/.ray/auth_token")) or os.environ.get("RAY_AUTH_TOKEN")):
            # Ray reads its auth mode when it is first imported; a cluster with token auth
            # (the default for `ray start` once a token exists) rejects drivers without it.
            os.environ.setdefault("RAY_AUTH_MODE", "token")
        try:
            import ray  # noqa: F401
        except ImportError as exc:
            raise VlaEvalError('--executor ray needs Ray: pip install -e ".[ray]"') from exc
        if workers < 1 or batch_envs < 1:
            raise VlaEvalError("--workers and --batch-envs must be >= 1")
        self.config, self.n_workers, self.batch_envs = config, workers, batch_envs
        self.address, self.cpus_per_actor = address, cpus_per_actor
        self.supervisor = None  # a policy server to keep alive (``--policy-server auto``)

    def ray_init(self):
        """Ray, connected: to ``address``, to a Ray this process already started, or to a new local one."""
        import ray

        if ray.is_initialized():
            return ray
        env_vars = dict(WORKER_ENV)
        if self.address:
            _check_address(self.address)
            ray.init(address=self.address, runtime_env={"env_vars": env_vars}, log_to_driver=False)
        else:
            ray.init(
                num_cpus=max(self.n_workers, 1),
                include_dashboard=False,
                log_to_driver=False,
                runtime_env={"env_vars": env_vars},
            )
        return ray

    def run(
        self,
        items: list[PlanItem],
        on_record: Callable[[EpisodeRecord], None],
        should_stop: Callable[[], bool] | None = None,
    ) -> ExecutionSummary:
        """As :meth:`LocalExecutor.run <vla_eval.execution.executor.LocalExecutor.run>`, on Ray actors."""
        starter = RayStarter(self.ray_init(), self.cpus_per_actor)
        scheduler = Scheduler(starter, self.config, self.n_workers, self.batch_envs, self.supervisor)
        try:
            return scheduler.run(items, on_record, should_stop)
        finally:
            self.config = scheduler.config
