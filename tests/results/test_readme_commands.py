"""The README's commands on realistic outputs (issue 30), not on round-number fixtures.

``vla-eval report`` crashed on a plain ``--policy random --episodes 3`` run (Wilson's lower bound
for 0/9 came out as 2.8e-17 > 0) while every test passed: the tests used n = 10 and rates
strictly between 0 and 1. Here the README's run, table, compare, baseline, check, gated-run,
plan and report commands run on folders the real runner wrote: a random run (every cell 0/3,
suite means 0/9), a scripted run (every cell 3/3, 9/9), that run resumed, and a gated run that
stopped early (a partial run, cells of 1 and 2 episodes); plus hand-built runs with n = 9 cells.
Expected intervals and p-values come from the Wilson formula and scipy, not from the package.

Which test covers which README command is listed in docs/testing.md.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import re
import shlex
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest
from scipy.stats import binom, boschloo_exact, norm

from runfixtures import make_run, suite_dict
from vla_eval.cli.main import build_parser, main
from vla_eval.store import RunStore

README = Path(__file__).resolve().parents[2] / "README.md"
Z = norm.ppf(0.975)
TASKS = ("pick_place_cube", "push_block", "open_drawer")
SPLITS = ("in_domain", "ood_layout_light")


def wilson_pct(k: int, n: int) -> tuple[float, float]:
    """The Wilson score interval in percent, written out (Wilson 1927)."""
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return 100 * max(0.0, centre - half), 100 * min(1.0, centre + half)


def cell(k: int, n: int) -> str:
    lo, hi = wilson_pct(k, n)
    return f"{100 * k / n:.1f} [{lo:.1f}, {hi:.1f}] (n={n})"


@dataclass
class ReadmeRuns:
    root: Path          # results root holding the random and the scripted run (what `report results` reads)
    random: Path
    scripted: Path
    gated: Path         # a gated run that stopped early: the partial run
    baseline: Path      # `baseline save` of the scripted run
    outputs: dict       # command name -> (exit code, stdout)


def _cli(capsys, argv: list[str]) -> tuple[int, str]:
    rc = main(argv)
    return rc, capsys.readouterr().out


@pytest.fixture(scope="module")
def readme_runs(tmp_path_factory) -> ReadmeRuns:
    """Real rollouts through the README's commands (about 40 s on a loaded 2-core machine)."""
    base = tmp_path_factory.mktemp("readme")
    root = base / "results"
    outputs: dict = {}

    def cli(name: str, argv: list[str]) -> None:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = main(argv)
        outputs[name] = (rc, buf.getvalue())

    cli("run_random", ["run", "--suite", "tabletop_basic", "--policy", "random", "--episodes", "3", "--workers", "2",
                       "--run-dir", str(root / "random"), "--no-progress"])
    scripted = ["run", "--suite", "tabletop_basic", "--policy", "scripted", "--episodes", "3", "--videos", "failures",
                "--workers", "2", "--run-dir", str(root / "scripted"), "--no-progress"]
    cli("run_scripted", scripted)
    with RunStore(root / "scripted", readonly=True) as store:
        outputs["scripted_wall_times"] = {r.key: r.wall_time_s for r in store.records()}
    cli("resume", [*scripted, "--resume"])
    baseline = base / "baseline.json"
    cli("baseline_save", ["baseline", "save", str(root / "scripted"), "-o", str(baseline)])
    candidate = base / "candidate.yaml"
    candidate.write_text("adapter: random\nname: candidate\n")
    gated = base / "gated" / "candidate"
    cli("gated_run", ["run", "--policy", str(candidate), "--gate", str(baseline), "--workers", "2",
                      "--run-dir", str(gated), "--no-progress"])
    return ReadmeRuns(root, root / "random", root / "scripted", gated, baseline, outputs)


def _board(site: Path) -> list[str]:
    """The leaderboard's first two rows in ``index.md``."""
    return [line for line in (site / "index.md").read_text().splitlines() if re.match(r"\| [12] \|", line)]


def _rows(run_dir: Path, name: str) -> list[dict]:
    with open(run_dir / name, newline="") as f:
        return list(csv.DictReader(f))


