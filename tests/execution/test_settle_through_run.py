"""A suite's ``settle_steps`` reach the env through ``vla-eval run`` (issue 30).

The rollout's settle loop has its own tests (``test_rollout.py``); this one proves the runner
hands the suite's value down: a real run on a tabletop backend whose env logs every action
(``_recording.py``) shows exactly ``settle_steps`` settle actions between each reset and the
policy's first action. Before this test a runner passing ``settle_steps=0`` passed every test.
"""

from __future__ import annotations

import json

import pytest
import yaml
from _recording import POLICY_ACTION

from vla_eval.cli.main import main
from vla_eval.store import RunStore

SETTLE_STEPS = 7
SETTLE_ACTION = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0]
MAX_STEPS = 3


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_env_receives_the_suites_settle_actions_before_the_policys_first(tmp_path, monkeypatch, workers):
    log = tmp_path / "events.jsonl"
    monkeypatch.setenv("VLA_EVAL_TEST_RECORD_LOG", str(log))
    suite = tmp_path / "settle.yaml"
    suite.write_text(
        yaml.safe_dump(
            {
                "name": "settle_probe",
                "backend": "_recording:RecordingBackend",
                "tasks": ["push_block", "open_drawer"],
                "episodes_per_task": 2,
                "max_steps": MAX_STEPS,
                "settle_steps": SETTLE_STEPS,
                "settle_action": SETTLE_ACTION,
                "cameras": ["agentview"],
                "image_size": [32, 32],
                "splits": [{"name": "in_domain"}],
            }
        )
    )
    run_dir = tmp_path / "run"
    assert (
        main(
            [
                "run",
                "--suite",
                str(suite),
                "--policy",
                "_recording:LoggingPolicy",
                "--workers",
                str(workers),
                "--run-dir",
                str(run_dir),
                "--no-progress",
            ]
        )
        == 0
    )
    with RunStore(run_dir, readonly=True) as store:
        records = list(store.records())
    assert len(records) == 4

    events: dict[int, list[dict]] = {}
    for line in log.read_text().splitlines():
        event = json.loads(line)
        events.setdefault(event["seed"], []).append(event)
    assert sorted(events) == sorted(r.seed for r in records)
    for record in records:
        seq = events[record.seed]
        names = [e["event"] for e in seq]
        first_predict = names.index("predict")
        assert names[0] == "reset" and names.count("reset") == 1
        before = [e for e in seq[:first_predict] if e["event"] == "step"]
        assert len(before) == SETTLE_STEPS, f"seed {record.seed}: {len(before)} settle actions, expected {SETTLE_STEPS}"
        assert all(e["action"] == SETTLE_ACTION for e in before)
        after = [e["action"] for e in seq[first_predict:] if e["event"] == "step"]
        assert after == [POLICY_ACTION] * MAX_STEPS
        assert record.steps == MAX_STEPS  # settle steps are not counted against the episode
