"""Success tables: per-task rates with Wilson intervals, the suite mean, and the OOD drop (sign and value).

Expected numbers are worked out by hand in each test (Wilson: statsmodels' proportion_confint).
"""

from __future__ import annotations

import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from vla_eval.record import EpisodeRecord
from vla_eval.tables import MEAN_ROW, markdown, records_frame, summary_frame, wide_table


def _recs(cells: dict[tuple[str, str], list[str]]) -> list[EpisodeRecord]:
    out = []
    for (task, split), terms in cells.items():
        for i, term in enumerate(terms):
            out.append(
                EpisodeRecord(
                    run_id="r",
                    suite="s",
                    task=task,
                    split=split,
                    episode_index=i,
                    init_state_id=i,
                    seed=i,
                    success=term == "success",
                    steps=10 * (i + 1),
                    termination=term,
                )
            )
    return out


S, T, P, E = "success", "timeout", "policy_error", "env_error"
RECS = _recs(
    {
        ("a", "id"): [S, S, S, T],  # 3/4
        ("b", "id"): [S, T, T, T, T, T],  # 1/6
        ("a", "ood"): [S, P, T, T],  # 1/4, one policy error
        ("b", "ood"): [S, S, E, T, T, T],  # 2/6, one env error
    }
)


def test_summary_rows_counts_rates_errors_steps():
    df = summary_frame(RECS, ["id", "ood"], ["a", "b"]).set_index(["task", "split"])
    assert list(df.index) == [("a", "id"), ("b", "id"), (MEAN_ROW, "id"), ("a", "ood"), ("b", "ood"), (MEAN_ROW, "ood")]
    r = df.loc[("a", "ood")]
    assert (r["n"], r["successes"], r["policy_errors"], r["env_errors"]) == (4, 1, 1, 0)
    assert r["rate"] == 0.25 and r["mean_steps"] == (10 + 20 + 30 + 40) / 4
    assert df.loc[("b", "ood")]["env_errors"] == 1 and df.loc[("b", "ood")]["policy_errors"] == 0
    lo, hi = proportion_confint(1, 4, alpha=0.05, method="wilson")
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((lo, hi), abs=1e-9)


def _wilson(p: float, n: float, z: float = 1.959963984540054) -> tuple[float, float]:
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5 / (1 + z * z / n)
    return centre - half, centre + half


def test_suite_mean_is_the_unweighted_task_mean_with_its_own_interval():
    df = summary_frame(RECS, ["id", "ood"], ["a", "b"]).set_index(["task", "split"])
    m = df.loc[(MEAN_ROW, "id")]
    mean = (3 / 4 + 1 / 6) / 2
    assert m["rate"] == pytest.approx(mean)  # not the pooled 4/10
    assert (m["n"], m["successes"]) == (10, 4)
    # Wilson at the mean's effective sample size T^2 / sum(1/n_t) = 4 / (1/4 + 1/6) = 9.6 episodes
    assert (m["ci_low"], m["ci_high"]) == pytest.approx(_wilson(mean, 9.6), abs=1e-9)
    assert m["ci_low"] <= m["rate"] <= m["ci_high"]
    assert df.loc[(MEAN_ROW, "ood")]["policy_errors"] == 1 and df.loc[(MEAN_ROW, "ood")]["env_errors"] == 1


def test_suite_mean_with_equal_counts_is_the_pooled_wilson_interval():
    recs = _recs({("a", "id"): [S, S, S, T], ("b", "id"): [S, T, T, T]})
    m = summary_frame(recs, ["id"], ["a", "b"]).set_index(["task", "split"]).loc[(MEAN_ROW, "id")]
    lo, hi = proportion_confint(4, 8, alpha=0.05, method="wilson")
    assert m["rate"] == 0.5 and (m["ci_low"], m["ci_high"]) == pytest.approx((lo, hi), abs=1e-12)


def test_suite_mean_with_unequal_counts_lies_inside_its_interval():
    """Issue 29: 0/1 and 8/8 printed `suite mean | 50.0 [2.0, 43.5]`; the pooled interval of 8/9 excludes 50%."""
    recs = _recs({("a", "id"): [T], ("b", "id"): [S] * 8})
    m = summary_frame(recs, ["id"], ["a", "b"]).set_index(["task", "split"]).loc[(MEAN_ROW, "id")]
    assert m["rate"] == 0.5
    assert m["ci_low"] < 0.5 < m["ci_high"]