def _sql_counts(run_dir: Path) -> dict[tuple[str, str], tuple[int, int]]:
    """(task, split) -> (successes, episodes), read with raw SQL, not through the package."""
    con = sqlite3.connect(f"file:{run_dir / 'episodes.sqlite'}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT task, split, SUM(success), COUNT(*) FROM episodes GROUP BY task, split").fetchall()
    finally:
        con.close()
    return {(t, s): (int(k), int(n)) for t, s, k, n in rows}


# --- run / table -------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_run_and_table_print_zero_and_full_cells_with_exact_wilson_ends(readme_runs, capsys):
    """0/3 -> 0.0 [0.0, 56.1], 3/3 -> 100.0 [43.9, 100.0]; suite means 0/9 and 9/9, the interval ends exact."""
    for run_dir, k in ((readme_runs.random, 0), (readme_runs.scripted, 3)):
        rc, out = readme_runs.outputs[f"run_{run_dir.name}"]
        assert rc == 0
        assert _sql_counts(run_dir) == {(t, s): (k, 3) for t in TASKS for s in SPLITS}
        for task in TASKS:
            assert f"| {task} | {cell(k, 3)} | {cell(k, 3)} | +0.0 |" in out
        assert f"| suite mean | {cell(3 * k, 9)} | {cell(3 * k, 9)} | +0.0 |" in out
        rc, table = _cli(capsys, ["table", str(run_dir)])
        assert rc == 0 and (run_dir / "table.md").read_text().strip() in table
        for row in _rows(run_dir, "summary.csv"):
            lo, hi = float(row["ci_low"]), float(row["ci_high"])
            assert 0.0 <= lo <= float(row["rate"]) <= hi <= 1.0
            if k == 0:
                assert lo == 0.0, row  # issue 30: 2.8e-17 here made `report` fail
            else:
                assert hi == 1.0, row


@pytest.mark.slow
def test_resume_of_a_finished_run_reruns_nothing_and_failures_mode_films_no_success(readme_runs):
    rc, out = readme_runs.outputs["resume"]
    assert rc == 0
    assert "episodes run now: 0, already done before: 18" in out
    with RunStore(readme_runs.scripted, readonly=True) as store:
        records = list(store.records())
    assert {r.key: r.wall_time_s for r in records} == readme_runs.outputs["scripted_wall_times"]
    assert all(r.success and r.video_path is None for r in records)
    assert not any((readme_runs.scripted / "videos").glob("*.mp4"))


# --- compare / baseline save / check -----------------------------------------------------------------------------


@pytest.mark.slow
def test_compare_random_with_scripted(readme_runs, capsys):
    rc, out = _cli(capsys, ["compare", str(readme_runs.random), str(readme_runs.scripted)])
    assert rc == 0
    p_cell = boschloo_exact([[0, 3], [3, 0]]).pvalue
    p_split = boschloo_exact([[0, 9], [9, 0]]).pvalue
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in out.splitlines() if line.startswith("| task ")
            or line.startswith("| split ") or line.startswith("| overall ")]
    assert len(rows) == 3 * 2 + 2 + 1
    for scope, task, split, a, b, diff, p, p_adj, test, verdict in rows:
        n = {"task": 3, "split": 9, "overall": 18}[scope]
        assert a.endswith(f"(0/{n})") and b.endswith(f"({n}/{n})") and diff == "+100.0"
        if scope == "task":
            assert float(p) == pytest.approx(p_cell, rel=0.02)
            assert float(p_adj) == pytest.approx(min(1.0, 3 * p_cell), rel=0.02)  # Holm over 3 tasks, all equal
            assert verdict == "no significant difference"
        else:
            if scope == "split":
                assert float(p) == pytest.approx(p_split, rel=0.02)
            assert verdict == "better"


@pytest.mark.slow
def test_baseline_save_and_check_on_zero_full_and_partial_runs(readme_runs, capsys, tmp_path):
    rc, out = readme_runs.outputs["baseline_save"]
    assert rc == 0 and "18 episodes in 6 task/split cells" in out
    args = ["--baseline", str(readme_runs.baseline), "--max-drop", "0.05"]
    rc, out = _cli(capsys, ["check", str(readme_runs.random), *args])
    assert rc == 1 and "significant regression" in out and "(all)/(all)" in out
    rc, out = _cli(capsys, ["check", str(readme_runs.scripted), *args])
    assert rc == 0 and "no significant regression" in out
    rc, out = _cli(capsys, ["check", str(readme_runs.gated), *args])
    assert rc == 1, out  # the partial (gated) run: same verdict as the gate (README: `check` on the folder agrees)

    random_baseline = tmp_path / "random_baseline.json"
    assert _cli(capsys, ["baseline", "save", str(readme_runs.random), "-o", str(random_baseline)])[0] == 0
    rc, out = _cli(capsys, ["check", str(readme_runs.random), "--baseline", str(random_baseline), "--max-drop", "0.05"])
    assert rc == 0 and "no significant regression" in out  # 0/9 against 0/9: the float edge of issue 30


