"""The gated run: a group-sequential regression test that stops a run once it is settled.

Hypotheses (the same as ``vla-eval check``): with ``D = max_drop``,

    H0: no (task, split) cell dropped by more than D        ->  "no regression"
    H1: the run is worse than the baseline by more than D   ->  "regression"

Two statistics are watched at K fixed looks, each a two-sample z statistic (the
baseline's counts are data, so its own sampling noise is in every test):

* **primary**, stratified by cell: the plan-weighted mean drop
  ``theta = sum_c w_c (p_base_c - p_new_c)`` (w_c = the cell's share of the plan, so
  for a balanced plan theta is the drop of the suite-mean rate the tables report),
  estimated from each cell's own rate. A task-mix shift between looks cannot fake a
  drop, because cells are never pooled. Z = (theta_hat - D) / se. Its efficacy bounds
  spend ``(1 - cell_alpha_share) * alpha`` at theta = D; its futility bounds spend
  ``beta = 1 - power`` at the alternative theta = D + detect_drop.
* **per cell**, so a drop in one task cannot hide in the mean: each cell's own z
  statistic against D (continuity-corrected), with O'Brien-Fleming-type efficacy bounds
  spending ``cell_alpha_share * alpha / C``.

Verdict at look k: *regression* if the primary or any cell crosses its efficacy bound;
*no regression* if the primary is below its futility bound and no cell's own z reaches
``cell_futility_z`` (before the last look); else continue. At the last
look, a z between the bounds is *undecided* (the plan was too small for the requested
power). Family-wise false-alarm probability <= alpha by the union bound over the
primary and the C cell tests, each of which controls its own share; efficacy bounds are
non-binding, so resuming a run past a futility stop cannot raise it.

Both the runner (``vla-eval run --gate``) and ``vla-eval check`` on a gated run folder
call :func:`evaluate` on the episodes in completion order, so they reach the same
verdict at the same look. Look k is taken at the first prefix of at least
``look_episodes[k]`` finished episodes in which every cell has an episode.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from vla_eval.errors import ConfigError
from vla_eval.results import groupseq
from vla_eval.results.stats import effective_n, wilson_bounds
from vla_eval.tables import MEAN_ROW

GATE_FORMAT = "vla-eval-gate"
GATE_VERSION = 1

REGRESSION, NO_REGRESSION, UNDECIDED, CONTINUE = "regression", "no_regression", "undecided", "continue"

EXIT_NO_REGRESSION = 0
EXIT_REGRESSION = 1
EXIT_UNDECIDED = 5
"""A gated run that reached the end of its plan (or stopped incomplete) without a verdict.
2 stays "bad input" as everywhere else in the CLI."""

RCI_LEVEL = 0.95


@dataclass
class GateConfig:
    """What the user asked for with ``--gate BASELINE.json`` and its options."""

    baseline: Path
    max_drop: float = 0.05
    alpha: float = 0.05
    power: float = 0.8
    detect_drop: float | None = None
    """Drop beyond max_drop at which ``power`` applies (default: max_drop, i.e. a true drop of 2 x max_drop)."""
    looks: int = 10
    alpha_spending: str = "hsd:-1"
    beta_spending: str = "hsd:1"
    cell_alpha_share: float = 0.25
    cell_futility_z: float = 1.5
    """A cell whose own z is at or above this blocks an early "no regression" stop: a large
    drop in one task keeps the run going until its per-cell test can settle it. Futility
    rules never raise the false-alarm rate (the efficacy bounds are non-binding)."""
    cell_spending: str = "obf"
    """O'Brien-Fleming-type for the per-cell tests: they spend almost nothing while a cell
    has few episodes, where the normal approximation of a single cell's tail is poorest."""

    def validate(self) -> None:
        if not 0 < self.alpha < 0.5:
            raise ConfigError(f"--alpha must be in (0, 0.5), got {self.alpha}")
        if not 0 <= self.max_drop < 1:
            raise ConfigError(f"--max-drop must be in [0, 1), got {self.max_drop}")
        if not 0.5 <= self.power < 1:
            raise ConfigError(f"--power must be in [0.5, 1), got {self.power}")
        if self.detect_drop is not None and not 0 < self.detect_drop < 1:
            raise ConfigError(f"--detect-drop must be in (0, 1), got {self.detect_drop}")
        if self.resolved_detect_drop <= 0:
            raise ConfigError("--gate needs --max-drop > 0 or an explicit --detect-drop > 0 (the drop the gate must catch)")
        if self.max_drop + self.resolved_detect_drop >= 1:
            raise ConfigError(f"--max-drop {self.max_drop:g} plus --detect-drop {self.resolved_detect_drop:g} (default: "
                              "--max-drop) must be below 1: a success rate cannot drop by 100 pts or more")
        if not 1 <= self.looks <= 50:
            raise ConfigError(f"--looks must be in 1..50, got {self.looks}")
        if not 0 <= self.cell_alpha_share < 1:
            raise ConfigError(f"cell_alpha_share must be in [0, 1), got {self.cell_alpha_share}")
        for name in (self.alpha_spending, self.beta_spending, self.cell_spending):
            try:
                groupseq.check_spending_name(name)
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc

    @property
    def resolved_detect_drop(self) -> float:
        return self.max_drop if self.detect_drop is None else self.detect_drop


