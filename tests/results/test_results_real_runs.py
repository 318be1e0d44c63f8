"""baseline save / check / compare / report / tables on folders written by the real runner.

The expected counts come from how the fixture runs were built (see ``conftest.py``) and
are cross-checked against the raw SQLite rows, never against the module under test.
"""

from __future__ import annotations

import html
import json
import re
import sqlite3

import pandas as pd
import pytest

from vla_eval.provenance import package_versions

from realruns import EVIL, LANGUAGE_SPLIT
from runfixtures import make_run, suite_dict
from vla_eval.cli.main import main
from vla_eval.store import DB_NAME

FLAKY = "_faulty:ScriptedWithErrors"  # the policy name a run records for a module:Class policy
TASKS = ("pick_place_cube", "push_block", "open_drawer")
SPLITS = ("in_domain", "ood_layout_light", LANGUAGE_SPLIT)
pytestmark = pytest.mark.slow  # the shared session fixture runs the real runner (~20 s once)


def _raw(run_dir) -> pd.DataFrame:
    """Episode rows straight from SQLite (independent of the results package)."""
    with sqlite3.connect(run_dir / DB_NAME) as conn:
        return pd.read_sql("SELECT task, split, episode_index, success, steps, termination FROM episodes", conn)


def _flaky_successes(task: str, split: str) -> int:
    """By construction: episode 0 always errors; 'move the' paraphrases (pick, push) error too."""
    if split == LANGUAGE_SPLIT and task in ("pick_place_cube", "push_block"):
        return 0
    return 1


# ---------------------------------------------------------------- the runs are what the fixture says


def test_fixture_runs_have_the_designed_outcomes(real_runs):
    scripted, flaky, noop, env = (_raw(p) for p in (real_runs.scripted, real_runs.flaky, real_runs.noop, real_runs.env_faulty))
    assert len(scripted) == len(flaky) == len(noop) == len(env) == 3 * 3 * 2
    assert scripted["success"].all() and (scripted["termination"] == "success").all()
    assert (noop["termination"] == "timeout").all() and (noop["steps"] == real_runs.max_steps).all()
    errored = flaky[flaky["termination"] == "policy_error"]
    assert len(errored) == 9 + 2 and not errored["success"].any()  # 9 episode-0s + 2 paraphrased episode-1s
    assert ((flaky["termination"] == "success") == (flaky["success"] == 1)).all()
    env_err = env[env["termination"] == "env_error"]
    assert sorted(env_err["split"]) == sorted(SPLITS) and set(env_err["task"]) == {"pick_place_cube"}
    assert set(env_err["episode_index"]) == {1} and env["success"].sum() == 18 - 3


# ---------------------------------------------------------------- baseline save + check


@pytest.fixture(scope="module")
def baseline(real_runs, tmp_path_factory):
    path = tmp_path_factory.mktemp("baseline") / "baseline.json"
    assert main(["baseline", "save", str(real_runs.scripted), "-o", str(path)]) == 0
    return path


def test_baseline_of_a_real_run(baseline, real_runs):
    data = json.loads(baseline.read_text())
    assert data["suite"] == "tabletop_basic" and data["run_id"] == "scripted"
    assert data["policy"] == {"name": "scripted", "adapter": "scripted", "checkpoint": None}
    assert data["splits"] == list(SPLITS)
    assert data["counts"] == {s: {t: {"episodes": 2, "successes": 2} for t in sorted(TASKS)} for s in SPLITS}
    assert data["protocol"]["max_steps"] == 200 and data["protocol"]["backend"] == "tabletop"


def _check_rows(run_dir, baseline, tmp_path, *extra):
    out = tmp_path / "rows.json"
    rc = main(["check", str(run_dir), "--baseline", str(baseline), "--json", str(out), *extra])
    rows = {(r["task"], r["split"]): r for r in json.loads(out.read_text())}
    return rc, rows


def test_check_same_policy_passes(real_runs, baseline, tmp_path, capsys):
    rc, rows = _check_rows(real_runs.scripted, baseline, tmp_path)
    assert rc == 0 and "no significant regression" in capsys.readouterr().out
    assert rows[("(all)", "(all)")]["k_new"] == 18 and rows[("(all)", "(all)")]["n_new"] == 18


def test_check_counts_policy_errors_as_failures(real_runs, baseline, tmp_path, capsys):
    rc, _ = _check_rows(real_runs.flaky, baseline, tmp_path)
    assert rc == 4  # 11 of 18 episodes errored: above the default --max-error-rate, the run is refused as broken
    capsys.readouterr()
    rc, rows = _check_rows(real_runs.flaky, baseline, tmp_path, "--max-error-rate", "1")
    raw = _raw(real_runs.flaky)
    for task in TASKS:
        for split in SPLITS:
            r = rows[(task, split)]
            cell = raw[(raw["task"] == task) & (raw["split"] == split)]
            assert (r["n_new"], r["k_new"]) == (2, _flaky_successes(task, split)) == (len(cell), int(cell["success"].sum()))
    assert (rows[("(all)", "(all)")]["k_new"], rows[("(all)", "(all)")]["n_new"]) == (7, 18)
    assert rc == 1  # 7/18 against 18/18 is a regression, only if the 11 errors count as episodes
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "exit 1" in out


