"""vla-eval compare: exact tests, Holm, verdicts, protocol refusal."""

import json

import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from runfixtures import make_run, suite_dict
from vla_eval.cli.main import main
from vla_eval.results.compare import compare_runs


def _two(root):
    a = make_run(root, "a", {("t1", "in_domain"): (45, 50), ("t2", "in_domain"): (40, 50), ("t3", "in_domain"): (30, 50),
                             ("t1", "lighting"): (30, 50), ("t2", "lighting"): (30, 50), ("t3", "lighting"): (20, 50)})
    b = make_run(root, "b", {("t1", "in_domain"): (20, 50), ("t2", "in_domain"): (41, 50), ("t3", "in_domain"): (33, 50),
                             ("t1", "lighting"): (28, 50), ("t2", "lighting"): (33, 50), ("t3", "lighting"): (21, 50)},
                 policy="openvla", checkpoint="ckpt-b", order_seed=1)
    return a, b


def test_compare_rows_against_scipy_and_holm(runs_root):
    a, b = _two(runs_root)
    res = compare_runs(a, b, alpha=0.05)
    df = res.frame()
    tasks = df[(df["scope"] == "task") & (df["split"] == "in_domain")].set_index("task")
    # per-task p-values are scipy's Boschloo test on the same 2x2 tables
    for t, (ka, kb) in {"t1": (45, 20), "t2": (40, 41), "t3": (30, 33)}.items():
        ref = stats.boschloo_exact([[ka, kb], [50 - ka, 50 - kb]]).pvalue
        assert tasks.loc[t, "p_value"] == pytest.approx(ref, rel=1e-6)
    ref_adj = multipletests(tasks["p_value"].tolist(), method="holm")[1]
    assert tasks["p_adjusted"].tolist() == pytest.approx(list(ref_adj))
    assert tasks.loc["t1", "verdict"] == "worse"
    assert tasks.loc["t2", "verdict"] == "no significant difference"
    assert tasks.loc["t1", "diff"] == pytest.approx(-0.5)
    pooled = df[(df["scope"] == "split") & (df["split"] == "in_domain")].iloc[0]
    assert (pooled["k_a"], pooled["n_a"], pooled["k_b"], pooled["n_b"]) == (115, 150, 94, 150)
    overall = df[df["scope"] == "overall"].iloc[0]
    assert overall["n_a"] == 300 and overall["k_b"] == 176
    assert overall["test"] == "fisher"  # 300 per arm: above the Boschloo limit
    assert overall["p_value"] == pytest.approx(stats.fisher_exact([[195, 176], [105, 124]]).pvalue)
    assert tasks.loc["t1", "ci_a_low"] < 0.9 < tasks.loc["t1", "ci_a_high"]