# ------------------------------------------------------------------ design


def _q(k: float, n: float) -> float:
    """Rate shrunk by half an episode: a 10/10 cell is not evidence of a zero variance."""
    return (k + 0.5) / (n + 1.0)


def look_schedule(plan_episodes: int, looks: int, cells: int) -> list[int]:
    """Episodes finished at each look: equally spaced, the first after one round over the cells."""
    k = max(1, min(looks, plan_episodes // max(cells, 1)))
    marks = sorted({max(cells, int(math.ceil(plan_episodes * j / k))) for j in range(1, k + 1)})
    marks[-1] = plan_episodes
    return marks


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def build_design(cfg: GateConfig, baseline: dict[str, Any], plan_cells: Sequence[tuple[str, str, int]],
                 baseline_sha256: str = "", with_operating: bool = True) -> dict[str, Any]:
    """The full design of a gated run, as JSON-ready data written into the run record.

    ``plan_cells`` are (task, split, planned episodes) of the run's plan; cells without
    a baseline are run but not tested.
    """
    cfg.validate()
    base = baseline["counts"]
    cells = [(t, s, n) for t, s, n in plan_cells if t in base.get(s, {}) and n > 0]
    if not cells:
        raise ConfigError(f"{cfg.baseline}: no (task, split) cell of the plan is in the baseline (tasks/splits differ)")
    untested = [f"{t}/{s}" for t, s, n in plan_cells if (t, s, n) not in cells]
    total = sum(n for _, _, n in cells)
    d, delta = cfg.max_drop, cfg.resolved_detect_drop
    beta = 1.0 - cfg.power
    marks = look_schedule(total, cfg.looks, len(cells))
    frac = np.array(marks, dtype=float) / total
    alpha_primary = cfg.alpha * (1.0 - cfg.cell_alpha_share)
    alpha_cell = cfg.alpha * cfg.cell_alpha_share / len(cells)

    rows, var_base, var_new = [], 0.0, 0.0
    cell_info, cell_ratio = [], []
    for task, split, n_plan in cells:
        kb, nb = base[split][task]["successes"], base[split][task]["episodes"]
        w = n_plan / total
        qb = _q(kb, nb)
        vb = qb * (1 - qb) / nb
        r = min(max(qb - d, 0.01), 0.99)
        vn = r * (1 - r)
        var_base += w * w * vb
        var_new += w * w * vn / n_plan
        rows.append({"task": task, "split": split, "k_base": kb, "n_base": nb, "n_plan": n_plan, "weight": w})
        cell_info.append(1.0 / (vb + vn / (n_plan * frac)))
        cell_ratio.append(vb / (vn / n_plan))
    info = 1.0 / (var_base + var_new / frac)
    upper = groupseq.efficacy_bounds(info, alpha_primary, cfg.alpha_spending)
    lower = groupseq.futility_bounds(info, upper, beta, delta, cfg.beta_spending)
    # repeated-CI constants: only shown, never decide; simulations skip them
    rci = (groupseq.efficacy_bounds(info, (1 - RCI_LEVEL) / 2, cfg.alpha_spending) if with_operating
           else np.full(len(marks), np.nan))
    for row, ci, ratio in zip(rows, cell_info, cell_ratio):
        row["info"] = ci.tolist()
        row["efficacy"] = (_cell_bounds(ratio, tuple(frac.tolist()), alpha_cell, cfg.cell_spending) if cfg.cell_alpha_share > 0
                           else [None] * len(marks))
    episode_frac = frac
    ops = {}
    for label, drop in dict.fromkeys([("drop_0", 0.0), ("drop_max", d), ("drop_alternative", d + delta), ("drop_2x_max", 2 * d)]):
        if not with_operating or (label == "drop_2x_max" and abs(2 * d - d - delta) < 1e-12):
            continue
        op = groupseq.operating(info, lower, upper, drop - d, episode_frac)
        ops[label] = {"true_drop": drop, "p_regression": op.p_regression, "p_no_regression": op.p_no_regression,
                      "p_undecided": op.p_undecided, "expected_fraction_of_plan": float(op.expected_fraction)}
    return {
        "format": GATE_FORMAT,
        "version": GATE_VERSION,
        "baseline": {"path": str(cfg.baseline), "sha256": baseline_sha256, "run_id": baseline.get("run_id"),
                     "policy": (baseline.get("policy") or {}).get("name")},
        "config": {**asdict(cfg), "baseline": str(cfg.baseline), "detect_drop": delta},
        "alpha_primary": alpha_primary,
        "alpha_cell": alpha_cell,
        "plan_episodes": total,
        "look_episodes": marks,
        "cells": rows,
        "untested_cells": untested,
        "primary": {"info": info.tolist(), "efficacy": _jsonable(upper), "futility": _jsonable(lower), "rci": _jsonable(rci)},
        "operating": ops,
        "statistic": "stratified two-sample score z: (sum_c w_c (p_base_c - p_new_c) - max_drop) / se, "
                     "se from each cell's Farrington-Manning rates restricted to p_base_c - p_new_c = max_drop; "
                     "per cell the same z with w_c = 1",
    }


def _cell_bounds(ratio: float, fractions: tuple[float, ...], alpha: float, spend: str) -> list:
    """A cell's efficacy bounds at episode fractions ``fractions`` of its plan.

    A cell's information is proportional to 1 / (ratio + 1 / f_k), with ratio = (baseline
    variance) / (variance of the full plan's new episodes): that one number fixes the
    bounds. It is a plug-in estimate, so rounding it to two significant digits costs
    nothing and lets cells (and simulated baselines) share one computation.
    """
    return _cached_bounds(float(f"{ratio:.2g}"), fractions, alpha, spend)


@functools.lru_cache(maxsize=4096)
def _cached_bounds(ratio: float, fractions: tuple[float, ...], alpha: float, spend: str) -> list:
    f = np.asarray(fractions)
    return groupseq.efficacy_bounds(1.0 / (ratio + 1.0 / f), alpha, spend).tolist()


def _jsonable(a: np.ndarray) -> list:
    return [None if not np.isfinite(x) else float(x) for x in np.asarray(a, dtype=float)]


def _num(x) -> float:
    return float("nan") if x is None else float(x)


# ------------------------------------------------------------------ evaluation


@dataclass
class Look:
    look: int
    episodes: int
    z: float
    efficacy: float
    futility: float
    drop: float
    drop_ci: tuple[float, float]
    flagged_cells: list[str]
    decision: str


@dataclass
class GateState:
    design: dict[str, Any]
    looks: list[Look] = field(default_factory=list)
    decision: str = CONTINUE
    """``regression`` / ``no_regression`` / ``undecided`` once settled, else ``continue``."""
    episodes_seen: int = 0
    stop_reason: str = ""

    @property
    def settled(self) -> bool:
        return self.decision != CONTINUE

    @property
    def decisive_look(self) -> Look | None:
        return self.looks[-1] if self.settled and self.looks else None

    @property
    def exit_code(self) -> int:
        return {REGRESSION: EXIT_REGRESSION, NO_REGRESSION: EXIT_NO_REGRESSION}.get(self.decision, EXIT_UNDECIDED)

    def to_dict(self) -> dict[str, Any]:
        look = self.decisive_look
        return {
            "decision": self.decision,
            "exit_code": self.exit_code,
            "stop_reason": self.stop_reason,
            "looks_taken": len(self.looks),
            "episodes_at_decision": look.episodes if look else None,
            "episodes_recorded": self.episodes_seen,
            "plan_episodes": self.design["plan_episodes"],
            "looks": [asdict(x) for x in self.looks],
        }


_CODES = {0: CONTINUE, 1: REGRESSION, 2: NO_REGRESSION, 3: UNDECIDED}


@dataclass
class _Arrays:
    """The design's numbers as arrays, for fast evaluation of many runs at once."""

    kb: np.ndarray
    nb: np.ndarray
    w: np.ndarray
    d: float
    upper: np.ndarray
    lower: np.ndarray
    rci: np.ndarray
    cell_upper: np.ndarray  # (K, C), nan where a cell has no bound
    marks: list[int]
    cell_futility_z: float = float("inf")

    @classmethod
    def of(cls, design: dict[str, Any]) -> "_Arrays":
        cells = design["cells"]
        prim = design["primary"]
        return cls(
            kb=np.array([c["k_base"] for c in cells], dtype=float),
            nb=np.array([c["n_base"] for c in cells], dtype=float),
            w=np.array([c["weight"] for c in cells], dtype=float),
            d=float(design["config"]["max_drop"]),
            upper=np.array([_num(x) for x in prim["efficacy"]]),
            lower=np.array([_num(x) for x in prim["futility"]]),
            rci=np.array([_num(x) for x in prim["rci"]]),
            cell_upper=np.array([[_num(x) for x in c["efficacy"]] for c in cells], dtype=float).T.reshape(len(prim["efficacy"]), len(cells)),
            marks=list(design["look_episodes"]),
            cell_futility_z=float(design["config"].get("cell_futility_z", float("inf"))),
        )


def restricted_rates(x1, n1, x2, n2, delta: float):
    """Maximum-likelihood rates (p1, p2) under p1 - p2 = delta (Farrington & Manning 1990, closed form).

    The score test's variance comes from these rather than from the observed rates: the
    Wald variance of an observed 0/3 is 0, which makes small cells look far more
    certain than they are (measured: a gate with Wald variances raised its false-alarm
    rate from 5% to 10% on 10-episode cells).
    """
    p1, p2 = x1 / n1, x2 / n2
    theta = n2 / n1
    a = 1 + theta
    b = -(1 + theta + p1 + theta * p2 + delta * (theta + 2))
    c = delta ** 2 + delta * (2 * p1 + theta + 1) + p1 + theta * p2
    d = -p1 * delta * (1 + delta)
    v = b ** 3 / (27 * a ** 3) - b * c / (6 * a ** 2) + d / (2 * a)
    u = np.sign(v) * np.sqrt(np.maximum(b ** 2 / (9 * a ** 2) - c / (3 * a), 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        w = (np.pi + np.arccos(np.clip(np.where(u != 0, v / u ** 3, 0.0), -1, 1))) / 3
    r1 = np.clip(2 * u * np.cos(w) - b / (3 * a), 0.0, 1.0)
    return r1, np.clip(r1 - delta, 0.0, 1.0)


def decide(a: _Arrays, k: int, kn: np.ndarray, m: np.ndarray):
    """Decision at look ``k`` (0-based) for runs with new-run successes ``kn`` of ``m`` per cell.

    ``kn`` and ``m`` are (R, C) (or broadcastable); returns (codes (R,), z, drop, se, flagged (R, C)).
    One function serves the runner, ``check`` and the simulations, so all three decide alike.
    """
    drop_c = a.kb / a.nb - kn / m
    pb, pn = restricted_rates(a.kb, a.nb, kn, m, a.d)
    var_c = np.maximum(pb * (1 - pb) / a.nb + pn * (1 - pn) / m, 1e-12)
    drop = drop_c @ a.w
    se = np.sqrt(var_c @ (a.w * a.w))
    z = (drop - a.d) / se
    last = k == len(a.marks) - 1
    with np.errstate(invalid="ignore"):
        # continuity-corrected toward "no regression": one cell's binomial tail is heavier
        # than the normal one at the small per-cell alpha (measured 6% vs 5% at p = 0.9, 26 episodes)
        cell_z = (drop_c - a.d - (0.5 / a.nb + 0.5 / m)) / np.sqrt(var_c)
        flagged = cell_z >= a.cell_upper[k]
        reg = (z >= a.upper[k]) | flagged.any(axis=-1)
        no = ~reg & (z < a.lower[k])
        if not last:
            no &= (cell_z < a.cell_futility_z).all(axis=-1)
    codes = np.where(reg, 1, np.where(no, 2, 3 if last else 0))
    return codes, z, drop, se, flagged


def evaluate(design: dict[str, Any], outcomes: Iterable[tuple[str, str, bool]]) -> GateState:
    """Replay finished episodes (task, split, success) in completion order through the looks.

    Stops at the first decisive look; episodes after it (in flight at the stop, or run
    later by ``--resume``) do not change the verdict.
    """
    cells = design["cells"]
    names = [f"{c['task']}/{c['split']}" for c in cells]
    index = {(c["task"], c["split"]): i for i, c in enumerate(cells)}
    a = _Arrays.of(design)
    state = GateState(design)
    kn = np.zeros(len(cells))
    m = np.zeros(len(cells))
    seen = look = 0
    for task, split, success in outcomes:
        i = index.get((task, split))
        if i is None:
            continue
        seen += 1
        kn[i] += bool(success)
        m[i] += 1
        if state.settled or look >= len(a.marks) or seen < a.marks[look] or (m == 0).any():
            continue
        codes, z, drop, se, flagged = decide(a, look, kn[None, :], m[None, :])
        c = a.rci[look]
        state.looks.append(Look(
            look + 1, seen, float(z[0]), float(a.upper[look]), float(a.lower[look]), float(drop[0]),
            (float(drop[0] - c * se[0]), float(drop[0] + c * se[0])),
            [n for n, f in zip(names, flagged[0]) if f], _CODES[int(codes[0])],
        ))
        state.decision = state.looks[-1].decision
        look += 1
    state.episodes_seen = seen
    n_looks = len(a.marks)
    if state.settled:
        last = state.looks[-1]
        state.stop_reason = {
            REGRESSION: f"regression settled at look {last.look} of {n_looks} after {last.episodes} episodes",
            NO_REGRESSION: f"no regression settled at look {last.look} of {n_looks} after {last.episodes} episodes",
            UNDECIDED: "the full plan ran without crossing a bound (plan too small for the requested power)",
        }[state.decision]
    else:
        state.stop_reason = f"run incomplete: {seen} of {design['plan_episodes']} planned episodes, {len(state.looks)} looks taken"
    return state


def balanced_cell_counts(design: dict[str, Any]) -> np.ndarray:
    """(K, C) episodes of each cell finished at each look when episodes finish in balanced (round-robin) order."""
    cells = design["cells"]
    order = sorted((i, c) for c, cell in enumerate(cells) for i in range(cell["n_plan"]))
    cell_of = np.array([c for _, c in order])
    return np.stack([np.bincount(cell_of[:n], minlength=len(cells)) for n in design["look_episodes"]]).astype(float)


@dataclass(frozen=True)
class SimulatedOC:
    p_regression: float
    p_no_regression: float
    p_undecided: float
    mean_episodes: float
    runs: int
    se_regression: float
    """Monte-Carlo standard error of p_regression: runs against one drawn baseline share its
    noise, so it comes from the spread between baselines, not from the run count."""
    se_no_regression: float


def simulate(design: dict[str, Any], p_new: Sequence[float], runs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised gated runs with true per-cell rates ``p_new`` against the design's baseline counts.

    Returns (decision codes, episodes used) per simulated run; episodes finish in the
    balanced order the runner launches them in.
    """
    a = _Arrays.of(design)
    counts = balanced_cell_counts(design)
    p = np.asarray(p_new, dtype=float)
    kn = np.zeros((runs, len(p)))
    prev = np.zeros(len(p))
    codes = np.zeros(runs, dtype=int)
    used = np.full(runs, float(design["plan_episodes"]))
    for k, mk in enumerate(counts):
        kn += rng.binomial((mk - prev).astype(int), p, size=(runs, len(p)))
        prev = mk
        live = codes == 0
        if not live.any():
            break
        c, *_ = decide(a, k, kn[live], np.broadcast_to(mk, kn[live].shape))
        idx = np.flatnonzero(live)
        codes[idx] = c
        used[idx[c != 0]] = a.marks[k]
    return codes, used


def simulate_oc(design_for_baseline, p_base: Sequence[float], n_base: Sequence[int], p_new: Sequence[float],
                baselines: int, runs_per_baseline: int, seed: int = 0) -> SimulatedOC:
    """Operating characteristics with the baseline's sampling noise: draw baseline counts, design, run.

    ``design_for_baseline(counts)`` builds the design for baseline counts (list of k per
    cell), as the runner would from a committed baseline file.
    """
    rng = np.random.default_rng(seed)
    all_codes, all_used = [], []
    for _ in range(baselines):
        kb = rng.binomial(np.asarray(n_base), np.asarray(p_base))
        design = design_for_baseline(kb)
        codes, used = simulate(design, p_new, runs_per_baseline, rng)
        all_codes.append(codes)
        all_used.append(used)
    per_reg = np.array([(c == 1).mean() for c in all_codes])
    per_no = np.array([(c == 2).mean() for c in all_codes])
    codes, used = np.concatenate(all_codes), np.concatenate(all_used)

    def se(per: np.ndarray, p: float) -> float:
        within = p * (1 - p) / len(codes)
        between = per.var(ddof=1) / len(per) if len(per) > 1 else 0.0
        return float(math.sqrt(max(within, between)))

    return SimulatedOC(float((codes == 1).mean()), float((codes == 2).mean()), float((codes == 3).mean()),
                       float(used.mean()), len(codes), se(per_reg, float(per_reg.mean())), se(per_no, float(per_no.mean())))


# ------------------------------------------------------------------ intervals


def repeated_wilson(k: int, n: int, fraction: float, design: dict[str, Any]) -> tuple[float, float]:
    """95% repeated confidence interval for one cell's success rate after ``n`` of its episodes.

    A Wilson score interval whose critical value is the two-sided group-sequential
    bound at the cell's information fraction (the design's looks up to ``fraction``
    plus one at ``fraction``), so it keeps its coverage although the run stopped on a
    data-dependent look (repeated CIs, Jennison & Turnbull ch. 9).
    """
    if n <= 0:
        return (float("nan"), float("nan"))
    return wilson_bounds(k / n, n, rci_constant(fraction, design))


def rci_constant(fraction: float, design: dict[str, Any]) -> float:
    marks = np.array(design["look_episodes"], dtype=float) / design["plan_episodes"]
    fraction = min(max(fraction, 1e-6), 1.0)
    t = np.append(marks[marks < fraction - 1e-9], fraction)
    spend = design["config"]["alpha_spending"]
    return float(groupseq.efficacy_bounds(t, (1 - RCI_LEVEL) / 2, spend, max_info=1.0)[-1])


def sequential_summary(summary, design: dict[str, Any]):
    """The run's summary frame with Wilson intervals replaced by repeated CIs (labelled by the caller)."""
    out = summary.copy()
    plan = {(c["task"], c["split"]): c["n_plan"] for c in design["cells"]}
    per_split: dict[str, int] = {}
    for c in design["cells"]:
        per_split[c["split"]] = per_split.get(c["split"], 0) + c["n_plan"]
    for i, row in out.iterrows():
        n_plan = plan.get((row["task"], row["split"])) or per_split.get(row["split"])
        if not n_plan:
            continue
        fraction = int(row["n"]) / n_plan
        if row["task"] == MEAN_ROW:
            # the mean of task rates, whose cells stopped at different counts: its own effective n
            ns = out[(out["split"] == row["split"]) & (out["task"] != MEAN_ROW)]["n"]
            lo, hi = wilson_bounds(float(row["rate"]), effective_n(list(ns)), rci_constant(fraction, design))
        else:
            lo, hi = repeated_wilson(int(row["successes"]), int(row["n"]), fraction, design)
        out.at[i, "ci_low"], out.at[i, "ci_high"] = lo, hi
    out["interval"] = "95% repeated CI (group-sequential)"
    return out


# ------------------------------------------------------------------ text


def describe(state: GateState) -> str:
    """Human-readable verdict, design and per-look trace (printed by run and check)."""
    des = state.design
    cfg = des["config"]
    look = state.decisive_look
    n_at = look.episodes if look else state.episodes_seen
    lines = [
        f"gated run against baseline {des['baseline'].get('run_id')} ({des['baseline'].get('path')}, sha256 {des['baseline'].get('sha256', '')[:12]})",
        f"H0: no cell drops more than {100 * cfg['max_drop']:g} pts; alpha {cfg['alpha']:g} "
        f"(mean-drop test {des['alpha_primary']:.3g}, each of {len(des['cells'])} cells {des['alpha_cell']:.2g}); "
        f"power {cfg['power']:g} at a mean drop of {100 * (cfg['max_drop'] + cfg['detect_drop']):g} pts; "
        f"{len(des['look_episodes'])} looks, spending {cfg['alpha_spending']} / {cfg['beta_spending']}",
        "",
        "| look | episodes | mean drop pts [95% repeated CI] | z | regression if z >= | no regression if z < | decision |",
        "|---|---|---|---|---|---|---|",
    ]
    for x in state.looks:
        lines.append(
            f"| {x.look} | {x.episodes} | {100 * x.drop:+.1f} [{_pts(x.drop_ci[0])}, {_pts(x.drop_ci[1])}] | {x.z:.2f} | "
            f"{_b(x.efficacy)} | {_b(x.futility)} | {x.decision}{' (' + ', '.join(x.flagged_cells) + ')' if x.flagged_cells else ''} |"
        )
    lines.append("")
    verdict = {REGRESSION: "REGRESSION (exit 1)", NO_REGRESSION: "no regression (exit 0)", UNDECIDED: "UNDECIDED (exit 5)"}
    lines.append(f"gate: stopped after {n_at} of {des['plan_episodes']} planned episodes ({state.stop_reason})"
                 if state.settled else f"gate: {state.stop_reason}")
    if state.episodes_seen > n_at:
        lines.append(f"gate: {state.episodes_seen - n_at} more episodes were recorded after the decisive look "
                     "(in flight at the stop, or run later by --resume); they do not change the verdict")
    lines.append(f"RESULT: {verdict.get(state.decision, 'UNDECIDED: run incomplete (exit 5); continue it with --resume')}")
    return "\n".join(lines)


def _pts(x: float) -> str:
    """A drop in points, clipped to the possible range [-100, 100]."""
    return "-" if x != x else f"{100 * min(max(x, -1.0), 1.0):+.1f}"


def _b(x: float) -> str:
    return "-" if x != x else f"{x:.2f}"


def table_header(state: GateState) -> str:
    """The line shown above a gated run's table: how far it ran, its verdict, what the intervals are."""
    look = state.decisive_look
    n_at = look.episodes if look else state.episodes_seen
    verdict = state.decision.replace("_", " ") if state.settled else "none yet (run incomplete)"
    return (f"**Gated run** against baseline `{state.design['baseline'].get('run_id')}`: stopped after {n_at} of "
            f"{state.design['plan_episodes']} planned episodes; verdict **{verdict}**. "
            f"Intervals are {int(100 * RCI_LEVEL)}% repeated confidence intervals of the group-sequential design "
            f"(valid at a data-dependent stop), not Wilson intervals.")
