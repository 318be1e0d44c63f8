"""Statistics against scipy / statsmodels references and hand computations."""

import math

import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from vla_eval.results import stats as rs


@pytest.mark.parametrize("k,n", [(0, 5), (5, 5), (3, 10), (45, 50), (1, 50), (37, 40)])
def test_wilson_matches_statsmodels_and_closed_form(k, n):
    lo, hi = rs.wilson_interval(k, n)
    ref_lo, ref_hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert (lo, hi) == pytest.approx((ref_lo, ref_hi), abs=1e-12)
    # closed form: (p + z^2/2n ± z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)
    z = stats.norm.ppf(0.975)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert lo == pytest.approx(max(0.0, centre - half), abs=1e-9)
    assert hi == pytest.approx(min(1.0, centre + half), abs=1e-9)


@pytest.mark.parametrize("k_a,n_a,k_b,n_b", [(45, 50, 30, 50), (10, 20, 18, 20), (7, 10, 3, 12), (50, 50, 44, 50)])
def test_exact_two_sided_matches_scipy(k_a, n_a, k_b, n_b):
    table = [[k_a, k_b], [n_a - k_a, n_b - k_b]]
    assert rs.exact_two_sided(k_a, n_a, k_b, n_b, "fisher").p_value == pytest.approx(stats.fisher_exact(table).pvalue, rel=1e-9)
    assert rs.exact_two_sided(k_a, n_a, k_b, n_b, "boschloo").p_value == pytest.approx(stats.boschloo_exact(table).pvalue, rel=1e-6)
    assert rs.exact_two_sided(k_a, n_a, k_b, n_b, "barnard").p_value == pytest.approx(stats.barnard_exact(table).pvalue, rel=1e-6)
    # Boschloo is uniformly more powerful than Fisher: never a larger p-value
    assert rs.exact_two_sided(k_a, n_a, k_b, n_b, "boschloo").p_value <= stats.fisher_exact(table).pvalue + 1e-12


def test_auto_switches_to_fisher_for_large_runs():
    assert rs.exact_two_sided(80, 100, 70, 100).test == "boschloo"
    assert rs.exact_two_sided(400, 500, 350, 500).test == "fisher"
    assert rs.exact_two_sided(5, 5, 5, 5).p_value == 1.0


@pytest.mark.parametrize("k_new,n_new,k_base,n_base", [(40, 50, 45, 50), (10, 20, 18, 20), (30, 50, 45, 50), (5, 30, 9, 25), (50, 50, 50, 50)])
def test_noninferiority_with_zero_margin_is_barnards_pooled_test(k_new, n_new, k_base, n_base):
    ref = stats.barnard_exact([[k_new, k_base], [n_new - k_new, n_base - k_base]], alternative="less", pooled=True).pvalue
    assert rs.noninferiority_pvalue(k_new, n_new, k_base, n_base, 0.0) == pytest.approx(ref, abs=2e-4)


def _exact_size(p_base, margin, n_new, n_base, alpha):
    """P(reject) at a point of the null boundary, by full enumeration."""
    pn = p_base - margin
    size = 0.0
    for kn in range(n_new + 1):
        for kb in range(n_base + 1):
            if rs.noninferiority_pvalue(kn, n_new, kb, n_base, margin, grid=60) < alpha:
                size += stats.binom.pmf(kn, n_new, pn) * stats.binom.pmf(kb, n_base, p_base)
    return size


@pytest.mark.parametrize("p_base", [0.95, 0.8])
def test_noninferiority_test_never_exceeds_alpha_on_the_null_boundary(p_base):
    # the asymptotic score test reaches 6.7% here at p_base = 0.95; the exact test must not exceed 5%
    size = _exact_size(p_base, 0.05, 20, 30, 0.05)
    assert size <= 0.05 + 1e-6
    assert size > 0.005  # and it is not trivially conservative