def test_check_counts_timeouts_and_env_errors_as_failures(real_runs, baseline, tmp_path, capsys):
    rc, rows = _check_rows(real_runs.noop, baseline, tmp_path)
    assert rc == 1 and (rows[("(all)", "(all)")]["k_new"], rows[("(all)", "(all)")]["n_new"]) == (0, 18)
    rc, rows = _check_rows(real_runs.env_faulty, baseline, tmp_path)
    assert rc == 2 and "backend" in capsys.readouterr().err  # another backend: refused by default
    rc, rows = _check_rows(real_runs.env_faulty, baseline, tmp_path, "--allow-protocol-mismatch", "--max-drop", "0",
                           "--max-error-rate", "1")
    for split in SPLITS:
        assert (rows[("pick_place_cube", split)]["k_new"], rows[("pick_place_cube", split)]["n_new"]) == (1, 2)
        assert (rows[("push_block", split)]["k_new"], rows[("push_block", split)]["n_new"]) == (2, 2)
    assert (rows[("(all)", "(all)")]["k_new"], rows[("(all)", "(all)")]["n_new"]) == (15, 18)


def test_sequential_check_counts_errored_episodes(real_runs, baseline, tmp_path):
    rc, rows = _check_rows(real_runs.flaky, baseline, tmp_path, "--sequential")
    assert all(r["n_new"] == 2 for r in rows.values())
    assert sum(r["k_new"] for r in rows.values()) == 7


# ---------------------------------------------------------------- compare


def _compare_rows(a, b, tmp_path, *extra):
    out = tmp_path / "cmp.json"
    rc = main(["compare", str(a), str(b), "--json", str(out), *extra])
    return rc, json.loads(out.read_text())


def test_compare_counts_errors_as_failures_and_says_worse(real_runs, tmp_path, capsys):
    rc, rows = _compare_rows(real_runs.scripted, real_runs.flaky, tmp_path)
    assert rc == 0
    by = {(r["scope"], r["task"], r["split"]): r for r in rows}
    for task in TASKS:
        for split in SPLITS:
            r = by[("task", task, split)]
            assert (r["k_a"], r["n_a"], r["k_b"], r["n_b"]) == (2, 2, _flaky_successes(task, split), 2)
    overall = by[("overall", "(all)", "(all)")]
    assert (overall["k_a"], overall["n_a"], overall["k_b"], overall["n_b"]) == (18, 18, 7, 18)
    from scipy.stats import boschloo_exact

    assert overall["p_value"] == pytest.approx(boschloo_exact([[18, 7], [0, 11]]).pvalue, rel=1e-5)
    assert overall["verdict"] == "worse" and overall["diff"] == pytest.approx(7 / 18 - 1)
    lang = by[("split", "(all)", LANGUAGE_SPLIT)]
    assert (lang["k_b"], lang["n_b"]) == (1, 6)
    assert "worse" in capsys.readouterr().out


def test_compare_with_env_errors(real_runs, tmp_path):
    rc, rows = _compare_rows(real_runs.scripted, real_runs.env_faulty, tmp_path, "--allow-protocol-mismatch")
    assert rc == 0
    overall = [r for r in rows if r["scope"] == "overall"][0]
    assert (overall["k_b"], overall["n_b"]) == (15, 18)


def test_compare_noop_is_worse_everywhere_pooled(real_runs, tmp_path):
    rc, rows = _compare_rows(real_runs.scripted, real_runs.noop, tmp_path)
    pooled = [r for r in rows if r["scope"] in ("split", "overall")]
    assert rc == 0 and all(r["verdict"] == "worse" and r["k_b"] == 0 for r in pooled)


# ---------------------------------------------------------------- the run's own table: drop value and sign


def test_run_table_drop_value_and_sign(real_runs):
    table = pd.read_csv(real_runs.flaky / "table.csv", index_col="task", dtype=str)
    drop = f"{LANGUAGE_SPLIT} drop vs in_domain (pts)"
    # in-domain 1/2 per task; paraphrase split 0/2, 0/2, 1/2: a drop is positive = worse out of domain
    assert table.loc["pick_place_cube", drop] == "+50.0"
    assert table.loc["push_block", drop] == "+50.0"
    assert table.loc["open_drawer", drop] == "+0.0"
    assert table.loc["suite mean", drop] == f"{100 * (0.5 - (0 + 0 + 0.5) / 3):+.1f}" == "+33.3"
    assert table.loc["suite mean", f"{LANGUAGE_SPLIT} %"].startswith("16.7 [")
    assert table.loc["pick_place_cube", "ood_layout_light drop vs in_domain (pts)"] == "+0.0"
    md = (real_runs.flaky / "table.md").read_text()
    assert "| pick_place_cube | 50.0 [9.5, 90.5] (n=2) |" in md  # Wilson 95% for 1/2, by hand: 0.5 ± ...
    summary = pd.read_csv(real_runs.flaky / "summary.csv")
    mean = summary[(summary["task"] == "suite mean") & (summary["split"] == LANGUAGE_SPLIT)].iloc[0]
    assert (mean["n"], mean["successes"], mean["policy_errors"]) == (6, 1, 5)


