import time

import pytest

from vla_eval.execution.limits import DeadPolicyError, DeadPolicyMonitor, Limits, Watchdog, needs_recycling
from vla_eval.record import EpisodeRecord


def _rec(termination: str, error: str | None = None) -> EpisodeRecord:
    return EpisodeRecord(
        run_id="r",
        suite="s",
        task="t",
        split="in_domain",
        episode_index=0,
        init_state_id=0,
        seed=0,
        success=termination == "success",
        steps=1,
        termination=termination,
        error=error,
    )


def test_dead_policy_monitor_stops_only_on_an_unbroken_run_of_failures():
    m = DeadPolicyMonitor(3, planned=10)
    m.feed(_rec("policy_error", "boom"))
    m.feed(_rec("policy_timeout", "slow"))
    with pytest.raises(DeadPolicyError, match="first 3 episodes"):
        m.feed(_rec("policy_error", "boom"))
    healthy = DeadPolicyMonitor(3, planned=10)
    healthy.feed(_rec("timeout"))
    for _ in range(5):
        healthy.feed(_rec("policy_error"))  # one healthy episode first: never dead
    env = DeadPolicyMonitor(2, planned=10)
    env.feed(_rec("env_error"))
    env.feed(_rec("policy_error"))  # an env failure is not the policy's


def test_dead_policy_monitor_is_off_for_small_plans_and_zero():
    for m in (DeadPolicyMonitor(3, planned=3), DeadPolicyMonitor(0, planned=100)):
        for _ in range(5):
            m.feed(_rec("policy_error"))


def test_watchdog_reports_a_stuck_call_once():
    fired = []
    wd = Watchdog(Limits(policy_call_s=0.1), lambda term, msg: fired.append((term, msg)), tick_s=0.01)
    with wd.batch(), wd.call("predict"):
        time.sleep(0.4)
    wd.close()
    assert len(fired) == 1 and fired[0][0] == "policy_timeout" and "predict()" in fired[0][1]


def test_memory_error_always_recycles():
    assert needs_recycling(Limits(), [_rec("policy_error", "MemoryError: ")]) is not None
    assert needs_recycling(Limits(), [_rec("timeout")]) is None
    assert "max_worker_rss_mb" in needs_recycling(Limits(max_rss_mb=1), [_rec("timeout")])
