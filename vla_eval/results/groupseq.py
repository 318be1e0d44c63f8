"""Group-sequential boundaries with error spending, by recursive numerical integration.

The statistics of a gated run (:mod:`vla_eval.results.gate`) are, at looks k = 1..K,
z statistics Z_k with information I_k whose joint law is (asymptotically) the
*canonical* one of Jennison & Turnbull (2000, ch. 3): Z_k ~ N(eta * sqrt(I_k), 1) and
corr(Z_j, Z_k) = sqrt(I_j / I_k) for j <= k. Equivalently the score S_k = Z_k sqrt(I_k)
has independent Gaussian increments. This holds even when part of the information
(a committed baseline) is all there at look 1: the estimate at look k is the efficient
one on a superset of the data of look j, which is all the canonical form needs.

Boundaries come from Lan & DeMets error spending: the efficacy (regression) bound at
look k spends alpha(t_k) - alpha(t_{k-1}) under eta = 0; the futility (no regression)
bound spends beta(t_k) - beta(t_{k-1}) under the design alternative eta = eta1. Crossing
probabilities are computed exactly for the Gaussian model by propagating the density of
S_k on a grid (Armitage, McPherson & Rowe 1969; J&T ch. 19), with Simpson weights.

Efficacy bounds are *non-binding*: they are computed as if futility stops never
happened, so the type I error stays at most alpha when a user resumes a run that
stopped for futility, or ignores a futility stop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

GRID_POINTS = 201
"""Simpson grid points per look (odd); 201 reproduces published O'Brien-Fleming bounds to 1e-4."""

_TAIL = 9.0
_SQRT2PI = math.sqrt(2 * math.pi)


def _pdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * x * x) / _SQRT2PI


def _sf(x) -> np.ndarray:
    return special.ndtr(-np.asarray(x))


def _cdf(x) -> np.ndarray:
    return special.ndtr(np.asarray(x))


def spending(name: str, t: np.ndarray | float, total: float) -> np.ndarray:
    """Cumulative error spent by information fraction ``t`` (0..1).

    ``obf``: Lan-DeMets O'Brien-Fleming type, 2 - 2 Phi(z_{1-total/2} / sqrt(t)) (spends
    almost nothing early). ``pocock``: Lan-DeMets Pocock type, total * ln(1 + (e - 1) t).
    ``hsd:G``: Hwang-Shih-DeCani with parameter G (G = -4 is close to OBF, 1 to Pocock).
    """
    t = np.clip(np.asarray(t, dtype=float), 0.0, 1.0)
    if name == "obf":
        with np.errstate(divide="ignore"):
            out = 2.0 - 2.0 * stats.norm.cdf(stats.norm.ppf(1 - total / 2) / np.sqrt(np.where(t > 0, t, 1e-300)))
        return np.where(t > 0, np.minimum(out, total), 0.0)
    if name == "pocock":
        return total * np.log1p((math.e - 1) * t)
    if name.startswith("hsd:"):
        g = float(name.split(":", 1)[1])
        if abs(g) < 1e-12:
            return total * t
        return total * (1 - np.exp(-g * t)) / (1 - math.exp(-g))
    raise ValueError(f"unknown spending function {name!r}: expected 'obf', 'pocock' or 'hsd:G'")


def check_spending_name(name: str) -> str:
    spending(name, 0.5, 0.05)
    return name


@dataclass
class _Stage:
    """Sub-density of S_k on the continuation region of look k (grid values and weights)."""

    s: np.ndarray
    w: np.ndarray  # Simpson weight x density


def _simpson(lo: float, hi: float, n: int = GRID_POINTS) -> tuple[np.ndarray, np.ndarray]:
    s = np.linspace(lo, hi, n)
    h = (hi - lo) / (n - 1)
    w = np.full(n, 2.0)
    w[1::2] = 4.0
    w[0] = w[-1] = 1.0
    return s, w * h / 3.0


