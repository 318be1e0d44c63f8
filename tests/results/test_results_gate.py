"""The gated run's sequential test: error rates by simulation, stratification, verdict bookkeeping.

Simulated runs draw both the baseline's counts and the new run's episodes from known
per-task rates (the gate is a two-sample test), build the design as the runner does
from the drawn baseline, and replay episodes in the runner's balanced order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vla_eval.errors import ConfigError
from vla_eval.results.gate import (
    EXIT_UNDECIDED, REGRESSION, UNDECIDED, GateConfig, build_design, evaluate, repeated_wilson, restricted_rates, simulate_oc,
)

HET = [0.55, 0.7, 0.8, 0.9, 0.95, 0.98]  # heterogeneous tasks, up to rates where the normal approximation is worst


def _baseline(kb, n_base, tasks):
    return {"run_id": "base", "counts": {"in_domain": {t: {"episodes": int(n_base), "successes": int(k)} for t, k in zip(tasks, kb)}}}


def _factory(n_base, n_plan, tasks, **cfg):
    config = GateConfig(Path("baseline.json"), **cfg)

    def make(kb):
        return build_design(config, _baseline(kb, n_base, tasks), [(t, "in_domain", n_plan) for t in tasks], with_operating=False)

    return make


@pytest.mark.parametrize("rates,n_base,n_plan", [(HET, 60, 30), ([0.8] * 6, 100, 50)])
def test_false_alarm_rate_at_the_allowed_drop_is_at_most_alpha(rates, n_base, n_plan):
    tasks = [f"t{i}" for i in range(len(rates))]
    oc = simulate_oc(_factory(n_base, n_plan, tasks), rates, [n_base] * len(rates), np.array(rates) - 0.05,
                     baselines=60, runs_per_baseline=100, seed=11)
    assert oc.p_regression <= 0.05 + 3 * oc.se_regression
    assert oc.p_regression >= 0.05 / 3  # not so timid that it never fires


def test_power_at_the_stated_drop_and_early_stops_far_from_the_boundary():
    rates, n_base, n_plan = HET, 400, 150
    tasks = [f"t{i}" for i in range(len(rates))]
    make = _factory(n_base, n_plan, tasks)
    nominal = build_design(GateConfig(Path("b.json")), _baseline(np.round(np.array(rates) * n_base), n_base, tasks),
                           [(t, "in_domain", n_plan) for t in tasks])
    target = nominal["operating"]["drop_alternative"]["p_regression"]
    assert target >= 0.8  # this plan is big enough for the requested power
    hit = simulate_oc(make, rates, [n_base] * 6, np.array(rates) - 0.10, baselines=40, runs_per_baseline=100, seed=3)
    assert hit.p_regression >= 0.8 - 3 * hit.se_regression
    ok = simulate_oc(make, rates, [n_base] * 6, rates, baselines=40, runs_per_baseline=100, seed=4)
    assert ok.p_no_regression >= 0.95
    # far from the boundary the gate needs well under the plan
    assert ok.mean_episodes < 0.5 * n_plan * 6


def test_drop_in_one_task_does_not_hide_in_the_mean():
    tasks = [f"t{i}" for i in range(10)]
    rates = np.array([0.85] * 10)
    make = _factory(200, 50, tasks)
    one_task = rates.copy()
    one_task[2] -= 0.45  # mean drop 4.5 pts, below the allowed 5: only a per-task test can see it
    caught = simulate_oc(make, rates, [200] * 10, one_task, baselines=30, runs_per_baseline=100, seed=7)
    assert caught.p_regression >= 0.75
    mean_only = simulate_oc(_factory(200, 50, tasks, cell_alpha_share=0.0), rates, [200] * 10, one_task,
                            baselines=30, runs_per_baseline=100, seed=7)
    assert mean_only.p_regression < 0.2  # what a test of the mean alone would have seen
    spread = simulate_oc(make, rates, [200] * 10, rates - 0.045, baselines=30, runs_per_baseline=100, seed=8)
    assert spread.p_regression <= 0.05 + 3 * spread.se_regression


def _design(kb, n_base, n_plan, tasks=("a", "b"), **cfg):
    return build_design(GateConfig(Path("b.json"), **cfg), _baseline(kb, n_base, tasks), [(t, "in_domain", n_plan) for t in tasks])


def test_task_mix_shift_between_looks_cannot_fake_a_drop():
    # baseline: task a always succeeds, task b never; the new run is identical, but its
    # episodes finish all-a first. A pooled rate would fall from 100% to 50% across the looks.
    design = _design([40, 0], 40, 20)
    outcomes = [("a", "in_domain", True)] * 19 + [("b", "in_domain", False)] * 20 + [("a", "in_domain", True)]
    state = evaluate(design, outcomes)
    assert state.looks, "looks wait until every cell has an episode, then are taken"
    assert state.looks[0].episodes >= 20
    assert all(abs(x.drop) < 1e-12 for x in state.looks)
    assert state.decision != REGRESSION


def test_verdict_is_decided_at_the_first_crossing_and_later_episodes_do_not_change_it():
    design = _design([48, 47], 50, 50)
    bad = [(t, "in_domain", False) for _ in range(10) for t in ("a", "b")]
    good = [(t, "in_domain", True) for _ in range(40) for t in ("a", "b")]
    state = evaluate(design, bad + good)
    assert state.decision == REGRESSION and state.exit_code == 1
    assert state.looks[-1].episodes == design["look_episodes"][0]
    assert state.episodes_seen == 100


def test_undecided_at_the_full_plan_has_its_own_exit_code():
    # a plan far too small for the requested power: bounds cannot meet by the last look
    design = _design([16, 16], 20, 8, looks=2)
    lower, upper = design["primary"]["futility"][-1], design["primary"]["efficacy"][-1]
    assert lower < upper
    # the new run matches the baseline's rate minus the allowed drop: z ~ 0, between the bounds
    outcomes = [(t, "in_domain", i % 4 != 0) for i in range(8) for t in ("a", "b")]
    state = evaluate(design, outcomes)
    assert lower <= state.looks[-1].z < upper
    assert state.decision == UNDECIDED and state.exit_code == EXIT_UNDECIDED == 5


def test_incomplete_gated_run_is_not_a_verdict():
    design = _design([45, 45], 50, 50)
    state = evaluate(design, [("a", "in_domain", True), ("b", "in_domain", True)])
    assert not state.settled and state.exit_code == 5 and "incomplete" in state.stop_reason


def test_restricted_rates_maximise_the_likelihood_on_the_null_boundary():
    from scipy.optimize import minimize_scalar

    for x1, n1, x2, n2 in [(26, 51, 10, 39), (31, 31, 27, 37), (12, 18, 0, 49), (8, 12, 45, 49)]:
        r1, r2 = restricted_rates(np.float64(x1), n1, np.float64(x2), n2, 0.05)
        assert r1 - r2 == pytest.approx(0.05)

        def nll(q):
            return -(x1 * np.log(q) + (n1 - x1) * np.log(1 - q) + x2 * np.log(q - 0.05) + (n2 - x2) * np.log(1.05 - q))

        best = minimize_scalar(nll, bounds=(0.05 + 1e-9, 1 - 1e-9), method="bounded").x
        assert float(r1) == pytest.approx(best, abs=1e-4)


def test_bad_gate_options_are_config_errors():
    for kwargs, field in [({"alpha": 0.7}, "--alpha"), ({"power": 1.2}, "--power"), ({"looks": 0}, "--looks"),
                          ({"max_drop": 0.0}, "--max-drop")]:
        with pytest.raises(ConfigError, match=field):
            GateConfig(Path("b.json"), **kwargs).validate()
    with pytest.raises(ConfigError, match="no \\(task, split\\) cell"):
        build_design(GateConfig(Path("b.json")), _baseline([5], 10, ["other"]), [("a", "in_domain", 5)])


def test_design_records_bounds_and_operating_characteristics():
    design = _design([40, 35], 50, 50)
    assert design["look_episodes"][-1] == 100 and len(design["look_episodes"]) == 10
    eff, fut = design["primary"]["efficacy"], design["primary"]["futility"]
    assert all(f is None or e is None or f <= e for f, e in zip(fut, eff))
    ops = design["operating"]
    assert ops["drop_max"]["p_regression"] <= design["alpha_primary"] + 1e-9
    assert ops["drop_0"]["expected_fraction_of_plan"] < ops["drop_max"]["expected_fraction_of_plan"]


def test_repeated_ci_is_wilson_for_a_single_look_and_wider_at_an_interim_stop():
    from statsmodels.stats.proportion import proportion_confint

    one_look = _design([40, 35], 50, 20, looks=1)
    lo, hi = repeated_wilson(15, 20, 1.0, one_look)
    ref = proportion_confint(15, 20, alpha=0.05, method="wilson")
    assert lo == pytest.approx(ref[0], abs=1e-3) and hi == pytest.approx(ref[1], abs=1e-3)
    ten_looks = _design([40, 35], 50, 20)
    lo2, hi2 = repeated_wilson(6, 8, 0.4, ten_looks)
    ref2 = proportion_confint(6, 8, alpha=0.05, method="wilson")
    assert lo2 < ref2[0] and hi2 > ref2[1]  # a stop at a data-dependent look costs width
