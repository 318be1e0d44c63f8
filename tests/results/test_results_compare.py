"""vla-eval compare: exact tests, Holm, verdicts, protocol refusal."""

import json

import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from runfixtures import make_run, suite_dict
from vla_eval.cli import main
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