def test_compare_cli_prints_table_and_json(runs_root, tmp_path, capsys):
    a, b = _two(runs_root)
    out = tmp_path / "cmp.json"
    assert main(["compare", str(a), str(b), "--alpha", "0.05", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "worse" in text and "t1" in text and "Holm" in text
    rows = json.loads(out.read_text())
    assert any(r["verdict"] == "worse" for r in rows)


def test_compare_refuses_protocol_mismatch(runs_root, capsys):
    a = make_run(runs_root, "a", {("t1", "in_domain"): (9, 10)}, suite=suite_dict(tasks=("t1",), ood=()))
    b = make_run(runs_root, "b", {("t1", "in_domain"): (9, 10)},
                 suite=suite_dict(tasks=("t1",), ood=(), max_steps=300, settle_steps=0, image_size=(224, 224), render_quality="fast"))
    assert main(["compare", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    for key in ("max_steps", "settle_steps", "image_size", "render_quality", "protocol_hash"):
        assert key in err
    assert main(["compare", str(a), str(b), "--allow-protocol-mismatch"]) == 0
    out = capsys.readouterr().out
    assert "protocols differ" in out and "image_size: [128, 128] != [224, 224]" in out


def test_episode_count_and_seed_do_not_change_the_protocol(runs_root, capsys):
    a = make_run(runs_root, "a", {("t1", "in_domain"): (45, 50)}, suite=suite_dict(tasks=("t1",), ood=(), episodes=50))
    b = make_run(runs_root, "b", {("t1", "in_domain"): (18, 20)}, suite=suite_dict(tasks=("t1",), ood=(), episodes=20, seed=7))
    assert main(["compare", str(a), str(b)]) == 0
    assert "same protocol" in capsys.readouterr().out


def test_compare_bad_input(runs_root, tmp_path, capsys):
    a, _ = _two(runs_root)
    assert main(["compare", str(a), str(tmp_path / "missing")]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["compare", str(a), str(a), "--alpha", "1.5"])
    assert exc.value.code == 2


# ---------------------------------------------------------------- compare_frames on hand-made frames


def _frame(cells):
    import pandas as pd

    rows = [{"task": t, "split": s, "success": i < k} for (t, s), (k, n) in cells.items() for i in range(n)]
    return pd.DataFrame(rows)


def test_compare_frames_rows_order_and_only_in():
    from vla_eval.results.compare import compare_frames

    a = _frame({("t1", "id"): (9, 10), ("t2", "id"): (2, 10), ("t1", "ood"): (5, 10), ("t3", "id"): (1, 4)})
    b = _frame({("t1", "id"): (1, 10), ("t2", "id"): (9, 10), ("t1", "ood"): (5, 10), ("t4", "ood"): (1, 4)})
    rows, only_a, only_b = compare_frames(a, b, alpha=0.05, test="fisher", splits=["ood", "id"])
    assert only_a == [("t3", "id")] and only_b == [("t4", "ood")]
    assert [(r.scope, r.task, r.split) for r in rows] == [
        ("task", "t1", "ood"), ("split", "(all)", "ood"), ("task", "t1", "id"), ("task", "t2", "id"), ("split", "(all)", "id"),
        ("overall", "(all)", "(all)")]
    by = {(r.scope, r.task, r.split): r for r in rows}
    t1 = by[("task", "t1", "id")]
    assert t1.verdict == "worse" and t1.diff == pytest.approx(-0.8) and t1.test == "fisher"
    assert t1.p_value == pytest.approx(stats.fisher_exact([[9, 1], [1, 9]]).pvalue)
    t2 = by[("task", "t2", "id")]
    assert t2.verdict == "better" and t2.diff == pytest.approx(0.7)
    p = [t1.p_value, t2.p_value]
    assert [t1.p_adjusted, t2.p_adjusted] == pytest.approx(list(multipletests(p, method="holm")[1]))
    same = by[("task", "t1", "ood")]
    assert same.p_value == 1.0 and same.verdict == "no significant difference"
    pooled = by[("split", "(all)", "id")]
    assert (pooled.k_a, pooled.n_a, pooled.k_b, pooled.n_b) == (11, 20, 10, 20) and pooled.p_adjusted == pooled.p_value
    overall = by[("overall", "(all)", "(all)")]
    assert (overall.k_a, overall.n_a, overall.k_b, overall.n_b) == (16, 30, 15, 30)
    assert overall.p_value == pytest.approx(stats.fisher_exact([[16, 15], [14, 15]]).pvalue)


def test_single_split_pooled_row_is_the_overall_row():
    from vla_eval.results.compare import compare_frames

    rows, _, _ = compare_frames(_frame({("t1", "id"): (3, 5), ("t2", "id"): (4, 5)}), _frame({("t1", "id"): (3, 5), ("t2", "id"): (4, 5)}))
    assert [r.scope for r in rows] == ["task", "task", "overall"] and rows[-1].split == "id"
    assert rows[-1].test == "boschloo"


def test_verdict_needs_p_below_alpha():
    from vla_eval.results.compare import _verdict

    assert _verdict(-0.1, 0.049, 0.05) == "worse" and _verdict(0.1, 0.049, 0.05) == "better"
    assert _verdict(-0.1, 0.05, 0.05) == "no significant difference"
    assert _verdict(-0.1, float("nan"), 0.05) == "no significant difference"


def test_counts_and_format_table():
    from vla_eval.results.compare import counts, format_table

    c = counts(_frame({("b", "s"): (1, 3), ("a", "s"): (2, 2)}))
    assert c.to_dict("records") == [{"task": "b", "split": "s", "k": 1, "n": 3}, {"task": "a", "split": "s", "k": 2, "n": 2}]
    assert counts(_frame({})).columns.tolist() == ["task", "split", "k", "n"]
    assert format_table(["x", "long"], [["abc", "1"]]).splitlines() == ["| x   | long |", "|-----|------|", "| abc | 1    |"]
    assert format_table(["x", "y"], []).splitlines() == ["| x | y |", "|---|---|"]


def test_compare_text_lines(runs_root):
    a = make_run(runs_root, "a", {("t1", "in_domain"): (9, 10)}, suite=suite_dict(tasks=("t1",), ood=(), episodes=10), checkpoint=None)
    b = make_run(runs_root, "b", {("t1", "in_domain"): (2, 10)}, suite=suite_dict(tasks=("t1",), ood=(), episodes=10, seed=3),
                 policy="other", checkpoint="ck-b")
    res = compare_runs(a, b, alpha=0.1)
    lines = res.text().splitlines()
    assert lines[0].startswith("A: a  policy vla_r1  checkpoint -  (") and lines[1].startswith("B: b  policy other  checkpoint ck-b  (")
    assert lines[2] == "suite tabletop_basic; verdict = B relative to A at alpha = 0.1; per-task p-values Holm-adjusted within each split"
    assert lines[3] == "note: suite specs differ only in episodes_per_task / seed / description (same protocol)"
    p = stats.boschloo_exact([[9, 2], [1, 8]]).pvalue
    row = [l for l in lines if l.startswith("| overall")][0]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3] == "90.0 [59.6, 98.2] (9/10)" and cells[4] == "20.0 [5.7, 51.0] (2/10)" and cells[5] == "-70.0"
    assert cells[6] == (f"{p:.2g}" if p < 0.001 else f"{p:.3f}") and cells[8] == "boschloo" and cells[9] == "worse"
    frame = res.frame().iloc[0]
    lo, hi = stats.binomtest(9, 10).proportion_ci(method="wilson")
    assert (frame["ci_a_low"], frame["ci_a_high"]) == pytest.approx((lo, hi))
    assert frame["rate_b"] == 0.2 and frame["k_b"] == 2


def test_compare_refuses_empty_run_and_disjoint_cells(runs_root, capsys):
    from vla_eval.errors import ConfigError

    a = make_run(runs_root, "a", {("t1", "in_domain"): (1, 2)}, suite=suite_dict(tasks=("t1", "t2"), ood=()))
    b = make_run(runs_root, "b", {("t2", "in_domain"): (1, 2)}, suite=suite_dict(tasks=("t1", "t2"), ood=()))
    with pytest.raises(ConfigError, match="share no"):
        compare_runs(a, b)
    empty = make_run(runs_root, "e", {}, suite=suite_dict(tasks=("t1", "t2"), ood=()))
    with pytest.raises(ConfigError, match="run has no finished episodes"):
        compare_runs(a, empty)
    with pytest.raises(ConfigError, match=r"--alpha must be in \(0, 1\), got 0"):
        compare_runs(a, b, alpha=0)


def test_compare_text_header_and_only_in_lines(runs_root):
    a = make_run(runs_root, "a", {("t1", "in_domain"): (3, 4), ("t2", "in_domain"): (1, 4)}, suite=suite_dict(tasks=("t1", "t2", "t3"), ood=()))
    b = make_run(runs_root, "b", {("t1", "in_domain"): (2, 4), ("t3", "in_domain"): (1, 4)}, suite=suite_dict(tasks=("t1", "t2", "t3"), ood=()))
    res = compare_runs(a, b)
    lines = res.text().splitlines()
    assert not any(l.startswith("note:") for l in lines)  # identical suite specs: no note
    header = [l for l in lines if l.startswith("| scope")][0]
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "scope", "task", "split", "A % [95% CI]", "B % [95% CI]", "B-A pts", "p", "p adj", "test", "verdict"]
    assert "only in A (not compared): t2/in_domain" in lines and "only in B (not compared): t3/in_domain" in lines
    from vla_eval.errors import ConfigError

    with pytest.raises(ConfigError, match=r"--alpha must be in \(0, 1\), got 1.5"):
        compare_runs(a, b, alpha=1.5)
    c = make_run(runs_root, "c", {("t3", "in_domain"): (1, 4)}, suite=suite_dict(tasks=("t1", "t2", "t3"), ood=()))
    with pytest.raises(ConfigError, match="^the two runs share no"):
        compare_runs(a, c)
