"""End to end: `vla-eval run --policy vla_r1 --policy-arg checkpoint=<tiny dir>` on a built-in scene."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vla_eval.cli import main
from vla_eval.store import RunStore


@pytest.mark.slow
def test_run_vla_r1_tiny_records_format_validity_and_latency(tiny_qwen, tmp_path: Path):
    pytest.importorskip("vla_eval.envs.tabletop.env")
    suite = tmp_path / "mini.yaml"
    suite.write_text(yaml.safe_dump({
        "name": "mini", "backend": "tabletop", "tasks": ["pick_place_cube"], "episodes_per_task": 1,
        "max_steps": 12, "cameras": ["agentview"], "image_size": [64, 64], "splits": [{"name": "in_domain"}],
    }))
    run_dir = tmp_path / "run"
    rc = main(["run", "--suite", str(suite), "--policy", "vla_r1", "--policy-arg", f"checkpoint={tiny_qwen}",
               "--policy-arg", "max_new_tokens=8", "--policy-arg", "retry_after_steps=4",
               "--workers", "1", "--run-dir", str(run_dir), "--no-progress"])
    assert rc == 0
    with RunStore(run_dir, readonly=True) as store:
        recs = list(store.records())
    assert len(recs) == 1
    r = recs[0]
    assert r.termination in ("timeout", "success", "policy_error")
    assert r.outputs_checked >= 1 and 0 <= r.parse_failures <= r.outputs_checked
    assert r.policy_calls >= 1 and r.policy_time_s > 0
    assert r.extras["raw_text"] and len(r.extras["raw_text"]) == r.outputs_checked