def test_noninferiority_detects_a_clear_regression_and_respects_the_margin():
    assert rs.noninferiority_pvalue(30, 50, 47, 50, 0.05) < 0.001
    # a 4-point drop with a 5-point allowance is no evidence of regression
    assert rs.noninferiority_pvalue(43, 50, 45, 50, 0.05) > 0.5
    # a larger margin can only make the test less eager to flag
    assert rs.noninferiority_pvalue(38, 50, 45, 50, 0.10) > rs.noninferiority_pvalue(38, 50, 45, 50, 0.0)


def test_holm_matches_statsmodels_and_hand_example():
    p = [0.01, 0.04, 0.03, 0.005]
    reject, adj = rs.holm(p, 0.05)
    ref_reject, ref_adj, _, _ = multipletests(p, alpha=0.05, method="holm")
    assert reject == list(ref_reject) and adj == pytest.approx(list(ref_adj))
    # by hand: sorted 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1 -> max-accumulated 0.06
    assert adj == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert reject == [True, False, False, True]
    r2, a2 = rs.holm([0.01, float("nan")], 0.05)
    assert r2 == [True, False] and math.isnan(a2[1])


@pytest.mark.parametrize("p0,p1,alpha,power", [(0.9, 0.85, 0.05, 0.8), (0.8, 0.6, 0.05, 0.9), (0.95, 0.85, 0.01, 0.8)])
def test_required_n_two_sample_matches_hand_formula(p0, p1, alpha, power):
    # Cohen's h; two groups of n: the statistic is h / sqrt(1/n + 1/n), so n = 2 ((z_{1-a} + z_power) / h)^2
    h = 2 * math.asin(math.sqrt(p0)) - 2 * math.asin(math.sqrt(p1))
    n_hand = 2 * ((stats.norm.ppf(1 - alpha) + stats.norm.ppf(power)) / h) ** 2
    assert rs.required_n_two_sample(p0, p1, alpha, power) == math.ceil(n_hand - 1e-9)
    n = rs.required_n_two_sample(p0, p1, alpha, power)
    assert rs.power_two_sample(p0, p1, n, n, alpha) >= power - 1e-9
    assert rs.power_two_sample(p0, p1, n - 1, n - 1, alpha) < power


def test_required_n_exact_binomial_matches_brute_force_binomtest():
    p0, p1, alpha, power = 0.9, 0.8, 0.05, 0.8
    n = rs.required_n_exact_binomial(p0, p1, alpha, power)

    def brute_power(m):
        # reject when scipy's exact one-sided binomtest says so
        return sum(stats.binom.pmf(k, m, p1) for k in range(m + 1) if stats.binomtest(k, m, p0, alternative="less").pvalue <= alpha)

    assert brute_power(n) >= power
    assert all(brute_power(m) < power for m in range(max(1, n - 40), n))
    assert rs.exact_binomial_power(n, p0, p1, alpha) == pytest.approx(brute_power(n), abs=1e-12)


def test_minimal_detectable_drop_inverts_power():
    d = rs.minimal_detectable_drop(0.9, 50, 50, 0.05, 0.8)
    assert rs.power_two_sample(0.9, 0.9 - d, 50, 50, 0.05) == pytest.approx(0.8, abs=1e-6)
    assert 0.1 < d < 0.3  # 50 episodes: only drops of ~20 points are reliably caught


def _n_two_sample_by_hand(p0, p1, alpha, power):
    """Cohen's h, equal groups, one-sided: n = 2 ((z_{1-a} + z_power) / h)^2, rounded up."""
    h = 2 * math.asin(math.sqrt(p0)) - 2 * math.asin(math.sqrt(p1))
    return math.ceil(2 * ((stats.norm.ppf(1 - alpha) + stats.norm.ppf(power)) / h) ** 2 - 1e-9)


def _n_exact_binomial_by_hand(p0, p1, alpha, power):
    """Smallest n whose exact one-sided binomial test (reject k <= c, P0(K <= c) <= alpha) has the power."""
    import numpy as np

    for n in range(1, 5000):
        k = np.arange(n + 1)
        c = k[stats.binom.cdf(k, n, p0) <= alpha]
        if c.size and stats.binom.cdf(c.max(), n, p1) >= power:
            return n
    raise AssertionError("not found")


