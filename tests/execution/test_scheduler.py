"""The shared scheduling loop: its accounting rules on simulated workers, then the same rules
under both real starters (spawned processes and Ray actors) with a policy that crashes its worker."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml

from vla_eval.errors import VlaEvalError
from vla_eval.execution.limits import Limits
from vla_eval.execution.plan import PlanItem
from vla_eval.execution.rollout import EpisodeSettings, failed_record
from vla_eval.execution.scheduler import (
    MAX_ATTEMPTS,
    MAX_LOST_ATTEMPTS,
    Scheduler,
    WorkerEvent,
)
from vla_eval.execution.worker import WorkerConfig
from vla_eval.store import RunStore

SETTINGS = EpisodeSettings(run_id="r", suite="s", max_steps={"a": 5, "b": 5}, settle_steps=0, settle_action=(0.0,))


def _config(**limits) -> WorkerConfig:
    return WorkerConfig(
        spec=None, policy=None, settings=SETTINGS, run_dir="", videos=None, cameras=(), limits=Limits(**limits)
    )


def _items(n: int, task: str = "a") -> list[PlanItem]:
    return [PlanItem(task, "in_domain", i, 0, 100 + i) for i in range(n)]


class _Handle:
    pass


class FakeStarter:
    """Workers simulated in the driver: ``plan[(task, index)]`` lists what each attempt of an episode
    does (``crash``, ``lost``, ``hang``); unlisted attempts finish with ``timeout``."""

    backstop_grace_s = 0.0

    def __init__(self, plan: dict | None = None, start: str = "ready"):
        self.plan, self.start_as = plan or {}, start
        self.tries: dict[tuple, int] = {}
        self.queue: list[WorkerEvent] = []
        self.started, self.batches, self.killed, self.stopped = 0, [], 0, 0

    def start(self, config):
        handle = _Handle()
        self.started += 1
        self.queue.append(
            {
                "ready": WorkerEvent("ready", handle, 1),
                "fatal": WorkerEvent("fatal", handle, "could not start worker: ImportError: no torch"),
                "dies": WorkerEvent("died", handle, "worker process died (exit code -11)"),
            }[self.start_as]
        )
        return handle

    def send(self, handle, items):
        self.batches.append([i.episode_index for i in items])
        faults = []
        for item in items:
            n = self.tries[item.key] = self.tries.get(item.key, 0) + 1
            steps = self.plan.get((item.task, item.episode_index), [])
            faults.append(steps[n - 1] if n <= len(steps) else None)
        if "crash" in faults:
            self.queue.append(WorkerEvent("died", handle, "worker process died (exit code -9)"))
        elif "lost" in faults:
            self.queue.append(WorkerEvent("lost", handle, "policy server lost"))
        elif "hang" not in faults:
            records = []
            for item in items:
                record = failed_record(SETTINGS, item, "")
                record.termination, record.error = "timeout", None
                records.append(record.model_dump(mode="json"))
            self.queue.append(WorkerEvent("done", handle, records))

    def wait(self, handles, timeout):
        live = set(handles)
        events = [e for e in self.queue if e.handle in live]
        self.queue = [e for e in self.queue if e.handle not in live]
        if not events and timeout:
            time.sleep(timeout)
        return events

    def release(self, handle):
        self.stopped += 1

    def kill(self, handle):
        self.killed += 1

    def stop(self, handles):
        self.stopped += len(handles)


def _run(starter, items, workers=2, batch_envs=1, supervisor=None, **limits):
    out = []
    summary = Scheduler(starter, _config(**limits), workers, batch_envs, supervisor).run(items, out.append)
    return {r.episode_index: r for r in out}, summary


def test_an_episode_that_kills_its_worker_once_is_retried_once_and_others_are_untouched():
    starter = FakeStarter({("a", 1): ["crash"]})
    recs, summary = _run(starter, _items(3))
    assert {i: (r.termination, r.attempts) for i, r in recs.items()} == {
        0: ("timeout", 1),
        1: ("timeout", 2),
        2: ("timeout", 1),
    }
    assert summary.retried == [("a", "in_domain", 1)] and summary.worker_deaths == 1
    assert starter.started == 3  # two workers and one replacement


def test_an_episode_that_always_kills_its_worker_is_env_error_after_max_attempts():
    recs, summary = _run(FakeStarter({("a", 1): ["crash"] * 10}), _items(3))
    assert recs[1].termination == "env_error" and recs[1].attempts == MAX_ATTEMPTS
    assert recs[1].error == f"worker process died (exit code -9) on {MAX_ATTEMPTS} attempts"
    assert summary.worker_deaths == MAX_ATTEMPTS and recs[0].attempts == recs[2].attempts == 1


def test_a_lost_policy_server_is_not_charged_against_the_episode():
    # lost, then a real crash, then fine: charged once only, so the third attempt runs and is recorded
    recs, summary = _run(FakeStarter({("a", 0): ["lost", "crash"]}), _items(2))
    assert (recs[0].termination, recs[0].attempts) == ("timeout", 3)
    assert summary.retried == [("a", "in_domain", 0)] * 2


def test_a_server_that_never_comes_back_still_ends_the_episode():
    recs, _ = _run(FakeStarter({("a", 0): ["lost"] * 10}), _items(1), workers=1)
    assert recs[0].termination == "env_error" and recs[0].attempts == MAX_LOST_ATTEMPTS + 1
    assert "policy server lost" in recs[0].error


def test_a_batch_whose_worker_died_is_retried_one_episode_at_a_time():
    starter = FakeStarter({("a", 1): ["crash"] * 10})
    recs, _ = _run(starter, _items(2), workers=1, batch_envs=2)
    assert starter.batches == [[0, 1], [0], [1]]
    assert (recs[0].termination, recs[0].attempts) == ("timeout", 2)
    assert (recs[1].termination, recs[1].attempts) == ("env_error", 2)


def test_batches_keep_to_one_env_key():
    starter = FakeStarter()
    _run(starter, _items(3, "a") + _items(2, "b"), workers=1, batch_envs=2)
    assert starter.batches == [[0, 1], [2], [0, 1]]


def test_a_silent_worker_is_killed_and_its_episode_recorded_as_timed_out():
    starter = FakeStarter({("a", 0): ["hang"]})
    t = time.monotonic()
    recs, summary = _run(starter, _items(2), workers=1, episode_s=0.2)
    assert time.monotonic() - t < 10
    assert recs[0].termination == "episode_timeout" and "killed by the driver" in recs[0].error
    assert recs[1].termination == "timeout" and starter.killed == 1
    assert summary.recycled and summary.worker_deaths == 0


def test_a_worker_that_cannot_start_stops_the_run_with_its_reason():
    starter = FakeStarter(start="fatal")
    with pytest.raises(VlaEvalError, match="could not start worker: ImportError: no torch"):
        _run(starter, _items(2))
    assert starter.stopped + starter.killed == 2  # no worker left behind (a failed start kills the rest)
    with pytest.raises(VlaEvalError, match=r"died while starting \(worker process died \(exit code -11\)\)"):
        _run(FakeStarter(start="dies"), _items(2))


# ---------------------------------------------------------------- the same loop under both real starters

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray for this module. Its processes inherit the environment: the test doubles' folder
    on PYTHONPATH, and no RAY_AUTH_MODE (a ``--ray-address`` run earlier in this session may have set
    it for a token cluster; this Ray was imported without it and would not reach its own GCS)."""
    ray = pytest.importorskip("ray")
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "RAY_AUTH_MODE", "RAY_USAGE_STATS_ENABLED")}
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), saved["PYTHONPATH"]) if p)
    os.environ.pop("RAY_AUTH_MODE", None)
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        yield ray
    finally:
        ray.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["local", "ray"])