class Recursion:
    """Propagates the Gaussian sub-density of the score through the looks.

    ``info`` are I_1 < ... < I_K; ``eta`` the standardised drift. Call :meth:`step`
    with the continuation interval (in z) of each look in turn.
    """

    def __init__(self, info: np.ndarray, eta: float):
        self.info = np.asarray(info, dtype=float)
        self.eta = float(eta)
        self.k = 0
        self.stage: _Stage | None = None

    def _increment(self) -> tuple[float, float]:
        prev = self.info[self.k - 1] if self.k > 0 else 0.0
        d = self.info[self.k] - prev
        return self.eta * d, math.sqrt(d)

    def cross_probs(self, lower_z: float, upper_z: float) -> tuple[float, float]:
        """P(not stopped before, Z_k >= upper) and P(not stopped before, Z_k < lower) at the next look."""
        mean, sd = self._increment()
        root = math.sqrt(self.info[self.k])
        up, lo = upper_z * root, lower_z * root
        if self.stage is None:
            return float(_sf((up - mean) / sd)), float(_cdf((lo - mean) / sd))
        s, w = self.stage.s, self.stage.w
        return (float(np.dot(w, _sf((up - s - mean) / sd))), float(np.dot(w, _cdf((lo - s - mean) / sd))))

    def step(self, lower_z: float, upper_z: float) -> None:
        """Move to the next look, keeping only paths that continue (lower <= Z_k < upper)."""
        mean, sd = self._increment()
        root = math.sqrt(self.info[self.k])
        centre = self.eta * self.info[self.k]
        spread = _TAIL * root
        lo = max(lower_z * root, centre - spread) if np.isfinite(lower_z) else centre - spread
        hi = min(upper_z * root, centre + spread) if np.isfinite(upper_z) else centre + spread
        if hi <= lo:
            self.stage = _Stage(np.array([lo]), np.array([0.0]))
        else:
            grid, weights = _simpson(lo, hi)
            if self.stage is None:
                dens = _pdf((grid - mean) / sd) / sd
            else:
                s, w = self.stage.s, self.stage.w
                dens = (_pdf((grid[:, None] - s[None, :] - mean) / sd) / sd) @ w
            self.stage = _Stage(grid, weights * dens)
        self.k += 1


def _solve(f, guess: float, lo: float, hi: float) -> float:
    """Root of the monotone ``f`` in [lo, hi]: bracket near ``guess`` first (a few evaluations, not thirty)."""
    for width in (0.5, 2.0):
        a, b = max(lo, guess - width), min(hi, guess + width)
        if f(a) * f(b) <= 0:
            return optimize.brentq(f, a, b, xtol=1e-7)
    return optimize.brentq(f, lo, hi, xtol=1e-7)


def efficacy_bounds(info: np.ndarray, alpha: float, spend: str, max_info: float | None = None) -> np.ndarray:
    """Upper z bounds u_k spending ``alpha`` under eta = 0, ignoring futility (non-binding).

    ``max_info`` (default the last look's) is the information at which all of alpha is
    spent; pass it to get the bounds of the first looks of a longer design.
    """
    info = np.asarray(info, dtype=float)
    top = info[-1] if max_info is None else float(max_info)
    t = info / top
    cum = spending(spend, t, alpha)
    if info[-1] >= top:
        cum[-1] = alpha
    rec = Recursion(info, 0.0)
    bounds = np.empty(len(info))
    spent = 0.0
    for k in range(len(info)):
        target = max(cum[k] - spent, 0.0)
        if target <= 1e-15:
            u = np.inf
        else:
            def excess(u: float) -> float:
                return rec.cross_probs(-np.inf, u)[0] - target

            guess = float(stats.norm.isf(target)) if k == 0 or not np.isfinite(bounds[k - 1]) else float(bounds[k - 1])
            u = _solve(excess, guess, -10.0, 40.0)
        spent += rec.cross_probs(-np.inf, u)[0] if np.isfinite(u) else 0.0
        bounds[k] = u
        if k < len(info) - 1:
            rec.step(-np.inf, u)
    return bounds


