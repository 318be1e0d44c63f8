"""What a gated run prints and tables, on a design built in the test (no rollouts).

The gate's numbers have their own tests (``test_results_gate.py``); its text was only reached by
the slow real-run tests, so mutation testing could change the baseline's hash, the stated power
or drop, the trace's interval ends or the repeated intervals of the table with every fast test
passing (docs/testing.md).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from vla_eval.errors import ConfigError
from vla_eval.results.gate import (
    GateConfig, build_design, describe, evaluate, repeated_wilson, sequential_summary, table_header,
)
from vla_eval.results.stats import wilson_interval

TASKS = ("t0", "t1", "t2")
SHA = "0123456789abcdef" * 4


def _design(n_plan=10):
    baseline = {"run_id": "base_run", "counts": {"in_domain": {t: {"episodes": 20, "successes": 20} for t in TASKS}}}
    cfg = GateConfig(Path("baselines/b.json"), max_drop=0.05, detect_drop=0.10, power=0.8)
    return build_design(cfg, baseline, [(t, "in_domain", n_plan) for t in TASKS], baseline_sha256=SHA)


def _failures(n_per_task):
    return [(t, "in_domain", False) for _ in range(n_per_task) for t in TASKS]


def test_describe_names_the_baseline_the_power_and_late_episodes():
    design = _design()
    state = evaluate(design, _failures(10))
    assert state.decision == "regression" and state.decisive_look.episodes < 30
    text = describe(state)
    lines = text.splitlines()
    assert lines[0] == f"gated run against baseline base_run ({Path('baselines/b.json')}, sha256 {SHA[:12]})"
    assert "power 0.8 at a mean drop of 15 pts" in lines[1] and "no cell drops more than 5 pts" in lines[1]
    assert "| look | episodes | mean drop pts [95% repeated CI] | z | regression if z >= | no regression if z < " \
           "| decision |" in lines
    late = 30 - state.decisive_look.episodes
    assert f"gate: {late} more episodes were recorded after the decisive look" in text
    assert lines[-1] == "RESULT: REGRESSION (exit 1)"


def test_the_trace_clips_drop_intervals_to_the_possible_range():
    state = evaluate(_design(), _failures(10))
    row = next(line for line in describe(state).splitlines() if line.startswith(f"| {state.decisive_look.look} |"))
    drop, ci = row.split("|")[3].split("[")
    lo, hi = (float(x) for x in ci.rstrip("] ").split(","))
    assert float(drop) == pytest.approx(100.0)  # every episode failed against a perfect baseline
    lo_true, hi_true = state.decisive_look.drop_ci
    assert hi_true > 1.0 and hi == 100.0  # clipped at +100 pts
    assert lo == pytest.approx(round(100 * max(lo_true, -1.0), 1)) and lo < 100.0


def test_table_header_says_intervals_are_95_percent_repeated_cis():
    state = evaluate(_design(), [(t, "in_domain", True) for _ in range(2) for t in TASKS])
    header = table_header(state)
    assert "Intervals are 95% repeated confidence intervals" in header
    assert "stopped after 6 of 30 planned episodes; verdict **none yet (run incomplete)**" in header
    assert "`base_run`" in header


def test_sequential_summary_widens_every_interval_including_the_suite_mean():
    """Repeated CIs at an interim stop are wider than Wilson's and still contain the estimate; the suite
    mean of cells stopped at different counts gets one too."""
    design = _design()
    rows = [("t0", 3, 4), ("t1", 1, 2), ("t2", 2, 3)]
    frame = pd.DataFrame([{"task": t, "split": "in_domain", "n": n, "successes": k, "rate": k / n,
                           "ci_low": wilson_interval(k, n)[0], "ci_high": wilson_interval(k, n)[1]}
                          for t, k, n in rows])
    mean_rate = sum(k / n for _, k, n in rows) / 3
    frame.loc[len(frame)] = {"task": "suite mean", "split": "in_domain", "n": 9, "successes": 6, "rate": mean_rate,
                             "ci_low": 0.4, "ci_high": 0.8}
    out = sequential_summary(frame, design)
    assert (out["interval"] == "95% repeated CI (group-sequential)").all()
    for (_, before), (_, after) in zip(frame.iterrows(), out.iterrows()):
        assert after["ci_low"] <= after["rate"] <= after["ci_high"]
        assert after["ci_high"] - after["ci_low"] > before["ci_high"] - before["ci_low"]
    assert frame["ci_low"].iloc[0] == wilson_interval(3, 4)[0]  # the caller's frame is left as it was


def test_looks_are_numbered_in_order_at_the_designs_marks():
    design = _design()
    state = evaluate(design, [(t, "in_domain", True) for _ in range(3) for t in TASKS])
    assert [(x.look, x.episodes) for x in state.looks] == list(enumerate(design["look_episodes"][:3], start=1))


def test_an_early_stop_gets_a_wider_repeated_interval_than_the_full_plan():
    """The critical value grows the earlier the look (error spending), so the same 3/4 is less certain at 10%
    of the plan than at its end."""
    design = _design()
    early, full = repeated_wilson(3, 4, 0.1, design), repeated_wilson(3, 4, 1.0, design)
    assert early[0] < full[0] and early[1] > full[1]


def test_a_zero_detect_drop_is_refused_naming_its_flag():
    with pytest.raises(ConfigError, match="--detect-drop must be in"):
        GateConfig(Path("b.json"), detect_drop=0.0).validate()
