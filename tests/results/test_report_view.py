"""The report's view model (``report_view``) on fixture runs, without rendering.

Mutation testing (docs/testing.md) found the grouping and labelling rules below changeable with
every fast test passing: LIBERO's family mean and its ranking, the notes a board carries
(gated runs, mixed protocols, missing LIBERO suites), videos per cell, the suite's split order,
and runs without an in-domain or an out-of-domain rate.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from scipy.stats import norm

from runfixtures import make_run, suite_dict
from vla_eval.results.gate import GateConfig, build_design
from vla_eval.results.report_view import LIBERO_FAMILY, boards_of, build_view, family_label
from vla_eval.results.runs import read_run
from vla_eval.store import RunStore


def _views(*run_dirs):
    return [build_view(d) for d in run_dirs]


def _wilson(p: float, n: float) -> tuple[float, float]:
    z = norm.ppf(0.975)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def test_videos_are_listed_per_task_and_split_in_episode_order(runs_root):
    run = make_run(runs_root, "v", {("pick", "in_domain"): (1, 4), ("pick", "lighting"): (0, 4)}, videos=True)
    view = build_view(run)
    assert sorted(view.videos) == [("pick", "in_domain"), ("pick", "lighting")]
    for (task, split), entries in view.videos.items():
        assert [(i, path) for i, _, path in entries] == [(i, f"videos/{task}__{split}__{i:03d}.mp4") for i in (0, 1)]


def test_records_already_read_are_the_ones_shown(runs_root):
    run = make_run(runs_root, "r", {("pick", "in_domain"): (3, 6)})
    info, records = read_run(run)
    assert build_view(run, info, records[:2]).n == 2
    assert build_view(run).n == 6


def test_the_summary_keeps_the_suites_split_order(runs_root):
    """The suite's first split is the in-domain reference, even when an OOD split sorts before it."""
    suite = suite_dict(tasks=("pick",), ood=("camera",))
    run = make_run(runs_root, "s", {("pick", "camera"): (1, 5), ("pick", "in_domain"): (4, 5)}, suite=suite)
    view = build_view(run)
    assert list(dict.fromkeys(view.summary["split"])) == ["in_domain", "camera"]
    assert view.gate is None


def test_a_gated_run_is_labelled_in_its_view_and_its_board(runs_root):
    counts = {("pick", "in_domain"): (2, 4), ("push", "in_domain"): (1, 4)}
    run = make_run(runs_root, "gated_run", counts)
    cells = {t: {"episodes": 20, "successes": 18} for t in ("pick", "push")}
    baseline = {"run_id": "base_run", "counts": {"in_domain": cells}}
    design = build_design(GateConfig(Path("b.json")), baseline, [("pick", "in_domain", 10), ("push", "in_domain", 10)])
    with RunStore(run) as store:
        store.set_meta("gate", {"design": design})
    view = build_view(run)
    assert view.gate.startswith("stopped after ") and " of 20 planned episodes; verdict " in view.gate
    assert view.gate.endswith("against baseline base_run; intervals are 95% repeated CIs of the group-sequential "
                              "design, not Wilson")
    (board,), _ = boards_of([view])
    assert board.notes == ["gated runs (stopped early by `run --gate`; their intervals are 95% repeated CIs, "
                           "not Wilson): gated_run"]


def test_rows_of_different_protocols_are_flagged(runs_root):
    counts = {("pick", "in_domain"): (3, 5)}
    a = make_run(runs_root, "a", counts, suite=suite_dict(tasks=("pick",), ood=(), max_steps=200), policy="alpha")
    b = make_run(runs_root, "b", counts, suite=suite_dict(tasks=("pick",), ood=(), max_steps=300), policy="beta")
    views = _views(a, b)
    hashes = sorted(v.info.protocol["protocol_hash"] for v in views)
    assert hashes[0] != hashes[1]
    (board,), _ = boards_of(views)
    assert board.notes == [
        f"tabletop_basic: rows use 2 different protocols ({hashes[0]}, {hashes[1]}); compare with care"]