def futility_bounds(info: np.ndarray, upper: np.ndarray, beta: float, eta1: float, spend: str) -> np.ndarray:
    """Lower z bounds l_k spending ``beta`` under the alternative eta1, with the given upper bounds.

    A lower bound that would pass its upper bound is set equal to it: the look then
    forces a decision, and every later look is never reached.
    """
    info = np.asarray(info, dtype=float)
    t = info / info[-1]
    cum = spending(spend, t, beta)
    cum[-1] = beta
    rec = Recursion(info, eta1)
    lower = np.empty(len(info))
    spent = 0.0
    for k in range(len(info)):
        target = max(cum[k] - spent, 0.0)
        u = upper[k]
        if target <= 1e-15:
            lo = -np.inf
        else:
            def excess(x: float) -> float:
                return rec.cross_probs(x, u)[1] - target

            top = u if np.isfinite(u) else 40.0
            guess = lower[k - 1] if k > 0 and np.isfinite(lower[k - 1]) else eta1 * math.sqrt(info[k]) - 1.5
            lo = top if excess(top) <= 0 else _solve(excess, min(top, guess), -40.0, top)
        lower[k] = min(lo, u)
        spent += rec.cross_probs(lower[k], u)[1] if np.isfinite(lower[k]) else 0.0
        if k < len(info) - 1:
            rec.step(lower[k], u)
        if lower[k] >= u:
            lower[k + 1:] = upper[k + 1:] = np.nan
            break
    return lower


@dataclass(frozen=True)
class Operating:
    """Probabilities of each verdict and the expected information, for one drift."""

    eta: float
    p_regression: float
    p_no_regression: float
    p_undecided: float
    expected_fraction: float
    """E[information used] / I_K, with stopping at the first crossed look."""
    stop_probs: tuple[float, ...]


def operating(info: np.ndarray, lower: np.ndarray, upper: np.ndarray, eta: float, fractions: np.ndarray | None = None) -> Operating:
    """Verdict probabilities and the expected fraction of the plan used, at drift ``eta``.

    ``fractions`` (default I_k / I_K) is the share of the plan run by look k: pass the
    episode fractions to get expected episodes rather than expected information.
    """
    info = np.asarray(info, dtype=float)
    fr = info / info[-1] if fractions is None else np.asarray(fractions, dtype=float)
    rec = Recursion(info, eta)
    p_reg = p_no = expected = 0.0
    stops = []
    alive = 1.0
    for k in range(len(info)):
        u, lo = upper[k], lower[k]
        if np.isnan(u):
            break
        lo_eff = lo if np.isfinite(lo) else -np.inf
        up_p, lo_p = rec.cross_probs(lo_eff, u)
        if not np.isfinite(u):
            up_p = 0.0
        p_reg += up_p
        p_no += lo_p
        expected += fr[k] * (up_p + lo_p)
        stops.append(up_p + lo_p)
        alive -= up_p + lo_p
        last = k
        rec.step(lo_eff, u)
    und = max(alive, 0.0)
    expected += fr[last] * und
    return Operating(eta, p_reg, p_no, und, expected, tuple(stops))


def decided_by_last_look(lower: np.ndarray, upper: np.ndarray) -> bool:
    """True when the bounds meet at or before the last look (no undecided outcome)."""
    return bool(np.isnan(upper[-1]) or lower[-1] >= upper[-1])


def inflation_factor(looks: int, alpha: float, beta: float, alpha_spend: str, beta_spend: str, tol: float = 1e-3) -> float:
    """Maximum information of the K-look design, as a multiple of the fixed-sample one.

    With equally spaced looks, the smallest R for which alpha and beta spending bounds
    meet by the last look: a plan of R x (fixed-sample size) gives exactly the requested
    power with no undecided outcome (J&T ch. 7.2). Found by bisection.
    """
    nfix = (stats.norm.ppf(1 - alpha) + stats.norm.ppf(1 - beta)) ** 2
    frac = np.arange(1, looks + 1) / looks

    def meets(r: float) -> bool:
        info = frac * nfix * r
        upper = efficacy_bounds(info, alpha, alpha_spend)
        return decided_by_last_look(futility_bounds(info, upper, beta, 1.0, beta_spend), upper)

    lo, hi = 1.0, 1.0
    while not meets(hi):
        hi *= 1.25
    while hi - lo > tol:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if meets(mid) else (mid, hi)
    return hi
