"""baseline save / check: exit codes 0, 1, 2; power warning; sequential mode."""

import json

import pytest

from runfixtures import make_run, suite_dict
from vla_eval.cli.main import main
from vla_eval.results.check import check_run, load_baseline

TASKS = ("t1", "t2", "t3")


def _run(root, name, rates, n=50, **kw):
    return make_run(root, name, {(t, "in_domain"): (k, n) for t, k in zip(TASKS, rates)},
                    suite=suite_dict(tasks=TASKS, ood=(), episodes=n), **kw)


@pytest.fixture
def baseline(runs_root, tmp_path):
    run = _run(runs_root, "base", (45, 44, 46))
    path = tmp_path / "baseline.json"
    assert main(["baseline", "save", str(run), "-o", str(path)]) == 0
    return path


def test_baseline_file_is_small_and_diffable(baseline):
    data = json.loads(baseline.read_text())
    assert data["format"] == "vla-eval-baseline" and data["run_id"] == "base"
    assert data["counts"]["in_domain"]["t1"] == {"episodes": 50, "successes": 45}
    assert data["policy"] == {"name": "vla_r1", "adapter": "vla_r1", "checkpoint": "ckpt-aaaa1111"}
    assert data["protocol"]["max_steps"] == 220 and data["created_at"]
    assert baseline.read_text().count("\n") > 20 and len(baseline.read_text()) < 4000  # one fact per line


def test_non_regression_exits_0(runs_root, baseline, capsys):
    new = _run(runs_root, "new", (44, 45, 44), order_seed=3)
    assert main(["check", str(new), "--baseline", str(baseline)]) == 0
    out = capsys.readouterr().out
    assert "no significant regression" in out and "exit 0" in out


