import pytest
from scipy.stats import binomtest

from vla_eval.stats import wilson_interval


@pytest.mark.parametrize("k,n", [(0, 5), (5, 5), (3, 10), (47, 50), (1, 1), (250, 500)])
def test_wilson_matches_scipy(k, n):
    ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(ref.low, abs=1e-9)
    assert hi == pytest.approx(ref.high, abs=1e-9)


def test_wilson_known_value():
    # 7/10: textbook Wilson 95% interval
    lo, hi = wilson_interval(7, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.3968, 0.8922)


def test_wilson_rejects_impossible_counts():
    with pytest.raises(ValueError):
        wilson_interval(6, 5)