def test_both_executors_charge_deaths_and_lost_servers_alike(tmp_path, executor, request):
    """Episode 1 kills its worker once, episode 2 on every attempt, episode 3 loses its policy
    server and then kills its worker: the records are the same on processes and on Ray actors."""
    if executor == "ray":
        request.getfixturevalue("ray_local")
    from vla_eval.execution.plan import build_plan
    from vla_eval.execution.runner import RunRequest, run
    from vla_eval.spec import load_suite

    suite = tmp_path / "suite.yaml"
    suite.write_text(
        yaml.safe_dump(
            {
                "name": "faults",
                "backend": "tabletop",
                "tasks": ["pick_place_cube"],
                "episodes_per_task": 4,
                "max_steps": 5,
                "cameras": [],
                "image_size": [32, 32],
                "splits": [{"name": "in_domain"}],
            }
        )
    )
    seeds = [i.seed for i in build_plan(load_suite(str(suite)))]
    faults = {seeds[1]: ["crash"], seeds[2]: ["crash"] * 5, seeds[3]: ["lost", "crash"]}
    run_dir = tmp_path / "run"
    t = time.monotonic()
    out = run(
        RunRequest(
            suite=str(suite),
            policy="_faulty:FaultPlanPolicy",
            workers=2,
            executor=executor,
            policy_args=[f"faults={faults}", f"marker_dir={tmp_path / 'markers'}"],
            run_dir=run_dir,
            progress=False,
        )
    )
    assert time.monotonic() - t < 240
    with RunStore(run_dir, readonly=True) as store:
        recs = sorted(store.records(), key=lambda r: r.episode_index)
    assert [(r.termination, r.attempts) for r in recs] == [
        ("timeout", 1),
        ("timeout", 2),
        ("env_error", MAX_ATTEMPTS),
        ("timeout", 3),
    ]
    assert "died" in recs[2].error and f"on {MAX_ATTEMPTS} attempts" in recs[2].error
    assert sorted(out.execution.retried) == sorted([r.key for r in recs[1:2]] + [recs[2].key] + [recs[3].key] * 2)
    assert out.execution.worker_deaths == 5 and out.execution.recycled == []