# --- gated run: a partial run --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_gated_run_stops_early_and_its_partial_folder_tables_and_reports(readme_runs, capsys, tmp_path):
    rc, out = readme_runs.outputs["gated_run"]
    assert rc == 1 and "RESULT: REGRESSION (exit 1)" in out
    counts = _sql_counts(readme_runs.gated)
    done = sum(n for _, n in counts.values())
    assert 0 < done < 60, "the gate should stop a 0% candidate against a 100% baseline long before 60 episodes"
    assert (readme_runs.gated / "gate.json").is_file()

    assert _cli(capsys, ["table", str(readme_runs.gated)])[0] == 0
    for row in _rows(readme_runs.gated, "summary.csv"):
        if row["task"] == "suite mean":
            continue
        assert (int(row["successes"]), int(row["n"])) == counts[(row["task"], row["split"])]
        assert 0.0 <= float(row["ci_low"]) <= float(row["rate"]) <= float(row["ci_high"]) <= 1.0

    root = tmp_path / "results"
    shutil.copytree(readme_runs.gated, root / "candidate")
    shutil.copytree(readme_runs.scripted, root / "scripted")
    rc, out = _cli(capsys, ["report", str(root), "-o", str(tmp_path / "site")])
    assert rc == 0 and (tmp_path / "site" / "index.html").is_file()
    board = _board(tmp_path / "site")
    assert [line.split("|")[2].strip() for line in board] == ["scripted", "candidate"]
    assert f"| {done} |" in board[1]  # the partial run's episode count, as stored


# --- report ------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_report_over_a_random_and_a_scripted_run(readme_runs, capsys, tmp_path):
    """The case that failed in issue 30: `vla-eval report results -o site/` over a 0% and a 100% run."""
    site = tmp_path / "site"
    rc, out = _cli(capsys, ["report", str(readme_runs.root), "-o", str(site)])
    assert rc == 0 and "2 runs" in out
    assert (site / "index.html").is_file() and list((site / "plots").glob("*.png"))
    md = (site / "index.md").read_text()
    board = [line for line in md.splitlines() if re.match(r"\| [12] \|", line)]
    lo9, hi9 = wilson_pct(0, 9)
    lo9s, hi9s = wilson_pct(9, 9)
    assert board[0].startswith("| 1 | scripted |") and f"100.0 \\[{lo9s:.1f}, {hi9s:.1f}\\]" in board[0]
    assert board[1].startswith("| 2 | random |") and f"0.0 \\[{lo9:.1f}, {hi9:.1f}\\]" in board[1]
    assert all("| 18 |" in line for line in board)
    lo3, hi3 = wilson_pct(0, 3)
    assert md.count(f"0.0 \\[{lo3:.1f}, {hi3:.1f}\\] (3)") == 3 * 2  # random's per-task cells, both splits


# --- hand-built runs with n = 9 cells, 0% and 100% among them ---------------------------------------------------------


