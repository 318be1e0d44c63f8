"""Success-rate tables: per task and split, suite mean, out-of-domain drop."""

from __future__ import annotations

import sys
from typing import Iterable

import pandas as pd

from vla_eval.record import POLICY_FAILURES, EpisodeRecord
from vla_eval.results.stats import mean_rate, wilson_interval

MEAN_ROW = "suite mean"


def records_frame(records: Iterable[EpisodeRecord]) -> pd.DataFrame:
    rows = [r.model_dump(exclude={"extras"}) for r in records]
    return pd.DataFrame(rows)


def suite_rows(df: pd.DataFrame, tasks: list[str] | None, splits: list[str] | None, source: str = "") -> pd.DataFrame:
    """Only the episodes of the suite's own tasks and splits; the rest are dropped with one warning.

    A store can hold rows the suite does not plan (a task renamed between a run and its
    ``--resume``, a file merged by hand). Counting them would move the suite mean away from
    the suite's tasks, and a baseline saved from them would ask later runs for cells they
    never plan, so they are left out of every aggregate and named on stderr.
    """
    if df.empty:
        return df
    keep = pd.Series(True, index=df.index)
    if tasks:
        keep &= df["task"].isin(tasks)
    if splits:
        keep &= df["split"].isin(splits)
    if keep.all():
        return df
    stray = df[~keep].groupby(["task", "split"], sort=True).size()
    cells = ", ".join(f"{t}/{s} ({n})" for (t, s), n in list(stray.items())[:5])
    more = f" and {len(stray) - 5} more cells" if len(stray) > 5 else ""
    where = f"{source}: " if source else ""
    print(
        f"warning: {where}ignoring {int((~keep).sum())} episodes of tasks/splits not in the suite: {cells}{more}",
        file=sys.stderr,
    )
    return df[keep]


def summary_frame(
    records: Iterable[EpisodeRecord], splits: list[str] | None = None, tasks: list[str] | None = None, source: str = ""
) -> pd.DataFrame:
    """Long table: one row per (task, split) plus a suite-mean row per split.

    With ``tasks``/``splits`` (the suite's), episodes outside them are ignored with a warning
    (:func:`suite_rows`). The suite mean is :func:`vla_eval.results.stats.mean_rate`: the
    unweighted mean of the task rates (each task counts once, as papers report it), with a
    Wilson interval at the mean's effective sample size, so it contains the mean even when
    tasks ran different episode counts. Its ``n`` and ``successes`` are the pooled counts.
    """
    df = suite_rows(records_frame(records), tasks, splits, source)
    columns = [
        "task",
        "split",
        "n",
        "successes",
        "rate",
        "ci_low",
        "ci_high",
        "policy_errors",
        "env_errors",
        "mean_steps",
    ]
    if df.empty:
        return pd.DataFrame(columns=columns)
    tasks = tasks or sorted(df["task"].unique())
    splits = splits or sorted(df["split"].unique())
    out = []
    for split in splits:
        sdf = df[df["split"] == split]
        cells = []
        for task in tasks:
            tdf = sdf[sdf["task"] == task]
            if tdf.empty:
                continue
            out.append(_row(task, split, tdf))
            cells.append((out[-1]["successes"], out[-1]["n"]))
        if cells:
            row = _row(MEAN_ROW, split, sdf)
            m = mean_rate(cells)
            row.update(rate=m.rate, ci_low=m.ci_low, ci_high=m.ci_high)
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
