"""Report: LIBERO-PRO columns, this project's perturbations and simulator stacks are kept apart."""

from runfixtures import make_run, suite_dict
from vla_eval.results.report_render import board_rows as _board_rows
from vla_eval.results.report_view import boards_of as _boards
from vla_eval.results.report_view import build_view as _view

LIBERO = ("libero_spatial", "libero_object", "libero_goal", "libero_10")


def _suite(name, pro=False):
    s = suite_dict(name, tasks=("t1",), ood=("lighting",))
    if pro:
        s["splits"].append({"name": f"{name}_lan", "out_of_domain": True, "family": "libero_pro",
                            "perturbations": [{"type": "libero_pro", "suite": f"{name}_lan"}], "description": ""})
    return s


def test_ood_mean_never_averages_libero_pro_with_our_perturbations(tmp_path):
    # in-domain 80%, our lighting split 40%, a LIBERO-PRO split 0%: the OOD mean must be 40, not 20
    for suite in LIBERO:
        make_run(tmp_path, suite, {("t1", "in_domain"): (8, 10), ("t1", "lighting"): (4, 10), ("t1", f"{suite}_lan"): (0, 10)},
                 suite=_suite(suite, pro=True))
    boards, _ = _boards([_view(p) for p in sorted(tmp_path.iterdir())])
    (board,) = boards
    assert board.family == "LIBERO"
    header, rows = _board_rows(board)
    ood_col = next(i for i, h in enumerate(header) if h.startswith("OOD mean"))
    assert "vla_eval" in header[ood_col]
    assert rows[0][ood_col][0] == "40.0 (+40.0)"  # drop = ID - OOD


def test_single_suite_board_tags_libero_pro_columns(tmp_path):
    make_run(tmp_path, "pro", {("t1", "in_domain"): (8, 10), ("t1", "lighting"): (4, 10), ("t1", "libero_spatial_pro_lan"): (2, 10)},
             suite=_suite("libero_spatial_pro", pro=True))
    (board,), _ = _boards([_view(tmp_path / "pro")])
    header, rows = _board_rows(board)
    assert "[LIBERO-PRO] libero_spatial_pro_lan % (drop)" in header
    assert "lighting % (drop)" in header  # ours: unmarked
    col = header.index("[LIBERO-PRO] libero_spatial_pro_lan % (drop)")
    assert rows[0][col][0].endswith("(+60.0)")  # 80 % ID -> 20 % PRO: a 60-point drop


def test_runs_from_different_sim_stacks_get_separate_marked_boards(tmp_path):
    for name, mj, npv in (("new", "3.3.2", "2.1.0"), ("ref", "2.3.7", "1.26.4")):
        make_run(tmp_path, name, {("cube", "in_domain"): (30, 40)}, suite=suite_dict("tabletop_basic", tasks=("cube",), ood=()),
                 policy=f"pol_{name}", versions={"python": "3.11.9", "mujoco": mj, "numpy": npv})
    boards, _ = _boards([_view(tmp_path / n) for n in ("new", "ref")])
    assert len(boards) == 2
    titles = sorted(b.title for b in boards)
    assert any("mujoco 2.3.7 / numpy 1.26.4 (reference)" in t for t in titles)
    assert any("mujoco 3.3.2 / numpy 2.1.0" in t and "reference" not in t for t in titles)
    assert all(len(b.entries) == 1 for b in boards)
