"""SimplerEnv-style aggregation (vla_eval.sims.simpler.protocol) against numbers computed by hand
the way SimplerEnv's tools/calc_metrics_evaluation_videos.py does: mean per variant directory,
mean over a task's variants, a group (e.g. "open drawer") = mean over all its (task, variant) cells."""

from __future__ import annotations

import pandas as pd
import pytest

from vla_eval.sims.simpler.protocol import group_aggregation, protocol_markdown, variant_aggregation
from vla_eval.tables import MEAN_ROW


def _summary(cells: dict[tuple[str, str], tuple[int, int]]) -> pd.DataFrame:
    rows = [{"task": t, "split": s, "n": n, "successes": k, "rate": k / n} for (t, s), (k, n) in cells.items()]
    rows.append({"task": MEAN_ROW, "split": "base", "n": 1, "successes": 1, "rate": 1.0})  # must be ignored
    return pd.DataFrame(rows)


SUITE = {
    "backend_options": {
        "protocol": "variant_aggregation",
        "exclude_from_aggregate": ["camera_a"],
        "task_groups": {"open drawer": ["open_top", "open_middle"]},
    },
    "splits": [{"name": "base"}, {"name": "light"}, {"name": "station2"}, {"name": "camera_a"}],
}
CELLS = {
    ("open_top", "base"): (9, 9),
    ("open_top", "light"): (3, 9),
    ("open_top", "station2"): (0, 9),
    ("open_middle", "base"): (6, 9),
    ("open_middle", "light"): (6, 9),  # station2 not run for this task
    ("move_near", "base"): (30, 60),
    ("move_near", "light"): (45, 60),
    ("move_near", "camera_a"): (0, 60),
}


def test_per_task_mean_over_variants_ignores_camera_and_episode_counts():
    agg = variant_aggregation(_summary(CELLS), SUITE).set_index("task")["aggregate"]
    assert agg["open_top"] == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert agg["open_middle"] == pytest.approx(2 / 3)
    assert agg["move_near"] == pytest.approx((0.5 + 0.75) / 2)  # the camera split is reported, not averaged


def test_group_is_the_mean_over_all_cells_of_its_tasks():
    g = group_aggregation(_summary(CELLS), SUITE).set_index("group")
    # calc_metrics appends every (task, variant) mean of the group to one list and averages it
    assert g.loc["open drawer", "aggregate"] == pytest.approx((1 + 1 / 3 + 0 + 2 / 3 + 2 / 3) / 5)
    assert g.loc["open drawer", "cells"] == 5
    assert g.loc["move_near", "aggregate"] == pytest.approx(0.625)  # ungrouped task: its own group
    assert g.loc["mean over groups", "aggregate"] == pytest.approx((8 / 15 + 0.625) / 2)


def test_markdown_names_protocol_and_extension():
    md = protocol_markdown(_summary(CELLS), SUITE)
    assert md.startswith("Variant aggregation:") and "reported, not aggregated: camera_a" in md
    ext = protocol_markdown(
        _summary(CELLS), {**SUITE, "backend_options": {**SUITE["backend_options"], "extension": True}}
    )
    assert "not a SimplerEnv protocol" in ext
