import pytest
from scipy.stats import binomtest

from vla_eval.results.stats import wilson_interval


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


def test_wilson_of_no_episodes_is_the_whole_range():
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_wilson_error_names_the_counts():
    with pytest.raises(ValueError, match=r"successes=6 must be within \[0, n=5\]"):
        wilson_interval(6, 5)
    with pytest.raises(ValueError, match=r"successes=-1 must be within \[0, n=5\]"):
        wilson_interval(-1, 5)


def test_wilson_other_confidence_level():
    # 90%: z = 1.6449; 7/10 by the closed form (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)
    import math

    z, p, n = 1.6448536269514722, 0.7, 10
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert wilson_interval(7, 10, alpha=0.1) == pytest.approx((centre - half, centre + half), abs=1e-9)
