"""End to end: `vla-eval run --policy vla_r1 --policy-arg checkpoint=<tiny dir>` on a built-in scene."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vla_eval.cli.main import main
from vla_eval.store import RunStore


@pytest.mark.slow
def test_run_vla_r1_tiny_records_format_validity_and_latency(tiny_qwen, tmp_path: Path):
    pytest.importorskip("vla_eval.sims.tabletop.env")
    suite = tmp_path / "mini.yaml"
    suite.write_text(
        yaml.safe_dump(
            {
                "name": "mini",
                "backend": "tabletop",
                "tasks": ["pick_place_cube"],
                "episodes_per_task": 1,
                "max_steps": 12,
                "cameras": ["agentview"],
                "image_size": [64, 64],
                "splits": [{"name": "in_domain"}],
            }
        )
    )
    run_dir = tmp_path / "run"
    rc = main(
        [
            "run",
            "--suite",
            str(suite),
            "--policy",
            "vla_r1",
            "--policy-arg",
            f"checkpoint={tiny_qwen}",
            "--policy-arg",
            "max_new_tokens=8",
            "--policy-arg",
            "retry_after_steps=4",
            "--workers",
            "1",
            "--run-dir",
            str(run_dir),
            "--no-progress",
        ]
    )
    assert rc == 0
    with RunStore(run_dir, readonly=True) as store:
        recs = list(store.records())
    assert len(recs) == 1
    r = recs[0]
    # random weights and 8 new tokens cannot write "<output>...</output>": every answer is a parse
    # failure, the robot holds still for retry_after_steps and asks again, and the episode runs to
    # its step limit. A policy_error here (the adapter crashing) is a failure of this test.
    assert r.termination == "timeout" and r.error is None and r.steps == 12 and not r.success
    # the adapter answers every step (one-action chunks) but queries the model only at steps 0, 4 and 8
    assert r.policy_calls == 12 and r.policy_time_s > 0
    assert r.outputs_checked == 12 // 4 and r.parse_failures == r.outputs_checked
    assert len(r.extras["raw_text"]) == r.outputs_checked and all(isinstance(t, str) for t in r.extras["raw_text"])
    # the generation settings in force: expanded in run.json (the max_new_tokens shortcut folded in)
    # and on the episode once, with one sampling seed per query
    import json

    upstream = {
        "preset": "upstream",
        "temperature": 0.7,
        "top_p": 0.9,
        "repetition_penalty": 1.1,
        "max_new_tokens": 8,
        "seed": 0,
    }
    assert json.loads((run_dir / "run.json").read_text())["policy"]["args"]["generation"] == upstream
    (gen,) = r.extras["generation"]
    assert {k: gen[k] for k in upstream} == upstream and gen["do_sample"] is True and gen["top_k"] == 50
    assert len(set(r.extras["sampling_seed"])) == r.outputs_checked
