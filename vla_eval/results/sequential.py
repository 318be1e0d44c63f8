"""Sequential regression test for a Bernoulli success rate (Wald's SPRT, truncated).

Why: a CI gate that runs a fixed 50 episodes per task spends most of them on checkpoints
whose verdict was obvious after 15. Wald's sequential probability ratio test looks at
the evidence after every episode and stops as soon as the verdict is settled, with both
error rates controlled, and on average needs far fewer episodes than a fixed-sample test
with the same errors.

Hypotheses (the baseline rate ``p0`` is treated as known, e.g. from a large baseline run):

* H0: p >= p0             (no regression)
* H1: p <= p0 - delta     (regression)

After n episodes with s successes the log-likelihood ratio of p1 = p0 - delta against p0 is
``s*log(p1/p0) + (n-s)*log((1-p1)/(1-p0))``. It stops with "regression" once it reaches
``log((1-beta)/alpha)`` and with "no_regression" once it falls to ``log(beta/(1-alpha))``
(Wald's bounds; their true error rates are at most about alpha and beta, usually below).
The likelihood ratio is monotone in p, so the type I error is largest at p = p0 and stays
below alpha for every p in H0.

Truncation: a run has a finite plan (``max_n``). If it is exhausted before a bound is
crossed the verdict is "no_regression" (truncated): stopping without rejecting can only
lower the false-alarm rate, at some cost in power. :meth:`SequentialTest.operating_characteristics`
computes the exact error rates and expected sample size of the truncated test by dynamic
programming over (episodes, successes), so the numbers are not just Wald's approximations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CONTINUE, REGRESSION, NO_REGRESSION = "continue", "regression", "no_regression"


@dataclass(frozen=True)
class OperatingCharacteristics:
    p: float
    p_regression: float
    p_no_regression: float
    expected_n: float


class SequentialTest:
    """Truncated SPRT; call :meth:`update` after each finished episode.

    >>> t = SequentialTest(p0=0.9, delta=0.2, alpha=0.05, beta=0.2, max_n=50)
    >>> t.update(True)
    'continue'
    """

    def __init__(self, p0: float, delta: float, alpha: float = 0.05, beta: float = 0.2, max_n: int | None = None):
        if not 0 < p0 < 1:
            raise ValueError(f"p0 must be in (0, 1), got {p0}")
        if not 0 < delta < p0:
            raise ValueError(f"delta must be in (0, p0={p0}), got {delta}")
        if not (0 < alpha < 1 and 0 < beta < 1 and alpha + beta < 1):
            raise ValueError("alpha and beta must be in (0, 1) with alpha + beta < 1")
        if max_n is not None and max_n < 1:
            raise ValueError("max_n must be >= 1")
        self.p0, self.p1, self.delta = p0, p0 - delta, delta
        self.alpha, self.beta, self.max_n = alpha, beta, max_n
        self.upper = math.log((1 - beta) / alpha)  # cross -> regression
        self.lower = math.log(beta / (1 - alpha))  # cross -> no regression
        self.step_success = math.log(self.p1 / self.p0)  # < 0
        self.step_failure = math.log((1 - self.p1) / (1 - self.p0))  # > 0
        self.n = 0
        self.successes = 0
        self.llr = 0.0
        self.decision = CONTINUE
        self.truncated = False

    def update(self, success: bool) -> str:
        """Add one episode outcome; returns "continue", "regression" or "no_regression".

        Once decided, further updates are ignored and return the decision.
        """
        if self.decision != CONTINUE:
            return self.decision
        self.n += 1
        self.successes += int(bool(success))
        self.llr += self.step_success if success else self.step_failure
        self.decision = self._decide(self.llr, self.n)
        if self.decision == NO_REGRESSION and self.llr > self.lower:
            self.truncated = True
        return self.decision

    def _decide(self, llr: float, n: int) -> str:
        if llr >= self.upper - 1e-12:
            return REGRESSION
        if llr <= self.lower + 1e-12:
            return NO_REGRESSION
        if self.max_n is not None and n >= self.max_n:
            return NO_REGRESSION
        return CONTINUE

    def operating_characteristics(self, p: float, max_n: int | None = None) -> OperatingCharacteristics:
        """Exact P(regression), P(no regression) and E[episodes] at true rate ``p``.

        Dynamic programming over the number of successes among the episodes so far,
        for the test truncated at ``max_n`` (default: this test's ``max_n``).
        """
        horizon = max_n or self.max_n
        if horizon is None:
            raise ValueError("operating_characteristics needs a truncation max_n")
        probs = np.array([1.0])  # P(still running, s successes) after n episodes
        p_reg = p_no = expected = 0.0
        for n in range(1, horizon + 1):
            nxt = np.zeros(n + 1)
            nxt[1:] += probs * p
            nxt[:-1] += probs * (1 - p)
            s = np.arange(n + 1)
            llr = s * self.step_success + (n - s) * self.step_failure
            reg = llr >= self.upper - 1e-12
            no = (llr <= self.lower + 1e-12) & ~reg
            if n >= horizon:
                no = ~reg
            p_reg += nxt[reg].sum()
            p_no += nxt[no].sum()
            expected += n * (nxt[reg].sum() + nxt[no].sum())
            nxt[reg | no] = 0.0
            probs = nxt
        return OperatingCharacteristics(p, float(p_reg), float(p_no), float(expected))

    def fixed_sample_n(self) -> int:
        """Episodes a one-shot exact binomial test needs for the same alpha and power (for comparison)."""
        from vla_eval.results.stats import required_n_exact_binomial

        return required_n_exact_binomial(self.p0, self.p1, self.alpha, 1 - self.beta)


def simulate_false_positive_rate(p0: float, delta: float, alpha: float, beta: float, max_n: int, runs: int, seed: int = 0, p: float | None = None) -> float:
    """Fraction of simulated runs at true rate ``p`` (default p0) that end in "regression"."""
    rng = np.random.default_rng(seed)
    outcomes = rng.random((runs, max_n)) < (p0 if p is None else p)
    flagged = 0
    for row in outcomes:
        test = SequentialTest(p0, delta, alpha, beta, max_n)
        for success in row:
            if test.update(bool(success)) != CONTINUE:
                break
        flagged += test.decision == REGRESSION
    return flagged / runs


def binomial_se(p: float, runs: int) -> float:
    return math.sqrt(p * (1 - p) / runs)


__all__ = [
    "CONTINUE",
    "REGRESSION",
    "NO_REGRESSION",
    "SequentialTest",
    "OperatingCharacteristics",
    "simulate_false_positive_rate",
    "binomial_se",
]