def test_synthetic_regression_exits_1_with_report(runs_root, baseline, capsys):
    new = _run(runs_root, "new", (44, 25, 45), order_seed=3)
    assert main(["check", str(new), "--baseline", str(baseline), "--alpha", "0.05", "--max-drop", "0.05"]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "t2/in_domain" in out and "exit 1" in out


def test_drop_within_allowance_is_not_a_regression(runs_root, baseline):
    # t2 drops 14 points: significant against max-drop 0, not against an allowance of 0.3
    new = _run(runs_root, "new", (45, 37, 46))
    assert main(["check", str(new), "--baseline", str(baseline), "--max-drop", "0.3"]) == 0


def test_holm_family_includes_overall(runs_root, baseline):
    new = _run(runs_root, "new", (40, 39, 41))
    res = check_run(new, load_baseline(baseline), max_drop=0.0)
    assert [r.task for r in res.rows][-1] == "(all)"
    from statsmodels.stats.multitest import multipletests

    assert [r.p_adjusted for r in res.rows] == pytest.approx(list(multipletests([r.p_value for r in res.rows], method="holm")[1]))


def test_bad_input_exits_2(runs_root, baseline, tmp_path, capsys):
    new = _run(runs_root, "new", (45, 44, 46))
    assert main(["check", str(new), "--baseline", str(tmp_path / "missing.json")]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["check", str(new), "--baseline", str(bad)]) == 2
    bad.write_text(json.dumps({"format": "something-else"}))
    assert main(["check", str(new), "--baseline", str(bad)]) == 2
    data = json.loads(baseline.read_text())
    data["counts"]["in_domain"]["t1"]["successes"] = 99
    bad.write_text(json.dumps(data))
    assert main(["check", str(new), "--baseline", str(bad)]) == 2
    assert main(["check", str(tmp_path / "no-run"), "--baseline", str(baseline)]) == 2
    err = capsys.readouterr().err
    assert "not valid JSON" in err and "successes" in err


def test_protocol_mismatch_exits_2_unless_allowed(runs_root, baseline, capsys):
    other = make_run(runs_root, "other", {(t, "in_domain"): (45, 50) for t in TASKS},
                     suite=suite_dict(tasks=TASKS, ood=(), max_steps=400))
    assert main(["check", str(other), "--baseline", str(baseline)]) == 2
    assert "max_steps: 220 != 400" in capsys.readouterr().err
    assert main(["check", str(other), "--baseline", str(baseline), "--allow-protocol-mismatch"]) == 0


def test_warns_when_run_is_too_small(runs_root, tmp_path, capsys):
    base = _run(runs_root, "base_small", (9, 9, 9), n=10)
    path = tmp_path / "b.json"
    main(["baseline", "save", str(base), "-o", str(path)])
    capsys.readouterr()
    new = _run(runs_root, "new_small", (9, 8, 9), n=10)
    assert main(["check", str(new), "--baseline", str(path)]) == 0
    out = capsys.readouterr().out
    assert "too small to detect" in out and "needs >=" in out
    # a big run against a big baseline does not warn
    big_base = _run(runs_root, "bb", (360, 360, 360), n=400)
    main(["baseline", "save", str(big_base), "-o", str(path)])
    big = _run(runs_root, "bn", (360, 359, 361), n=400)
    capsys.readouterr()
    assert main(["check", str(big), "--baseline", str(path), "--detect-drop", "0.1"]) == 0
    assert "too small" not in capsys.readouterr().out


def test_sequential_check(runs_root, baseline, capsys):
    bad = _run(runs_root, "seq_bad", (44, 15, 45), order_seed=5)
    assert main(["check", str(bad), "--baseline", str(baseline), "--sequential"]) == 1
    out = capsys.readouterr().out
    assert "regression" in out and "saved" in out
    good = _run(runs_root, "seq_good", (46, 45, 47), order_seed=6)
    res = check_run(good, load_baseline(baseline), sequential=True)
    assert res.exit_code == 0
    assert res.episodes_used < res.episodes_total  # stopped early on clearly fine cells
    assert all(r.seq_decision.startswith("no_regression") for r in res.rows)


@pytest.mark.parametrize("kw,msg", [
    (dict(alpha=0.0), r"--alpha must be in \(0, 1\), got 0.0"), (dict(alpha=1.0), "--alpha"),
    (dict(max_drop=-0.1), r"--max-drop must be in \[0, 1\), got -0.1"), (dict(max_drop=1.0), "--max-drop"),
    (dict(detect_drop=0.0), r"--detect-drop must be in \(0, 1\), got 0.0"), (dict(detect_drop=1.0), "--detect-drop"),
    (dict(power=0.0), r"--power must be in \(0, 1\), got 0.0"), (dict(power=1.0), "--power"),
    (dict(beta=0.0), r"--beta must be in \(0, 1\) with alpha \+ beta < 1, got 0.0"), (dict(beta=0.95), "--beta"),
])
def test_bad_parameters_name_the_option(runs_root, baseline, kw, msg):
    from vla_eval.errors import ConfigError

    new = _run(runs_root, "new", (45, 44, 46))
    with pytest.raises(ConfigError, match=msg):
        check_run(new, load_baseline(baseline), **kw)


def test_zero_max_drop_is_allowed(runs_root, baseline):
    new = _run(runs_root, "new", (45, 44, 46))
    assert check_run(new, load_baseline(baseline), max_drop=0.0).exit_code == 0


def test_check_text_and_frame(runs_root, baseline):
    new = _run(runs_root, "new", (44, 25, 45), order_seed=3, policy="newpol", checkpoint=None)
    res = check_run(new, load_baseline(baseline), max_drop=0.05)
    lines = res.text().splitlines()
    assert lines[0] == "run      new  policy newpol  checkpoint -"
    assert lines[1] == "baseline base  policy vla_r1  checkpoint ckpt-aaaa1111  (2025-06-01T12:00:00+00:00)"
    assert lines[2] == "H0: p_new >= p_base - 0.05 per cell; alpha 0.05; fixed sample (exact one-sided test, Holm)"
    t2 = [l for l in lines if l.startswith("| t2")][0]
    cells = [c.strip() for c in t2.strip("|").split("|")]
    assert cells[2] == "88.0 (44/50)" and cells[3].startswith("50.0 [") and cells[3].endswith("(25/50)") and cells[4] == "+38.0"
    assert cells[-1] == "REGRESSION"
    flagged = ", ".join(f"{r.task}/{r.split}" for r in res.rows if r.regression)
    assert flagged.startswith("t2/in_domain") and "t1/" not in flagged and "t3/" not in flagged
    assert lines[-1] == f"RESULT: significant regression beyond the allowed drop of 5 pts in: {flagged} (exit 1)"
    df = res.frame()
    assert set(df["task"]) == {"t1", "t2", "t3", "(all)"}
    row = df[df["task"] == "t2"].iloc[0]
    assert row["rate_base"] == 0.88 and row["rate_new"] == 0.5 and bool(row["regression"])


def test_cells_missing_from_the_run_are_listed(runs_root, baseline, capsys):
    partial = make_run(runs_root, "partial", {("t1", "in_domain"): (45, 50), ("t2", "in_domain"): (44, 50)},
                       suite=suite_dict(tasks=TASKS, ood=(), episodes=50))
    res = check_run(partial, load_baseline(baseline))
    assert res.missing == [("t3", "in_domain")]
    assert "not checked (in the baseline, no episodes in the run): t3/in_domain" in res.text()


def test_sequential_skips_hopeless_cells_and_marks_incomplete_runs(runs_root, tmp_path):
    base = _run(runs_root, "low", (3, 45, 45), n=50)
    path = tmp_path / "low.json"
    assert main(["baseline", "save", str(base), "-o", str(path)]) == 0
    short = _run(runs_root, "short", (2, 4, 5), n=5)
    res = check_run(short, load_baseline(path), sequential=True)
    by = {r.task: r for r in res.rows}
    assert by["t1"].seq_decision == "skipped (baseline too low)" and by["t1"].seq_used is None  # 6% - 5 - 10 pts < 0
    assert by["t2"].seq_decision.startswith("undecided (run incomplete)") or by["t2"].seq_used <= 5
    assert res.episodes_total == 15 and res.episodes_used <= res.episodes_total
    text = res.text()
    assert "sequential (truncated SPRT per cell, Bonferroni)" in text and "SPRT" in text


def test_baseline_from_empty_run_is_refused(runs_root, tmp_path):
    from vla_eval.errors import ConfigError
    from vla_eval.results.check import baseline_from_run

    empty = make_run(runs_root, "empty", {}, suite=suite_dict(tasks=TASKS, ood=()))
    with pytest.raises(ConfigError, match="no finished episodes; nothing to save as a baseline"):
        baseline_from_run(empty)


def test_baseline_file_layout(baseline):
    text = baseline.read_text()
    data = json.loads(text)
    assert data["splits"] == ["in_domain"] and text.endswith("}\n")
    assert text == json.dumps(data, indent=2, sort_keys=True) + "\n"  # sorted keys, 2-space indent: stable diffs


def test_check_table_header_and_protocol_warning(runs_root, baseline):
    other = make_run(runs_root, "other", {(t, "in_domain"): (45, 50) for t in TASKS},
                     suite=suite_dict(tasks=TASKS, ood=(), max_steps=400))
    from vla_eval.errors import ConfigError

    with pytest.raises(ConfigError, match="different protocols"):
        check_run(other, load_baseline(baseline))  # refused unless asked
    res = check_run(other, load_baseline(baseline), allow_protocol_mismatch=True)
    lines = res.text().splitlines()
    assert lines[3] == "WARNING: protocols differ (checked anyway, --allow-protocol-mismatch):"
    assert lines[4].startswith("  - protocol_hash: ") and lines[5] == "  - max_steps: 220 != 400"
    header = [l for l in lines if l.startswith("| task")][0]
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "task", "split", "baseline %", "run % [95% CI]", "drop pts", "p", "p adj (Holm)", "power@-15pts", "result"]
    seq = check_run(other, load_baseline(baseline), allow_protocol_mismatch=True, sequential=True).text().splitlines()
    header = [l for l in seq if l.startswith("| task")][0]
    assert [c.strip() for c in header.strip("|").split("|")][-3:] == ["SPRT", "episodes used", "result"]