def test_rows_outside_the_suite_are_ignored_with_a_warning(capsys):
    stray = _recs({("ghost", "id"): [T] * 9, ("a", "elsewhere"): [T] * 2})
    df = summary_frame(RECS + stray, ["id", "ood"], ["a", "b"]).set_index(["task", "split"])
    assert "ghost" not in df.index.get_level_values(0) and "elsewhere" not in df.index.get_level_values(1)
    assert df.loc[(MEAN_ROW, "id")]["rate"] == pytest.approx((3 / 4 + 1 / 6) / 2)
    assert df.loc[(MEAN_ROW, "id")]["n"] == 10
    err = capsys.readouterr().err
    assert "ignoring 11 episodes" in err and "ghost/id (9)" in err and "a/elsewhere (2)" in err


def test_zero_and_full_cells_have_exact_interval_ends():
    recs = _recs({("a", "id"): [T] * 9, ("b", "id"): [S] * 9})
    df = summary_frame(recs, ["id"], ["a", "b"]).set_index(["task", "split"])
    assert df.loc[("a", "id")]["ci_low"] == 0.0 and df.loc[("b", "id")]["ci_high"] == 1.0
    assert df.loc[("a", "id")]["rate"] - df.loc[("a", "id")]["ci_low"] >= 0  # the report's error bar


def test_wide_table_drop_is_in_domain_minus_ood_in_points():
    summary = summary_frame(RECS, ["id", "ood"], ["a", "b"])
    table = wide_table(summary, "id", ["id", "ood"])
    assert list(table.columns) == ["id %", "ood %", "ood drop vs id (pts)"]
    assert table.loc["a", "ood drop vs id (pts)"] == "+50.0"  # 75 % -> 25 %: a 50-point drop
    assert table.loc["b", "ood drop vs id (pts)"] == "-16.7"  # 16.7 % -> 33.3 %: OOD is better
    assert (
        table.loc[MEAN_ROW, "ood drop vs id (pts)"]
        == f"{100 * ((3 / 4 + 1 / 6) / 2 - (1 / 4 + 2 / 6) / 2):+.1f}"
        == "+16.7"
    )
    lo, hi = proportion_confint(3, 4, alpha=0.05, method="wilson")
    assert table.loc["a", "id %"] == f"75.0 [{100 * lo:.1f}, {100 * hi:.1f}] (n=4)"


def test_missing_cells_and_splits():
    recs = _recs({("a", "id"): [S, T], ("b", "ood"): [S]})
    table = wide_table(summary_frame(recs, ["id", "ood", "never"], ["a", "b"]), "id", ["id", "ood", "never"])
    assert table.loc["b", "id %"] == "" and table.loc["a", "ood %"] == ""
    assert table.loc["b", "ood drop vs id (pts)"] == ""  # no in-domain cell: no drop
    assert table.loc["a", "ood drop vs id (pts)"] == ""  # no OOD cell: no drop
    assert not any(c.startswith("never") for c in table.columns)


def test_defaults_sort_tasks_and_splits():
    recs = _recs({("z", "s2"): [S], ("a", "s1"): [T]})
    df = summary_frame(recs)
    assert list(zip(df["task"], df["split"])) == [("a", "s1"), (MEAN_ROW, "s1"), ("z", "s2"), (MEAN_ROW, "s2")]


def test_empty_inputs():
    assert list(summary_frame([]).columns)[:4] == ["task", "split", "n", "successes"]
    assert wide_table(pd.DataFrame(), "id", ["id"]).empty
    assert markdown(pd.DataFrame()) == "(no finished episodes)"
    assert records_frame([]).empty


def test_markdown_layout():
    table = wide_table(summary_frame(_recs({("a", "id"): [S]}), ["id"], ["a"]), "id", ["id"])
    assert markdown(table).splitlines() == [
        "| task | id % |",
        "|---|---|",
        "| a | 100.0 [20.7, 100.0] (n=1) |",
        "| suite mean | 100.0 [20.7, 100.0] (n=1) |",
    ]
