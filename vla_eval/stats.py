"""Interval estimates for success rates.

Wilson intervals (not the normal approximation) because evaluation counts are small
and rates sit near 0 or 1, where the normal interval collapses to zero width.
"""

from __future__ import annotations

from statsmodels.stats.proportion import proportion_confint


def wilson_interval(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= successes <= n:
        raise ValueError(f"successes={successes} must be within [0, n={n}]")
    lo, hi = proportion_confint(successes, n, alpha=alpha, method="wilson")
    return (max(0.0, float(lo)), min(1.0, float(hi)))
