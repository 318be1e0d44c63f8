"""SimplerEnv's headline numbers, computed the way its ``tools/calc_metrics_evaluation_videos.py`` does.

calc_metrics averages success per *variant* first (one directory of episodes = one
(task, variant) cell), then takes the plain mean over the variants of a task, and reports
task *groups* ("open drawer" = top / middle / bottom) as the mean over all cells of the
group's tasks. Visual matching works the same way with the four robot URDF colourings as
its variants; variant aggregation with the task's own variant list (camera variants are
never averaged in; our suites list them in ``backend_options.exclude_from_aggregate``).

Here a cell is one (task, split) row of :func:`vla_eval.tables.summary_frame`; splits that
do not run on a task (``SplitSpec.tasks``) simply have no cell. Groups come from
``backend_options.task_groups``; a task in no group is its own group. The per-task rows are
kept beside the groups. The two protocols are never averaged together, and the suite-level
"mean over groups" is this project's convenience (SimplerEnv reports groups only).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from vla_eval.tables import MEAN_ROW

EXTENSION_NOTE = "vla-eval extension, not a SimplerEnv protocol"


def aggregated_splits(suite: dict[str, Any]) -> list[str]:
    """Split names that enter the aggregate (``suite`` is the resolved spec as a dict)."""
    excluded = set((suite.get("backend_options") or {}).get("exclude_from_aggregate", []))
    return [s["name"] for s in suite.get("splits", []) if s["name"] not in excluded]


def _cells(summary: pd.DataFrame, suite: dict[str, Any]) -> pd.DataFrame:
    splits = aggregated_splits(suite)
    return summary[summary["split"].isin(splits) & (summary["task"] != MEAN_ROW)]


def variant_aggregation(summary: pd.DataFrame, suite: dict[str, Any]) -> pd.DataFrame:
    """Per task: the mean of its per-split success rates over the aggregated splits, plus the mean row."""
    df = _cells(summary, suite)
    if df.empty:
        return pd.DataFrame(columns=["task", "aggregate", "splits", "episodes"])
    rows = [
        {
            "task": task,
            "aggregate": float(g["rate"].mean()),
            "splits": int(g["split"].nunique()),
            "episodes": int(g["n"].sum()),
        }
        for task, g in df.groupby("task", sort=False)
    ]
    tasks = pd.DataFrame(rows)
    mean = {
        "task": MEAN_ROW,
        "aggregate": float(tasks["aggregate"].mean()),
        "splits": len(aggregated_splits(suite)),
        "episodes": int(tasks["episodes"].sum()),
    }
    return pd.concat([tasks, pd.DataFrame([mean])], ignore_index=True)


def task_groups(suite: dict[str, Any], tasks: list[str]) -> dict[str, list[str]]:
    declared = (suite.get("backend_options") or {}).get("task_groups") or {}
    groups = {name: [t for t in members if t in tasks] for name, members in declared.items()}
    grouped = {t for members in groups.values() for t in members}
    for t in tasks:
        if t not in grouped:
            groups[t] = [t]
    return {k: v for k, v in groups.items() if v}


def group_aggregation(summary: pd.DataFrame, suite: dict[str, Any]) -> pd.DataFrame:
    """Per task group: the mean over every (task, split) cell of its tasks, and the mean over groups."""
    df = _cells(summary, suite)
    if df.empty:
        return pd.DataFrame(columns=["group", "aggregate", "cells", "episodes"])
    tasks = list(dict.fromkeys(df["task"]))
    rows = []
    for group, members in task_groups(suite, tasks).items():
        g = df[df["task"].isin(members)]
        rows.append(
            {"group": group, "aggregate": float(g["rate"].mean()), "cells": len(g), "episodes": int(g["n"].sum())}
        )
    out = pd.DataFrame(rows)
    mean = {
        "group": "mean over groups",
        "aggregate": float(out["aggregate"].mean()),
        "cells": int(out["cells"].sum()),
        "episodes": int(out["episodes"].sum()),
    }
    return pd.concat([out, pd.DataFrame([mean])], ignore_index=True)


def protocol_title(suite: dict[str, Any]) -> str:
    opts = suite.get("backend_options") or {}
    protocol = opts.get("protocol", "visual_matching")
    name = "Visual matching" if protocol == "visual_matching" else "Variant aggregation"
    if opts.get("extension"):
        name += f" ({EXTENSION_NOTE})"
    return name


def protocol_markdown(summary: pd.DataFrame, suite: dict[str, Any]) -> str | None:
    """The run table's protocol section: per task group, then per task (SimplerEnv calc_metrics order of averaging)."""
    tasks = variant_aggregation(summary, suite)
    if tasks.empty:
        return None
    groups = group_aggregation(summary, suite)
    used = ", ".join(aggregated_splits(suite))
    excluded = (suite.get("backend_options") or {}).get("exclude_from_aggregate") or []
    note = f"; reported, not aggregated: {', '.join(excluded)}" if excluded else ""
    group_rows = "\n".join(
        f"| {r.group} | {100 * r.aggregate:.1f} | {r.cells} | {r.episodes} |" for r in groups.itertuples()
    )
    task_rows = "\n".join(
        f"| {r.task} | {100 * r.aggregate:.1f} | {r.splits} | {r.episodes} |" for r in tasks.itertuples()
    )
    return (
        f"{protocol_title(suite)}: success per (task, split), then the mean over splits ({used}{note}), "
        f"then per task group the mean over its cells\n\n"
        f"| task group | success % | cells | episodes |\n|---|---|---|---|\n{group_rows}\n\n"
        f"| task | success % | splits | episodes |\n|---|---|---|---|\n{task_rows}"
    )
