"""Sequential test: API, exact operating characteristics, false-positive rate by simulation."""

import math

import pytest

from vla_eval.results.sequential import CONTINUE, NO_REGRESSION, REGRESSION, SequentialTest, simulate_false_positive_rate


def test_update_api_and_wald_bounds():
    t = SequentialTest(p0=0.9, delta=0.2, alpha=0.05, beta=0.2)
    assert t.upper == pytest.approx(math.log(0.8 / 0.05)) and t.lower == pytest.approx(math.log(0.2 / 0.95))
    decisions = [t.update(False) for _ in range(10)]
    # each failure adds log(0.3/0.1) = 1.0986; log(16) = 2.77 -> regression at the 3rd failure
    assert decisions[:2] == [CONTINUE, CONTINUE] and decisions[2] == REGRESSION
    assert t.n == 3 and decisions[-1] == REGRESSION  # later updates are ignored
    t = SequentialTest(p0=0.9, delta=0.2, alpha=0.05, beta=0.2)
    # each success adds log(0.7/0.9) = -0.251; lower bound -1.558 -> 7 successes
    out = [t.update(True) for _ in range(7)]
    assert out[-1] == NO_REGRESSION and out[-2] == CONTINUE and not t.truncated


def test_truncation_gives_no_regression():
    t = SequentialTest(p0=0.9, delta=0.1, max_n=4)
    out = [t.update(s) for s in (True, False, True, True)]
    assert out[-1] == NO_REGRESSION and t.truncated


def test_rejects_bad_parameters():
    for kw in (dict(p0=1.0, delta=0.1), dict(p0=0.5, delta=0.6), dict(p0=0.5, delta=0.1, alpha=0.9, beta=0.2)):
        with pytest.raises(ValueError):
            SequentialTest(**kw)


def _wald(p0, delta, alpha, beta, max_n, outcomes):
    """Wald's truncated SPRT written out: 'regression' when the LLR of p0-delta vs p0 reaches
    log((1-beta)/alpha), 'no_regression' at log(beta/(1-alpha)) or when max_n runs out."""
    p1 = p0 - delta
    upper, lower = math.log((1 - beta) / alpha), math.log(beta / (1 - alpha))
    llr = 0.0
    for n, ok in enumerate(outcomes[:max_n], 1):
        llr += math.log(p1 / p0) if ok else math.log((1 - p1) / (1 - p0))
        if llr >= upper - 1e-12:
            return "regression", n
        if llr <= lower + 1e-12:
            return "no_regression", n
    return "no_regression", min(max_n, len(outcomes))


def test_simulation_is_the_written_out_sprt_on_the_same_draws():
    import numpy as np

    p0, delta, alpha, beta, max_n, runs = 0.85, 0.1, 0.05, 0.2, 200, 2000
    fpr = simulate_false_positive_rate(p0, delta, alpha, beta, max_n, runs, seed=1)
    draws = np.random.default_rng(1).random((runs, max_n)) < p0  # the documented draws: uniform < p
    by_hand = sum(_wald(p0, delta, alpha, beta, max_n, row)[0] == "regression" for row in draws) / runs
    assert fpr == by_hand
    se = math.sqrt(alpha * (1 - alpha) / runs)
    assert fpr <= alpha + 3 * se  # controlled at the boundary of H0
    assert fpr > 0.005  # and not trivially conservative


def test_operating_characteristics_equal_full_enumeration():
    import itertools

    p0, delta, alpha, beta, max_n = 0.8, 0.3, 0.1, 0.2, 12
    t = SequentialTest(p0, delta, alpha, beta, max_n)
    for p in (0.8, 0.5, 0.65):
        p_reg = e_n = 0.0
        for seq in itertools.product((True, False), repeat=max_n):
            prob = math.prod(p if s else 1 - p for s in seq)
            verdict, used = _wald(p0, delta, alpha, beta, max_n, seq)
            p_reg += prob * (verdict == "regression")
            e_n += prob * used
        oc = t.operating_characteristics(p)
        assert oc.p_regression == pytest.approx(p_reg, abs=1e-12)
        assert oc.p_no_regression == pytest.approx(1 - p_reg, abs=1e-12)
        assert oc.expected_n == pytest.approx(e_n, abs=1e-9)


def test_update_decisions_match_the_written_out_sprt():
    import numpy as np

    rng = np.random.default_rng(5)
    for _ in range(200):
        row = rng.random(40) < rng.uniform(0.5, 0.95)
        t = SequentialTest(0.9, 0.15, 0.05, 0.2, max_n=30)
        for s in row:
            if t.update(bool(s)) != CONTINUE:
                break
        assert (t.decision, t.n) == _wald(0.9, 0.15, 0.05, 0.2, 30, row)


def test_false_positive_rate_inside_h0_is_lower():
    p0, delta, alpha, beta, max_n, runs = 0.85, 0.1, 0.05, 0.2, 200, 2000
    fpr = simulate_false_positive_rate(p0, delta, alpha, beta, max_n, runs, seed=1)
    assert simulate_false_positive_rate(p0, delta, alpha, beta, max_n, runs, seed=2, p=0.9) < fpr


def test_power_and_savings_against_fixed_sample():
    t = SequentialTest(0.85, 0.1, 0.05, 0.2, max_n=400)
    h1 = t.operating_characteristics(0.75)
    assert h1.p_regression >= 0.75  # ~1 - beta
    assert simulate_false_positive_rate(0.85, 0.1, 0.05, 0.2, 400, 1000, seed=3, p=0.75) == pytest.approx(h1.p_regression, abs=0.05)
    n_fixed = t.fixed_sample_n()
    assert t.operating_characteristics(0.85).expected_n < 0.8 * n_fixed
    assert h1.expected_n < 0.8 * n_fixed


def test_operating_characteristics_probabilities_sum_to_one():
    oc = SequentialTest(0.7, 0.2, 0.1, 0.1, max_n=30).operating_characteristics(0.6)
    assert oc.p_regression + oc.p_no_regression == pytest.approx(1.0)
    assert 1 <= oc.expected_n <= 30
