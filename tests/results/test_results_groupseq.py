"""Error-spending boundaries: against published values and against brute-force Brownian motion."""

from __future__ import annotations

import numpy as np
import pytest

from vla_eval.results import groupseq


def test_obrien_fleming_and_pocock_bounds_match_published_values():
    # Lan-DeMets spending, K = 5 equally spaced looks, one-sided alpha 0.025
    # (Jennison & Turnbull 2000, Table 7.6; gsDesign sfLDOF / sfLDPocock give the same)
    info = np.linspace(0.2, 1.0, 5)
    obf = groupseq.efficacy_bounds(info, 0.025, "obf")
    np.testing.assert_allclose(obf, [4.877, 3.357, 2.680, 2.290, 2.031], atol=2e-3)
    pocock = groupseq.efficacy_bounds(info, 0.025, "pocock")
    np.testing.assert_allclose(pocock, [2.438, 2.427, 2.410, 2.397, 2.386], atol=2e-3)
    # one look is the fixed-sample test
    assert groupseq.efficacy_bounds(np.array([3.0]), 0.05, "hsd:-1")[0] == pytest.approx(1.6449, abs=1e-3)


def test_bounds_spend_alpha_and_beta_on_simulated_score_paths():
    """The recursion's crossing probabilities against 200k brute-force Gaussian random walks."""
    rng = np.random.default_rng(5)
    info = np.array([3.0, 5.0, 6.5, 9.0])  # unequal spacing
    upper = groupseq.efficacy_bounds(info, 0.05, "hsd:-1")
    lower = groupseq.futility_bounds(info, upper, 0.2, 0.9, "hsd:-1")
    for eta in (0.0, 0.9):
        steps = rng.normal(eta * np.diff(info, prepend=0.0), np.sqrt(np.diff(info, prepend=0.0)), size=(200_000, 4))
        z = np.cumsum(steps, axis=1) / np.sqrt(info)
        alive = np.ones(len(z), bool)
        reg = np.zeros(len(z), bool)
        nore = np.zeros(len(z), bool)
        for k in range(4):
            up = alive & (z[:, k] >= upper[k])
            lo = alive & ~up & (z[:, k] < lower[k])
            reg |= up
            nore |= lo
            alive &= ~(up | lo)
        op = groupseq.operating(info, lower, upper, eta)
        assert reg.mean() == pytest.approx(op.p_regression, abs=0.004)
        assert nore.mean() == pytest.approx(op.p_no_regression, abs=0.004)
    # without futility stops (non-binding bounds) the false-alarm rate is exactly the alpha spent
    steps = rng.normal(0.0, np.sqrt(np.diff(info, prepend=0.0)), size=(200_000, 4))
    z = np.cumsum(steps, axis=1) / np.sqrt(info)
    assert (z >= upper).any(axis=1).mean() == pytest.approx(0.05, abs=0.0025)
    assert groupseq.operating(info, lower, upper, 0.9).p_no_regression == pytest.approx(0.2, abs=1e-6)


def test_inflation_factor_matches_published_obrien_fleming_value():
    # with futility that spends nothing before the last look this is the efficacy-only OBF design,
    # whose maximum information at K = 5 is ~1.03x the fixed sample's (Jennison & Turnbull, Table 2.3)
    r = groupseq.inflation_factor(5, 0.05, 0.2, "obf", "hsd:-30")
    assert 1.02 < r < 1.05


def test_unknown_spending_function_is_rejected():
    with pytest.raises(ValueError, match="spending function"):
        groupseq.spending("linear", 0.5, 0.05)
