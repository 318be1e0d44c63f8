"""Sim-to-real agreement over policies: Pearson r and MMRV (docs/architecture.md §4).

MMRV (mean maximum rank violation, from SimplerEnv) asks whether simulation *ranks*
policies as the real robot does, weighting each mis-ordered pair by how far apart the
real rates are:

    MMRV = (1/N) * sum_i max_j |R_i - R_j| * 1[(S_i > S_j) != (R_i > R_j)]

with S the simulated and R the real success rates of N policies (lower is better, 0 =
same ranking). Pearson r measures linear agreement of the rates themselves.

With a ``task`` column in the real CSV the metrics are computed per task over the
policies that have that task (as SimplerEnv reports them) and then averaged over tasks;
without it each policy's simulated rate is its mean over tasks. Only in-domain episodes
count (real-robot rates are in-domain).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from vla_eval.errors import ConfigError
from vla_eval.results.runs import load


def mmrv(sim, real) -> float:
    """MMRV exactly as docs/architecture.md §4 defines it (ties count as "not greater")."""
    s = np.asarray(sim, dtype=float)
    r = np.asarray(real, dtype=float)
    if s.shape != r.shape or s.ndim != 1:
        raise ValueError("sim and real must be 1-D sequences of the same length")
    n = len(s)
    if n == 0:
        return float("nan")
    total = 0.0
    for i in range(n):
        violations = [abs(r[i] - r[j]) * float((s[i] > s[j]) != (r[i] > r[j])) for j in range(n)]
        total += max(violations)
    return total / n


def pearson(sim, real) -> tuple[float, float]:
    """Pearson r and its two-sided p-value (scipy); NaN when undefined (n < 2 or constant)."""
    s = np.asarray(sim, dtype=float)
    r = np.asarray(real, dtype=float)
    if len(s) < 2 or np.all(s == s[0]) or np.all(r == r[0]):
        return float("nan"), float("nan")
    if len(s) == 2:
        return float(stats.pearsonr(s, r).statistic), float("nan")
    res = stats.pearsonr(s, r)
    return float(res.statistic), float(res.pvalue)


@dataclass
class Agreement:
    per_group: pd.DataFrame  # group, n_policies, pearson_r, pearson_p, mmrv
    pairs: pd.DataFrame  # policy, (task), sim_rate, real_rate
    pearson_r: float
    mmrv: float
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = ["policy rates (sim = in-domain success rate over the given runs):"]
        lines.append(self.pairs.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
        if len(self.per_group) > 1:
            lines += ["", "per task:", self.per_group.to_string(index=False, float_format=lambda x: f"{x:.3f}")]
        lines += ["", f"Pearson r = {_f(self.pearson_r)}   MMRV = {_f(self.mmrv)} (lower is better)"]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _f(x: float) -> str:
    return "nan" if x != x else f"{x:.3f}"


def read_real_csv(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"real-robot results file {path} does not exist")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable CSV ({exc})") from exc
    missing = {"policy", "success_rate"} - set(df.columns)
    if missing:
        raise ConfigError(f"{path}: missing column(s) {sorted(missing)}; expected policy, task (optional), success_rate")
    rates = pd.to_numeric(df["success_rate"], errors="coerce")
    if rates.isna().any() or not rates.between(0, 1).all():
        raise ConfigError(f"{path}: success_rate must be a number in [0, 1] on every row")
    df = df.assign(success_rate=rates, policy=df["policy"].astype(str))
    if "task" in df.columns:
        df["task"] = df["task"].astype(str)
    keys = ["policy", "task"] if "task" in df.columns else ["policy"]
    if df.duplicated(keys).any():
        raise ConfigError(f"{path}: duplicate rows for {keys}")
    return df


def correlate(sim_runs: list[str | Path], real_csv: str | Path) -> Agreement:
    real = read_real_csv(real_csv)
    sim = load(sim_runs)
    if sim.empty:
        raise ConfigError("the --sim runs hold no finished episodes")
    sim = sim[sim["in_domain"]]
    notes = []
    dupes = sim.groupby("policy")["run_dir"].nunique()
    for pol, n in dupes[dupes > 1].items():
        notes.append(f"policy {pol!r} has {n} sim runs; their episodes are pooled")
    per_task = sim.groupby(["policy", "task"])["success"].mean().rename("sim_rate").reset_index()
    by_task = "task" in real.columns
    if by_task:
        pairs = per_task.merge(real.rename(columns={"success_rate": "real_rate"})[["policy", "task", "real_rate"]], on=["policy", "task"])
    else:
        sim_pol = per_task.groupby("policy")["sim_rate"].mean().reset_index()
        pairs = sim_pol.merge(real.rename(columns={"success_rate": "real_rate"})[["policy", "real_rate"]], on="policy")
    unmatched = sorted(set(real["policy"]) - set(pairs["policy"]))
    if unmatched:
        notes.append(f"real policies without sim episodes (ignored): {', '.join(unmatched)}")
    if pairs["policy"].nunique() < 2:
        raise ConfigError("need at least two policies present in both the sim runs and the real CSV")
    groups = []
    for task, g in (pairs.groupby("task") if by_task else [("(all)", pairs)]):
        r, p = pearson(g["sim_rate"], g["real_rate"])
        groups.append({"task": task, "n_policies": len(g), "pearson_r": r, "pearson_p": p, "mmrv": mmrv(g["sim_rate"], g["real_rate"])})
    per_group = pd.DataFrame(groups)
    mean = lambda col: float(np.nanmean(per_group[col])) if per_group[col].notna().any() else math.nan  # noqa: E731
    return Agreement(per_group, pairs, mean("pearson_r"), mean("mmrv"), notes)
