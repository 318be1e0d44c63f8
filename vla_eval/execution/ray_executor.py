"""Ray executor: the same episode workers as Ray actors, locally or on a cluster.

Each actor wraps :class:`~vla_eval.execution.worker.EpisodeWorker` (so records are identical to the
local executor's), keeps its envs alive across episodes of a task, and returns finished
records to the driver, which writes them durably as they arrive. An actor that dies
(segfault, OOM kill, ``os._exit``) costs only its episodes in flight: each is retried
once, alone, on a fresh actor, and recorded as ``env_error`` if it dies again.
"""

from __future__ import annotations

import os
import socket
import time
from collections import deque
from typing import Callable

from vla_eval.errors import VlaEvalError
from vla_eval.execution.executor import MAX_ATTEMPTS, ExecutionSummary, _take
from vla_eval.execution.limits import batch_deadline_s as limits_deadline
from vla_eval.execution.plan import PlanItem
from vla_eval.record import EpisodeRecord
from vla_eval.execution.rollout import failed_record
from vla_eval.execution.worker import WORKER_ENV, WorkerConfig, timeout_record



def batch_deadline_s(config: WorkerConfig) -> float | None:
    """The driver-enforced batch limit (an actor cannot report its own hang)."""
    return limits_deadline(config.limits, max(config.settings.max_steps.values(), default=1))


class _EnvActor:
    def __init__(self, config: WorkerConfig):
        for key, value in WORKER_ENV.items():
            os.environ.setdefault(key, value)
        from vla_eval.execution.worker import EpisodeWorker

        self._worker = EpisodeWorker(config)

    def pid(self) -> int:
        return os.getpid()

    def run_batch(self, items: list[PlanItem]) -> list[dict]:
        from vla_eval.errors import RETRY_EXIT_CODE, RetryEpisode

        try:
            return [r.model_dump(mode="json") for r in self._worker.run_batch(items)]
        except RetryEpisode:
            os._exit(RETRY_EXIT_CODE)  # the driver sees the actor die and reruns the batch

    def close(self) -> None:
        self._worker.close()


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
    def __init__(self, config: WorkerConfig, workers: int, batch_envs: int = 1, address: str | None = None,
                 cpus_per_actor: float = 1.0):
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

    def _check_server(self) -> None:
        if self.supervisor is not None:
            new_policy = self.supervisor.check()
            if new_policy is not None:
                from dataclasses import replace

                self.config = replace(self.config, policy=new_policy)

    def _server_generation(self) -> int:
        """How many times the policy server has been replaced so far (0 without one)."""
        return int(getattr(self.supervisor, "restarts", 0) or 0) if self.supervisor is not None else 0

    def ray_init(self):
        return self._init_ray()

    def _init_ray(self):
        import ray

        if ray.is_initialized():
            return ray
        env_vars = dict(WORKER_ENV)
        if self.address:
            _check_address(self.address)
            ray.init(address=self.address, runtime_env={"env_vars": env_vars}, log_to_driver=False)
        else:
            ray.init(num_cpus=max(self.n_workers, 1), include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": env_vars})
        return ray

    def run(self, items: list[PlanItem], on_record: Callable[[EpisodeRecord], None],
            should_stop: Callable[[], bool] | None = None) -> ExecutionSummary:
        """As :meth:`LocalExecutor.run`, including the gated-run ``should_stop`` hook."""
        ray = self._init_ray()
        from ray.exceptions import RayActorError

        actor_cls = ray.remote(num_cpus=self.cpus_per_actor, max_restarts=0)(_EnvActor)
        summary = ExecutionSummary()
        pending: deque[PlanItem] = deque(items)
        solo: deque[PlanItem] = deque()
        attempts: dict[tuple, int] = {}
        actors = [actor_cls.remote(self.config) for _ in range(min(self.n_workers, max(len(items), 1)))]
        env_keys: dict[int, tuple | None] = {id(a): None for a in actors}
        in_flight: dict = {}
        started: dict = {}
        server_gen: dict = {}
        excused: dict[tuple, int] = {}  # attempts lost to a policy-server death, not counted against MAX_ATTEMPTS
        idle = list(actors)
        deadline = batch_deadline_s(self.config)
        try:
            while pending or solo or in_flight:
                if should_stop is not None and should_stop():
                    pending.clear()
                    if not (solo or in_flight):
                        break
                while idle and (pending or solo):
                    actor = idle.pop(0)
                    batch = [solo.popleft()] if solo else _take(
                        pending, None if should_stop else env_keys[id(actor)], self.batch_envs)
                    env_keys[id(actor)] = batch[0].env_key
                    for item in batch:
                        attempts[item.key] = attempts.get(item.key, 0) + 1
                    ref = actor.run_batch.remote(batch)
                    in_flight[ref] = (actor, batch)
                    started[ref] = time.monotonic()
                    server_gen[ref] = self._server_generation()
                timeouts = [t for t in (None if deadline is None else 0.5, 5.0 if self.supervisor is not None else None) if t is not None]
                done, _ = ray.wait(list(in_flight), num_returns=1, timeout=min(timeouts) if timeouts else None)
                self._check_server()
                if not done:
                    for ref in [r for r in in_flight if time.monotonic() - started[r] > deadline]:
                        actor, batch = in_flight.pop(ref)
                        ray.kill(actor, no_restart=True)
                        summary.recycled.append(f"batch exceeded its wall-clock limit of {deadline:g}s")
                        term = "episode_timeout" if self.config.limits.episode_s else "policy_timeout"
                        for item in batch:
                            on_record(timeout_record(self.config, item, term,
                                                     f"episode did not finish within {deadline:g}s (wall clock; Ray driver)"))
                        replacement = actor_cls.remote(self.config)
                        env_keys[id(replacement)] = None
                        idle.append(replacement)
                    continue
                ref = done[0]
                actor, batch = in_flight.pop(ref)
                try:
                    raws = ray.get(ref)
                except RayActorError as exc:
                    summary.worker_deaths += 1
                    ray.kill(actor, no_restart=True)
                    self._check_server()
                    # an env actor that died with the policy server (or while its replacement started) is
                    # not the episode's fault: that attempt is not charged
                    server_died = self._server_generation() > server_gen.pop(ref, 0)
                    for item in batch:
                        if server_died:
                            excused[item.key] = excused.get(item.key, 0) + 1
                        if attempts[item.key] - excused.get(item.key, 0) < MAX_ATTEMPTS or len(batch) > 1:
                            summary.retried.append(item.key)
                            solo.append(item)
                        else:
                            on_record(failed_record(self.config.settings, item, attempts=attempts[item.key],
                                                    error=f"Ray actor died on {attempts[item.key]} attempts: {type(exc).__name__}"))
                    self._check_server()
                    replacement = actor_cls.remote(self.config)
                    env_keys[id(replacement)] = None
                    idle.append(replacement)
                    continue
                except ray.exceptions.RayError as exc:
                    # the task failed but its actor lives (e.g. a result Ray cannot serialise): record, go on
                    for item in batch:
                        on_record(failed_record(self.config.settings, item, attempts=attempts[item.key],
                                                error=f"Ray task failed: {type(exc).__name__}: {str(exc)[:500]}"))
                    idle.append(actor)
                    continue
                for raw in raws:
                    record = EpisodeRecord.model_validate(raw)
                    record.attempts = attempts.get(record.key, 1)
                    on_record(record)
                idle.append(actor)
        finally:
            for actor in idle + [a for a, _ in in_flight.values()]:
                try:
                    ray.get(actor.close.remote(), timeout=60)
                except Exception:
                    pass
                ray.kill(actor, no_restart=True)
        return summary