def test_plan_episodes_cli(capsys):
    from vla_eval.cli.main import main

    assert main(["plan-episodes", "--p0", "0.9", "--delta", "0.05", "--power", "0.8", "--alpha", "0.05"]) == 0
    out = capsys.readouterr().out
    assert _n_two_sample_by_hand(0.9, 0.85, 0.05, 0.8) == 536 and _n_exact_binomial_by_hand(0.9, 0.85, 0.05, 0.8) == 270
    assert "1x as many baseline episodes): 536 episodes per task" in out
    assert "exact one-sided binomial test): 270 episodes per task" in out
    exact_power = stats.binom.cdf(max(k for k in range(271) if stats.binom.cdf(k, 270, 0.9) <= 0.05), 270, 0.85)
    assert f"(exact power {exact_power:.3f})" in out
    assert "sequential (SPRT, truncated at 540)" in out  # twice the exact-binomial n
    # 10 tasks: Holm's first step tests at 0.05 / 10; the allowed drop moves p0 to 0.85
    assert main(["plan-episodes", "--p0", "0.9", "--delta", "0.1", "--max-drop", "0.05", "--tasks", "10"]) == 0
    out = capsys.readouterr().out
    assert _n_two_sample_by_hand(0.85, 0.75, 0.005, 0.8) == 369
    assert "369 episodes per task" in out and "0.05 / 10 tasks (Holm first step) = 0.005" in out
    assert f"{_n_exact_binomial_by_hand(0.85, 0.75, 0.005, 0.8)} episodes per task" in out
    assert main(["plan-episodes", "--p0", "0.9", "--delta", "0.1", "--ratio", "3"]) == 0
    # unequal groups (baseline r times larger): n_new = (1 + 1/r) ((z_a + z_b) / h)^2
    h = 2 * math.asin(math.sqrt(0.9)) - 2 * math.asin(math.sqrt(0.8))
    n_r = math.ceil((1 + 1 / 3) * ((stats.norm.ppf(0.95) + stats.norm.ppf(0.8)) / h) ** 2 - 1e-9)
    assert f"3x as many baseline episodes): {n_r} episodes per task" in capsys.readouterr().out
    assert main(["plan-episodes", "--p0", "0.1", "--delta", "0.2"]) == 2  # cannot drop below 0


def test_exact_two_sided_edge_cases():
    assert math.isnan(rs.exact_two_sided(0, 0, 3, 5).p_value) and rs.exact_two_sided(0, 0, 3, 5).test == "auto"
    with pytest.raises(ValueError, match=r"test must be one of \('auto', 'boschloo', 'fisher', 'barnard'\), not 'z'"):
        rs.exact_two_sided(1, 2, 1, 2, "z")
    assert rs.exact_two_sided(5, 5, 3, 3).p_value == 1.0 and rs.exact_two_sided(0, 5, 0, 3, "fisher").p_value == 1.0
    # k_a + k_b = 2 = n_a - n_b: not a degenerate table
    ref = stats.boschloo_exact([[0, 2], [5, 1]]).pvalue
    assert rs.exact_two_sided(0, 5, 2, 3).p_value == pytest.approx(ref, rel=1e-6) and ref < 1
    assert rs.exact_two_sided(200, 200, 150, 200).test == "boschloo" and rs.exact_two_sided(201, 201, 150, 200).test == "fisher"


def test_noninferiority_large_runs_use_the_score_test():
    from statsmodels.stats.proportion import score_test_proportions_2indep

    # 3001 x 2001 outcomes exceed the exact grid: Farrington-Manning score test (statsmodels) with the margin
    ref = score_test_proportions_2indep(2640, 3000, 1850, 2000, value=-0.05, compare="diff", alternative="smaller").pvalue
    got = rs.noninferiority_pvalue(2640, 3000, 1850, 2000, 0.05)
    assert got == pytest.approx(ref, rel=1e-9) and got > 0.5  # a 4.5-point drop is within a 5-point margin
    ref0 = score_test_proportions_2indep(2640, 3000, 1850, 2000, value=0.0, compare="diff", alternative="smaller").pvalue
    assert rs.noninferiority_pvalue(2640, 3000, 1850, 2000, 0.0) == pytest.approx(ref0, rel=1e-9) and ref0 < got


