"""first_success vs final_step judging in the rollout (SuiteSpec.success_rule)."""

from __future__ import annotations

import numpy as np
import pytest

from vla_eval.execution.plan import PlanItem
from vla_eval.execution.rollout import EpisodeSettings, run_episode
from vla_eval.policies.baselines import NoopPolicy


class ScriptedOutcomeEnv:
    """Reports ``info["success"]`` from a fixed per-step list (True from step 3 to 5 here, say)."""

    native_action_space = None

    def __init__(self, outcomes: list[bool]):
        self.outcomes, self.t = outcomes, 0
        self.unwrapped = self

    def reset(self, seed=None, options=None):
        self.t = 0
        return {"state": {"x": np.zeros(1)}, "instruction": "do it"}, {"success": False}

    def step(self, action):
        self.t += 1
        ok = self.outcomes[min(self.t, len(self.outcomes)) - 1]
        return {"state": {"x": np.full(1, self.t)}, "instruction": "do it"}, float(ok), ok, False, {"success": ok}


def _run(outcomes, rule, max_steps=8):
    from vla_eval.policies.base import LIBERO_DELTA_EEF

    env = ScriptedOutcomeEnv(outcomes)
    env.native_action_space = LIBERO_DELTA_EEF
    settings = EpisodeSettings(
        run_id="r",
        suite="s",
        max_steps={"t": max_steps},
        settle_steps=0,
        settle_action=(0, 0, 0, 0, 0, 0, -1),
        success_rule=rule,
    )
    record, _ = run_episode(env, NoopPolicy(), PlanItem("t", "in_domain", 0, 0, 0), settings)
    return record


TRANSIENT = [False, False, True, True, False, False, False, False]  # succeeds at step 3, undone by step 5
LATE = [False] * 7 + [True]


def test_first_success_stops_at_the_first_successful_step():
    r = _run(TRANSIENT, "first_success")
    assert (r.success, r.steps, r.termination, r.success_rule) == (True, 3, "success", "first_success")


@pytest.mark.parametrize("outcomes,success,termination", [(TRANSIENT, False, "timeout"), (LATE, True, "success")])
def test_final_step_runs_to_the_limit_and_judges_the_last_step(outcomes, success, termination):
    r = _run(outcomes, "final_step")
    assert (r.success, r.steps, r.termination, r.success_rule) == (success, 8, termination, "final_step")


def test_success_rule_is_part_of_the_protocol_hash():
    from vla_eval.results.runs import protocol_hash
    from vla_eval.spec import load_suite

    spec = load_suite("tabletop_basic")
    assert spec.success_rule == "first_success"
    a = spec.model_dump(mode="json")
    b = {**a, "success_rule": "final_step"}
    assert protocol_hash(a) != protocol_hash(b)
    assert spec.spec_hash() != spec.model_copy(update={"success_rule": "final_step"}).spec_hash()
