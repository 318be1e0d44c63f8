"""SimplerEnv's two protocols as numbers: the variant-aggregation score of a run.

*Visual matching* suites (``*_vm``) report per-task success directly. *Variant aggregation*
suites (``*_va``) report every split as its own column, and their headline number is the
mean over the aggregated splits (base + variants), per task; splits listed in the suite's
``backend_options.exclude_from_aggregate`` (camera pose shifts, as in SimplerEnv) are
reported but left out. The two protocols are never averaged together.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from vla_eval.tables import MEAN_ROW


def aggregated_splits(suite: dict[str, Any]) -> list[str]:
    """Split names that enter the variant-aggregation mean (``suite`` is the resolved spec as a dict)."""
    excluded = set((suite.get("backend_options") or {}).get("exclude_from_aggregate", []))
    return [s["name"] for s in suite.get("splits", []) if s["name"] not in excluded]


def variant_aggregation(summary: pd.DataFrame, suite: dict[str, Any]) -> pd.DataFrame:
    """Per task (and the suite mean): the mean success rate over the aggregated splits.

    ``summary`` is :func:`vla_eval.tables.summary_frame`'s long table. Each split counts
    once, as SimplerEnv averages variant success rates.
    """
    splits = aggregated_splits(suite)
    df = summary[summary["split"].isin(splits)]
    if df.empty:
        return pd.DataFrame(columns=["task", "aggregate", "splits"])
    rows = [{"task": task, "aggregate": float(g["rate"].mean()), "splits": int(g["split"].nunique())}
            for task, g in df.groupby("task", sort=False) if task != MEAN_ROW]
    tasks = pd.DataFrame(rows)
    mean = {"task": MEAN_ROW, "aggregate": float(tasks["aggregate"].mean()), "splits": len(splits)}
    return pd.concat([tasks, pd.DataFrame([mean])], ignore_index=True)