def test_noninferiority_input_checks():
    with pytest.raises(ValueError, match=r"successes must lie within \[0, n\]"):
        rs.noninferiority_pvalue(6, 5, 1, 5)
    with pytest.raises(ValueError, match=r"margin must be in \[0, 1\)"):
        rs.noninferiority_pvalue(1, 5, 1, 5, 1.0)
    assert rs.noninferiority_pvalue(0, 0, 1, 5) == 1.0 and rs.noninferiority_pvalue(1, 5, 0, 0) == 1.0


def test_power_edge_cases_and_rate_checks():
    assert rs.power_two_sample(0.9, 0.8, 10, 0) == 0.0 and rs.power_two_sample(0.9, 0.8, 0, 10) == 0.0
    with pytest.raises(ValueError, match=r"need 0 < p1 < p0 <= 1 \(got p0=0.5, p1=0.6\)"):
        rs.required_n_two_sample(0.5, 0.6)
    assert rs.minimal_detectable_drop(0.9, 0, 10) == 1.0 and rs.minimal_detectable_drop(0.0, 10, 10) == 1.0
    assert rs.minimal_detectable_drop(0.5, 1, 1, alpha=0.001) == 1.0  # no drop is detectable with one episode each


def test_exact_binomial_power_includes_the_alpha_boundary():
    # n = 1, p0 = 0.5: P0(K <= 0) = 0.5 exactly; at alpha = 0.5 the test rejects K = 0, power = P1(K = 0) = 0.8
    assert rs.exact_binomial_power(1, 0.5, 0.2, 0.5) == pytest.approx(0.8)
    assert rs.exact_binomial_power(1, 0.5, 0.2, 0.49) == 0.0
    assert rs.exact_binomial_power(10, 0.9, 0.5, 0.05) == pytest.approx(stats.binom.cdf(6, 10, 0.5))  # P0(K<=6)=0.013, P0(K<=7)=0.07


@pytest.mark.parametrize("p0,p1,alpha,power", [(0.99, 0.5, 0.05, 0.8), (0.6, 0.2, 0.1, 0.5), (0.95, 0.9, 0.05, 0.9)])
def test_required_n_exact_binomial_is_the_first_n_by_brute_force(p0, p1, alpha, power):
    import numpy as np

    def brute(n):
        k = np.arange(n + 1)
        c = k[stats.binom.cdf(k, n, p0) <= alpha]
        return stats.binom.cdf(c.max(), n, p1) if c.size else 0.0

    first = next(n for n in range(1, 5000) if brute(n) >= power)
    assert rs.required_n_exact_binomial(p0, p1, alpha, power) == first
    with pytest.raises(ValueError, match=r"no n <= 3 reaches power"):
        rs.required_n_exact_binomial(0.9, 0.85, 0.05, 0.8, n_max=3)


def test_two_sided_sample_size_uses_z_half_alpha():
    h = 2 * math.asin(math.sqrt(0.9)) - 2 * math.asin(math.sqrt(0.7))
    n = 2 * ((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) / h) ** 2
    assert rs.required_n_two_sample(0.9, 0.7, 0.05, 0.8, one_sided=False) == math.ceil(n)
    assert rs.power_two_sample(0.9, 0.7, math.ceil(n), math.ceil(n), 0.05, one_sided=False) >= 0.8


def test_default_alpha_is_five_percent():
    assert rs.power_two_sample(0.9, 0.8, 50, 50) == rs.power_two_sample(0.9, 0.8, 50, 50, 0.05)
    h = 2 * math.asin(math.sqrt(0.9)) - 2 * math.asin(math.sqrt(0.8))
    # one-sided normal power on the arcsine scale: Phi(h / sqrt(2/n) - z_{0.95})
    assert rs.power_two_sample(0.9, 0.8, 50, 50) == pytest.approx(stats.norm.cdf(h / math.sqrt(2 / 50) - stats.norm.ppf(0.95)), abs=1e-6)
    assert rs.minimal_detectable_drop(0.9, 50, 50) == rs.minimal_detectable_drop(0.9, 50, 50, 0.05, 0.8)