def test_sequential_on_a_perfect_baseline_and_truncation(runs_root, tmp_path):
    base = _run(runs_root, "perfect", (20, 20, 20), n=20)
    path = tmp_path / "perfect.json"
    assert main(["baseline", "save", str(base), "-o", str(path)]) == 0
    new = _run(runs_root, "new_perfect", (4, 4, 4), n=4)
    res = check_run(new, load_baseline(path), sequential=True, max_drop=0.05, detect_drop=0.1)
    from vla_eval.results.sequential import SequentialTest

    # p_base = 1 is shrunk by half an episode: 1 - 0.5 / 20 = 0.975, p0 = 0.925; four successes do not settle it
    ref = SequentialTest(0.975 - 0.05, 0.1, 0.05 / 3, 0.2, max_n=4)
    for _ in range(4):
        ref.update(True)
    for r in res.rows:
        assert r.seq_used == 4 == ref.n and r.seq_decision == ref.decision + (" (truncated)" if ref.truncated else "")
    assert ref.truncated and res.rows[0].seq_decision == "no_regression (truncated)"


def test_baseline_save_leaves_out_rows_of_tasks_the_suite_does_not_plan(tmp_path, capsys):
    """Issue 29 item 3: stray rows in the store must not become baseline cells later runs never plan."""
    from runfixtures import make_run

    from vla_eval.record import EpisodeRecord
    from vla_eval.results.check import baseline_from_run
    from vla_eval.store import RunStore

    run = make_run(tmp_path, "a", {("pick_cube", "in_domain"): (3, 4), ("open_drawer", "in_domain"): (1, 4)})
    with RunStore(run) as store:
        for i in range(9):
            store.add(EpisodeRecord(run_id="a", suite="tabletop_basic", task="ghost", split="in_domain", episode_index=i,
                                    init_state_id=i, seed=i, success=False, steps=3, termination="timeout"))
    saved = baseline_from_run(run)
    assert set(saved["counts"]["in_domain"]) == {"pick_cube", "open_drawer"}
    assert saved["counts"]["in_domain"]["pick_cube"] == {"episodes": 4, "successes": 3}
    assert "ghost" in capsys.readouterr().err