def test_results_commands_on_n9_cells_with_zero_and_full_rates(runs_root, capsys, tmp_path):
    suite = suite_dict(tasks=TASKS, ood=("ood_layout_light",), episodes=9)
    a = {("pick_place_cube", "in_domain"): (9, 9), ("push_block", "in_domain"): (0, 9),
         ("open_drawer", "in_domain"): (4, 9), ("pick_place_cube", "ood_layout_light"): (9, 9),
         ("push_block", "ood_layout_light"): (0, 9), ("open_drawer", "ood_layout_light"): (1, 9)}
    b = {key: (0, 9) for key in a}
    run_a = make_run(runs_root, "n9_a", a, suite=suite, policy="alpha", checkpoint=None)
    run_b = make_run(runs_root, "n9_b", b, suite=suite, policy="beta", checkpoint=None,
                     created_at="2025-06-02T12:00:00+00:00")

    rc, out = _cli(capsys, ["table", str(run_a)])
    assert rc == 0
    assert f"| pick_place_cube | {cell(9, 9)} | {cell(9, 9)} | +0.0 |" in out
    assert f"| push_block | {cell(0, 9)} | {cell(0, 9)} | +0.0 |" in out
    assert f"| open_drawer | {cell(4, 9)} | {cell(1, 9)} | +33.3 |" in out

    rc, out = _cli(capsys, ["compare", str(run_b), str(run_a)])
    assert rc == 0
    row = next(line for line in out.splitlines() if "| pick_place_cube" in line and "| in_domain" in line)
    assert float(row.split("|")[7]) == pytest.approx(boschloo_exact([[0, 9], [9, 0]]).pvalue, rel=0.02)

    baseline = tmp_path / "a.json"
    assert _cli(capsys, ["baseline", "save", str(run_a), "-o", str(baseline)])[0] == 0
    assert _cli(capsys, ["check", str(run_a), "--baseline", str(baseline), "--max-drop", "0.05"])[0] == 0
    assert _cli(capsys, ["check", str(run_b), "--baseline", str(baseline), "--max-drop", "0.05"])[0] == 1

    rc, _ = _cli(capsys, ["report", str(runs_root), "-o", str(tmp_path / "site")])
    assert rc == 0
    board = _board(tmp_path / "site")
    assert board[0].startswith("| 1 | alpha |") and board[1].startswith("| 2 | beta |")
    lo, hi = wilson_pct(0, 27)
    assert f"0.0 \\[{lo:.1f}, {hi:.1f}\\]" in board[1]


# --- plan-episodes -----------------------------------------------------------------------------------------------


def test_plan_episodes_readme_numbers_hold_under_the_exact_binomial(capsys):
    """`vla-eval plan-episodes --p0 0.9 --delta 0.05 --power 0.8`: the exact-test n reaches the power, checked
    with scipy's binomial distribution (reject when successes <= the largest k with P(X <= k | 0.9) <= 0.05)."""
    rc, out = _cli(capsys, ["plan-episodes", "--p0", "0.9", "--delta", "0.05", "--power", "0.8"])
    assert rc == 0
    m = re.search(r"exact one-sided binomial test\): (\d+) episodes per task \(exact power ([0-9.]+)\)", out)
    assert m, out
    n, stated = int(m.group(1)), float(m.group(2))
    k = int(binom.ppf(0.05, n, 0.9))
    while binom.cdf(k, n, 0.9) > 0.05:
        k -= 1
    power = binom.cdf(k, n, 0.85)
    assert power >= 0.8 and power == pytest.approx(stated, abs=0.0015)


# --- every README command line parses -----------------------------------------------------------------------------


def readme_command_lines() -> list[str]:
    """`vla-eval ...` lines in the README's code blocks, comments and shell glue removed,
    backslash continuations joined, ``[--optional ARG]`` brackets opened."""
    lines, in_block, pending = [], False, ""
    for raw in README.read_text().splitlines():
        if raw.strip().startswith("```"):
            in_block = not in_block
            continue
        if not in_block:
            continue
        text = pending + " " + raw.strip() if pending else raw
        pending = ""
        if text.rstrip().endswith("\\"):
            pending = text.rstrip()[:-1]
            continue
        m = re.search(r"(?:^|[\s&;:-])vla-eval (.*)", text)
        if not m:
            continue
        command = re.split(r"\s#|\s\||;|&&", m.group(1))[0]
        lines.append(command.replace("[", "").replace("]", "").strip())
    return lines


def test_readme_commands_are_all_found():
    """Guards the extractor below: the README's tour, CI blocks and gate walk-through are all seen."""
    commands = readme_command_lines()
    assert len(commands) >= 30
    for sub in ("list", "run", "table", "doctor", "conformance", "serve", "canary", "record-demos", "compare",
                "baseline", "check", "plan-episodes", "report", "assets"):
        assert any(c.split()[0] == sub for c in commands), sub
    assert any("--gate baselines/libero_spatial.json" in c for c in commands)  # a continued CI line, joined


@pytest.mark.parametrize("command", readme_command_lines())
def test_every_readme_command_line_parses(command):
    """Each README command is accepted by the CLI as written: no renamed subcommand or flag, no stale choice."""
    try:
        build_parser().parse_args(shlex.split(command))
    except SystemExit as exc:
        pytest.fail(f"README command does not parse (exit {exc.code}): vla-eval {command}")