def _libero(root, name, rates: dict[str, int], n=10):
    runs = []
    for suite in LIBERO_FAMILY if len(rates) == 4 else rates:
        spec = suite_dict(name=suite, tasks=("t",), ood=(), backend="libero")
        runs.append(make_run(root / name, suite, {("t", "in_domain"): (rates[suite], n)}, suite=spec, policy=name,
                             checkpoint=None))
    return runs


def test_libero_ranks_by_the_family_mean_with_wilson_at_its_effective_n(runs_root):
    """`spatial_star` leads on libero_spatial alone but `all_round` leads on the mean of the four suites."""
    star = _libero(runs_root, "spatial_star", {"libero_spatial": 9, "libero_object": 2, "libero_goal": 2,
                                               "libero_10": 2})
    all_round = _libero(runs_root, "all_round", {"libero_spatial": 5, "libero_object": 8, "libero_goal": 8,
                                                 "libero_10": 8})
    (board,), _ = boards_of(_views(*star, *all_round))
    assert board.title.startswith("LIBERO (mean of libero_spatial, libero_object, libero_goal, libero_10)")
    assert [e.policy for e in board.entries] == ["all_round", "spatial_star"]
    mean, lo, hi = board.entries[0].family_mean(board.suites)
    assert mean == pytest.approx(0.725)
    assert (lo, hi) == pytest.approx(_wilson(0.725, 4 ** 2 / (4 / 10)))  # n_eff = 40 episodes
    assert board.notes == []


def test_a_libero_board_missing_suites_says_which(runs_root):
    (board,), _ = boards_of(_views(*_libero(runs_root, "p", {"libero_spatial": 5, "libero_goal": 6})))
    assert board.notes == ["family mean needs all four LIBERO suites; missing: libero_object, libero_10"]
    assert board.entries[0].family_mean(board.suites)[0] == pytest.approx(0.55)  # over the suites present


def test_a_single_suite_board_has_no_libero_note(runs_root):
    (board,), _ = boards_of(_views(make_run(runs_root, "x", {("pick", "in_domain"): (1, 2)})))
    assert board.notes == []


def test_a_run_without_in_domain_episodes_ranks_last_and_one_without_ood_has_no_ood_mean(runs_root):
    suite = suite_dict(tasks=("pick",), ood=("lighting",))
    zero = make_run(runs_root, "zero", {("pick", "in_domain"): (0, 5)}, suite=suite, policy="zero")
    ood_only = make_run(runs_root, "ood_only", {("pick", "lighting"): (5, 5)}, suite=suite, policy="ood_only")
    (board,), _ = boards_of(_views(zero, ood_only))
    assert [e.policy for e in board.entries] == ["zero", "ood_only"]
    assert board.entries[0].ood_mean() is None  # no OOD episodes: no drop to show, not NaN


def test_family_labels():
    assert family_label("simpler_widowx_ext") == "simpler_widowx_ext (vla-eval extension, not a SimplerEnv protocol)"
    assert family_label("tabletop_ext") == "tabletop_ext"
    assert family_label("simpler_google") == "simpler_google"


def test_boards_put_libero_first_then_families_by_name_and_fast_renders_last(runs_root):
    """Suite names may start with a capital (``ALOHA_tasks`` sorts before ``LIBERO`` by byte order)."""
    runs = _libero(runs_root, "p", {"libero_spatial": 5})
    for name, quality in (("ALOHA_tasks", None), ("a_fast", "fast"), ("tabletop_basic", None)):
        spec = suite_dict(name=name, tasks=("t",), ood=(), render_quality=quality)
        runs.append(make_run(runs_root, name, {("t", "in_domain"): (1, 2)}, suite=spec))
    boards, _ = boards_of(_views(*runs))
    assert [(b.family, b.fast) for b in boards] == [("LIBERO", False), ("ALOHA_tasks", False),
                                                    ("tabletop_basic", False), ("a_fast", True)]
