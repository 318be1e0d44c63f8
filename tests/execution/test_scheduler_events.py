"""The scheduling loop's less common events, on the simulated workers of ``test_scheduler.py``:
a batch that fails while its worker lives, a worker that asks to be replaced, a driver-killed
batch under a per-call limit, a policy server restarted under the run, and how long the loop
waits for events (a hung worker is only noticed if the loop wakes up).

Mutation testing (docs/testing.md) showed each of these paths could be broken with every test passing.
"""

from __future__ import annotations

from types import SimpleNamespace

from test_scheduler import FakeStarter, _config, _items, _run

from vla_eval.execution.scheduler import Scheduler, WorkerEvent


class EventStarter(FakeStarter):
    """Adds ``failed`` (the batch failed, the worker lives) and ``recycle`` (finish, then replace me)
    to the faults an attempt may have; records the handles killed and released and each wait's timeout."""

    def __init__(self, plan=None, grace=0.0):
        super().__init__(plan)
        self.backstop_grace_s = grace
        self.killed_handles, self.released_handles, self.timeouts, self.policies = [], [], [], []

    def start(self, config):
        self.policies.append(config.policy)
        return super().start(config)

    def send(self, handle, items):
        n = self.tries.get(items[0].key, 0) + 1
        steps = self.plan.get((items[0].task, items[0].episode_index), [])
        fault = steps[n - 1] if n <= len(steps) else None
        if fault == "failed":
            self.tries[items[0].key] = n
            self.batches.append([i.episode_index for i in items])
            self.queue.append(WorkerEvent("failed", handle, "env reset failed: no such fixture"))
            return
        if fault == "recycle":
            self.queue.append(WorkerEvent("recycle", handle, "worker memory 5000 MB > limit 4000 MB"))
        super().send(handle, items)

    def wait(self, handles, timeout):
        self.timeouts.append(timeout)
        return super().wait(handles, timeout)

    def kill(self, handle):
        self.killed_handles.append(handle)
        super().kill(handle)

    def release(self, handle):
        self.released_handles.append(handle)
        super().release(handle)


def test_a_failed_batch_is_recorded_as_env_error_with_its_message_and_the_worker_goes_on():
    starter = EventStarter({("a", 1): ["crash", "failed"]})
    recs, summary = _run(starter, _items(3), workers=1)
    assert (recs[1].termination, recs[1].attempts) == ("env_error", 2)
    assert recs[1].error == "env reset failed: no such fixture"
    assert [(recs[i].termination, recs[i].attempts) for i in (0, 2)] == [("timeout", 1), ("timeout", 1)]
    assert starter.started == 2 and summary.worker_deaths == 1  # the crash replaced it; the failure did not


def test_a_worker_asking_to_be_replaced_finishes_its_batch_and_is_released_not_killed():
    starter = EventStarter({("a", 0): ["recycle"]})
    recs, summary = _run(starter, _items(2), workers=1)
    assert [(r.termination, r.attempts) for r in recs.values()] == [("timeout", 1), ("timeout", 1)]
    assert summary.recycled == ["worker memory 5000 MB > limit 4000 MB"]
    assert len(starter.released_handles) == 1 and starter.killed_handles == []
    assert starter.started == 2


def test_a_silent_batch_under_a_per_call_limit_is_a_policy_timeout_charged_at_its_attempt():
    # policy_call_s 0.02 s x (5 steps + 2) = 0.14 s batch limit, plus the starter's 0.1 s grace
    starter = EventStarter({("a", 0): ["crash", "hang"]}, grace=0.1)
    recs, summary = _run(starter, _items(1), workers=1, policy_call_s=0.02)
    record = recs[0]
    assert (record.termination, record.attempts) == ("policy_timeout", 2)
    assert record.error == "worker gave no answer within 0.24s (batch limit + 0.1s); killed by the driver"
    assert summary.recycled == [record.error]
    dead = starter.killed_handles  # the crashed worker, then the silent one: each killed by its own handle
    assert len(dead) == 2 and None not in dead and dead[0] is not dead[1]


def test_without_grace_the_timeout_message_names_only_the_batch_limit():
    recs, _ = _run(EventStarter({("a", 0): ["hang"]}), _items(1), workers=1, episode_s=0.1)
    assert recs[0].termination == "episode_timeout"
    assert recs[0].error == "worker gave no answer within 0.1s (batch limit); killed by the driver"


class RestartingSupervisor:
    """A policy server that dies under the first batch and comes back on another port."""

    def __init__(self):
        self.checks, self.restarted = 0, False
        self.new_policy = SimpleNamespace(name="remote", args={"port": 8123})

    def check(self):
        self.checks += 1
        if self.checks == 2 and not self.restarted:
            self.restarted = True
            return self.new_policy
        return None


def test_workers_started_after_a_server_restart_reach_the_new_server():
    supervisor = RestartingSupervisor()
    starter = EventStarter({("a", 0): ["lost"]})
    recs, _ = _run(starter, _items(2), workers=1, supervisor=supervisor)
    assert recs[0].termination == "timeout" and recs[0].attempts == 2
    assert starter.policies[0] is None and starter.policies[-1] is supervisor.new_policy
    assert supervisor.checks >= 2


def test_the_loop_wakes_up_to_watch_limits_and_servers_and_otherwise_blocks():
    """With a batch limit the loop must wake (0.5 s) to kill a hung worker; with a policy server to
    keep alive, at least every second; with neither it blocks on the workers instead of polling."""
    limited = EventStarter()
    _run(limited, _items(2), workers=1, episode_s=30.0)
    assert limited.timeouts and set(limited.timeouts) == {0.5}

    supervised = EventStarter()
    _run(supervised, _items(2), workers=1, supervisor=RestartingSupervisor())
    assert set(supervised.timeouts) == {1.0}

    plain = EventStarter()
    Scheduler(plain, _config(), 1, 1).run(_items(2), lambda r: None)
    assert set(plain.timeouts) == {None}