def test_table_cli_of_a_real_run(real_runs, capsys):
    assert main(["table", str(real_runs.flaky)]) == 0
    out = capsys.readouterr().out
    assert "| suite mean | 50.0 [" in out and "+33.3" in out


# ---------------------------------------------------------------- report


@pytest.fixture(scope="module")
def site(real_runs, tmp_path_factory):
    root = real_runs.root
    # fields a real run cannot carry as HTML (suite, task and split names are validated; the
    # instruction comes from the scene), written into a hand-made run beside the real ones
    make_run(root, "handmade", {("<u>task</u>", "in_domain"): (3, 4), ("<u>task</u>", "<i>split</i>"): (1, 4)},
             suite=suite_dict("<s>suite</s>", tasks=("<u>task</u>",), ood=("<i>split</i>",)),
             policy="handmade_policy", checkpoint="<em>ckpt2</em>", instruction="<script>alert('instr')</script> {task}",
             versions=package_versions())  # same simulator stack as the real runs: one board
    out = tmp_path_factory.mktemp("site")
    assert main(["report", str(root), "-o", str(out)]) == 0
    return out


def _board(html_text: str, slug: str) -> str:
    m = re.search(rf'<section id="board-{re.escape(slug)}"[^>]*>(.*?)</section>', html_text, re.S)
    assert m, f"no board {slug}"
    return m.group(1)


def _rows(section: str) -> list[list[str]]:
    return [[html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td>(.*?)</td>", tr, re.S)]
            for tr in re.findall(r"<tr>(.*?)</tr>", section, re.S) if "<td>" in tr]


def test_report_leaderboard_values_and_drop_sign(site):
    text = (site / "index.html").read_text()
    board = _board(text, "tabletop_basic")
    header = [html.unescape(h) for h in re.findall(r"<th>(.*?)</th>", board)]
    rows = {r[1]: dict(zip(header, r)) for r in _rows(board)}
    assert list(rows) == ["scripted", FLAKY, "noop"]  # ranked by in-domain rate
    assert rows["scripted"]["in-domain % [95% CI]"].startswith("100.0 [")
    flaky = rows[FLAKY]
    assert flaky["in-domain % [95% CI]"].startswith("50.0 [")
    # the report states drops as in-domain minus OOD, like the run table: worse out of domain is positive
    assert flaky[f"{LANGUAGE_SPLIT} % (drop)"].startswith("16.7 [") and flaky[f"{LANGUAGE_SPLIT} % (drop)"].endswith("(+33.3)")  # drop = ID - OOD, same sign as `vla-eval table`
    assert flaky["ood_layout_light % (drop)"].endswith("(+0.0)")
    assert rows["noop"]["in-domain % [95% CI]"].startswith("0.0 [0.0, ")
    assert rows["scripted"]["episodes"] == "18"


def test_report_per_task_breakdown_of_a_real_run(site):
    text = (site / "index.html").read_text()
    section = re.search(r'<section id="run-flaky-[0-9a-f]+">(.*?)</section>', text, re.S).group(1)
    cells = {r[0]: r for r in _rows(section)}
    pick = [c for k, c in cells.items() if k.startswith("pick_place_cube")][0]
    assert pick[0].startswith("pick_place_cube") and "put the red cube on the plate" in pick[0]
    assert pick[3] == "0.0 [0.0, 65.8] (2) / +50.0"  # 50 % in-domain -> 0 % OOD: a 50-point drop; Wilson upper bound for 0/2: 4/(2+4) ≈ 0.658 at z≈1.96


def test_every_user_written_field_is_escaped(site):
    # a real run shows its checkpoint as the fingerprint the runner recorded, so the raw
    # (HTML) checkpoint argument must not appear at all; the hand-made run shows its own
    shown = [EVIL["run_id"], EVIL["policy"], "<s>suite</s>", "<u>task</u>", "<i>split</i>", "<em>ckpt2</em>",
             "<script>alert('instr')</script>"]
    for name in ("index.html", "index.md"):
        text = (site / name).read_text()
        for m in [*shown, EVIL["checkpoint"]]:
            assert m not in text, f"{name}: {m!r} appears unescaped"
        for m in shown:
            assert html.escape(m, quote=True) in text or _md(html.escape(m, quote=True)) in text, f"{name}: {m!r} missing"
        assert "<script" not in text.lower()
    html_text = (site / "index.html").read_text()
    assert not re.search(r"<(script|img src=x|b onmouseover|s>|u>|i>|em>)", html_text)


def _md(text: str) -> str:
    return re.sub(r"([\\`*_\[\]|#])", r"\\\1", text)
