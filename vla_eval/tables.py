"""Success-rate tables: per task and split, suite mean, out-of-domain drop."""

from __future__ import annotations

from typing import Iterable

import pandas as pd

from vla_eval.record import POLICY_FAILURES, EpisodeRecord
from vla_eval.results.stats import wilson_interval

MEAN_ROW = "suite mean"


def records_frame(records: Iterable[EpisodeRecord]) -> pd.DataFrame:
    rows = [r.model_dump(exclude={"extras"}) for r in records]
    return pd.DataFrame(rows)


def summary_frame(records: Iterable[EpisodeRecord], splits: list[str] | None = None, tasks: list[str] | None = None) -> pd.DataFrame:
    """Long table: one row per (task, split) plus a suite-mean row per split.

    The suite mean is the unweighted mean of task rates (each task counts once, as
    papers report it); its interval pools all episodes of the split.
    """
    df = records_frame(records)
    columns = ["task", "split", "n", "successes", "rate", "ci_low", "ci_high", "policy_errors", "env_errors", "mean_steps"]
    if df.empty:
        return pd.DataFrame(columns=columns)
    tasks = tasks or sorted(df["task"].unique())
    splits = splits or sorted(df["split"].unique())
    out = []
    for split in splits:
        sdf = df[df["split"] == split]
        for task in tasks:
            tdf = sdf[sdf["task"] == task]
            if tdf.empty:
                continue
            out.append(_row(task, split, tdf))
        if not sdf.empty:
            row = _row(MEAN_ROW, split, sdf)
            row["rate"] = float(sdf.groupby("task")["success"].mean().mean())
            out.append(row)
    return pd.DataFrame(out, columns=columns)


def _row(task: str, split: str, df: pd.DataFrame) -> dict:
    n, k = len(df), int(df["success"].sum())
    lo, hi = wilson_interval(k, n)
    return {
        "task": task,
        "split": split,
        "n": n,
        "successes": k,
        "rate": k / n,
        "ci_low": lo,
        "ci_high": hi,
        "policy_errors": int(df["termination"].isin(POLICY_FAILURES).sum()),
        "env_errors": int((df["termination"] == "env_error").sum()),
        "mean_steps": float(df["steps"].mean()),
    }


def drop_pts(in_domain_rate: float, ood_rate: float) -> str:
    """The out-of-domain drop as every table and report prints it: in-domain minus OOD, in points.

    One sign everywhere (positive = worse out of domain) so a number copied from ``vla-eval table``
    into a paper means the same as the one on the leaderboard page.
    """
    return f"{100 * (in_domain_rate - ood_rate):+.1f}"


def wide_table(summary: pd.DataFrame, in_domain: str, splits: list[str]) -> pd.DataFrame:
    """Tasks as rows; per split ``rate [lo, hi]`` and, for OOD splits, the drop in points."""
    if summary.empty:
        return pd.DataFrame()
    tasks = list(dict.fromkeys(summary["task"]))
    table = pd.DataFrame(index=tasks)
    table.index.name = "task"
    lookup = summary.set_index(["task", "split"])
    for split in splits:
        if split not in set(summary["split"]):
            continue
        cells, drops = [], []
        for task in tasks:
            if (task, split) not in lookup.index:
                cells.append("")
                drops.append("")
                continue
            r = lookup.loc[(task, split)]
            cells.append(f"{100 * r['rate']:.1f} [{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}] (n={int(r['n'])})")
            if split != in_domain and (task, in_domain) in lookup.index:
                drops.append(drop_pts(lookup.loc[(task, in_domain)]["rate"], r["rate"]))
            else:
                drops.append("")
        table[f"{split} %"] = cells
        if split != in_domain:
            table[f"{split} drop vs {in_domain} (pts)"] = drops
    return table


def markdown(table: pd.DataFrame) -> str:
    if table.empty:
        return "(no finished episodes)"
    header = "| " + " | ".join([table.index.name or ""] + list(table.columns)) + " |"
    sep = "|" + "---|" * (len(table.columns) + 1)
    body = ["| " + " | ".join([str(idx)] + [str(v) for v in row]) + " |" for idx, row in table.iterrows()]
    return "\n".join([header, sep, *body])
