"""MMRV and Pearson r on hand-computed examples, and the correlate command."""

import math

import pytest
from scipy import stats

from runfixtures import make_run
from vla_eval.cli.main import main
from vla_eval.results.correlate import correlate, mmrv, pearson


def test_mmrv_hand_example_three_policies():
    # S = [0.9, 0.5, 0.3], R = [0.6, 0.7, 0.2]: only pair (0, 1) is mis-ordered, |R0 - R1| = 0.1
    # i=0: max(0.1, 0) = 0.1; i=1: max(0.1, 0) = 0.1; i=2: 0  ->  MMRV = 0.2 / 3
    assert mmrv([0.9, 0.5, 0.3], [0.6, 0.7, 0.2]) == pytest.approx(0.2 / 3)


def test_mmrv_hand_example_four_policies():
    # violations: (0,1) .4, (0,3) .2, (2,3) .4  ->  per-i maxima .4, .4, .4, .4  ->  MMRV = 0.4
    assert mmrv([0.2, 0.4, 0.6, 0.8], [0.5, 0.1, 0.7, 0.3]) == pytest.approx(0.4)
    assert mmrv([0.1, 0.2, 0.3], [0.2, 0.5, 0.9]) == 0.0  # same ranking
    # a tie in sim vs a strict order in real counts as a violation for the higher-real policy
    assert mmrv([0.5, 0.5], [0.2, 0.6]) == pytest.approx((0.0 + 0.4) / 2)


def test_pearson_hand_example():
    # dS = [1/3, -1/15, -4/15], dR = [0.1, 0.2, -0.3]: sum dS dR = 0.1, sum dS^2 = 42/225, sum dR^2 = 0.14
    r, p = pearson([0.9, 0.5, 0.3], [0.6, 0.7, 0.2])
    assert r == pytest.approx(0.1 / math.sqrt(42 / 225 * 0.14))
    assert r == pytest.approx(stats.pearsonr([0.9, 0.5, 0.3], [0.6, 0.7, 0.2]).statistic)
    assert math.isnan(pearson([0.5, 0.5, 0.5], [0.1, 0.2, 0.3])[0])


def _sim(root):
    # sim rates: a 0.9, b 0.5, c 0.3 (in-domain); OOD episodes must be ignored
    make_run(root, "a", {("t", "in_domain"): (9, 10), ("t", "lighting"): (0, 10)}, policy="a")
    make_run(root, "b", {("t", "in_domain"): (5, 10)}, policy="b")
    make_run(root, "c", {("t", "in_domain"): (3, 10)}, policy="c")


def test_correlate_end_to_end(runs_root, tmp_path, capsys):
    _sim(runs_root)
    real = tmp_path / "real.csv"
    real.write_text("policy,success_rate\na,0.6\nb,0.7\nc,0.2\nunknown,0.5\n")
    res = correlate([runs_root], real)
    assert res.mmrv == pytest.approx(0.2 / 3)
    assert res.pearson_r == pytest.approx(0.1 / math.sqrt(42 / 225 * 0.14))
    assert any("unknown" in n for n in res.notes)
    assert main(["correlate", "--sim", str(runs_root / "a"), str(runs_root / "b"), str(runs_root / "c"), "--real", str(real)]) == 0
    assert "MMRV = 0.067" in capsys.readouterr().out


def test_correlate_per_task(runs_root, tmp_path):
    _sim(runs_root)
    real = tmp_path / "real.csv"
    real.write_text("policy,task,success_rate\na,t,0.6\nb,t,0.7\nc,t,0.2\n")
    res = correlate([runs_root], real)
    assert list(res.per_group["task"]) == ["t"] and res.mmrv == pytest.approx(0.2 / 3)


def test_correlate_bad_csv_exits_2(runs_root, tmp_path):
    _sim(runs_root)
    bad = tmp_path / "bad.csv"
    bad.write_text("policy,rate\na,0.5\n")
    assert main(["correlate", "--sim", str(runs_root), "--real", str(bad)]) == 2
    bad.write_text("policy,success_rate\na,55\nb,60\n")  # percentages are rejected, not guessed
    assert main(["correlate", "--sim", str(runs_root), "--real", str(bad)]) == 2
    assert main(["correlate", "--sim", str(runs_root), "--real", str(tmp_path / "none.csv")]) == 2
