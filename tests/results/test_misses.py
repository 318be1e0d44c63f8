"""Misses of issue 30 that every other test let through."""

from __future__ import annotations

from runfixtures import make_run, suite_dict
from vla_eval.cli.main import main


def test_leaderboard_ranks_by_in_domain_when_the_out_of_domain_ranking_disagrees(runs_root):
    """`specialist` leads in domain (90% vs 60%) but collapses out of domain (10% vs 55%): it must rank first."""
    suite = suite_dict(tasks=("pick_place_cube", "push_block"), ood=("ood_layout_light",), episodes=20)
    tasks = ("pick_place_cube", "push_block")
    make_run(runs_root, "specialist_run", {**{(t, "in_domain"): (18, 20) for t in tasks},
                                           **{(t, "ood_layout_light"): (2, 20) for t in tasks}},
             suite=suite, policy="specialist", checkpoint=None)
    make_run(runs_root, "robust_run", {**{(t, "in_domain"): (12, 20) for t in tasks},
                                       **{(t, "ood_layout_light"): (11, 20) for t in tasks}},
             suite=suite, policy="robust", checkpoint=None, created_at="2025-06-02T12:00:00+00:00")
    assert main(["report", str(runs_root), "-o", str(runs_root / "site")]) == 0
    md = (runs_root / "site" / "index.md").read_text()
    board = [line for line in md.splitlines() if line.startswith("| 1 |") or line.startswith("| 2 |")]
    assert board[0].startswith("| 1 | specialist") and board[1].startswith("| 2 | robust"), board
    assert "+80.0" in board[0] and "+5.0" in board[1]  # the drops are shown, positive = worse out of domain
