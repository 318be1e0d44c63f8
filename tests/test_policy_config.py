"""Policy files: a policy's own ``replan_steps`` reaches the chunk executor unless the CLI overrides it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from vla_eval import paths
from vla_eval.errors import ConfigError
from vla_eval.execution.runner import RunRequest, run
from vla_eval.policy_config import resolve_policy
from vla_eval.store import RunStore


def test_pi0_remote_executes_five_of_each_ten():
    # openpi examples/libero/main.py: Args.replan_steps = 5 of each 10-action chunk
    raw = yaml.safe_load(paths.find_named_yaml("policies", "pi0_remote").read_text())
    assert raw["execution"]["replan_steps"] == 5 and raw["args"]["max_chunk"] == 10
    assert resolve_policy("pi0_remote").execution.replan_steps == 5


def _run(tmp_path: Path, policy_file: dict, name: str, cli_replan: int | None = None):
    suite = {
        "name": "mini",
        "backend": "tabletop",
        "tasks": ["push_block"],
        "episodes_per_task": 1,
        "max_steps": 20,
        "cameras": [],
        "image_size": [32, 32],
    }
    (tmp_path / "mini.yaml").write_text(yaml.safe_dump(suite))
    pol = tmp_path / f"{name}.yaml"
    pol.write_text(yaml.safe_dump(policy_file))
    run_dir = tmp_path / name
    run(
        RunRequest(
            suite=str(tmp_path / "mini.yaml"),
            policy=str(pol),
            workers=1,
            run_dir=run_dir,
            replan_steps=cli_replan,
            progress=False,
        )
    )
    with RunStore(run_dir, readonly=True) as store:
        (rec,) = list(store.records())
    return rec, json.loads((run_dir / "run.json").read_text())


@pytest.mark.slow
def test_policy_file_replan_steps_is_honoured(tmp_path):
    chunked = {"adapter": "noop", "args": {"chunk_size": 10}}
    rec, config = _run(tmp_path, chunked, "whole_chunks")
    assert rec.steps == 20 and rec.policy_calls == 2 and config["replan_steps"] is None
    rec, config = _run(tmp_path, {**chunked, "execution": {"replan_steps": 5}}, "five_of_ten")
    assert rec.steps == 20 and rec.policy_calls == 4 and config["replan_steps"] == 5
    rec, config = _run(tmp_path, {**chunked, "execution": {"replan_steps": 5}}, "cli_wins", cli_replan=2)
    assert rec.policy_calls == 10 and config["replan_steps"] == 2


def test_bad_replan_steps_names_the_file(tmp_path):
    pol = tmp_path / "bad.yaml"
    pol.write_text(yaml.safe_dump({"adapter": "noop", "execution": {"replan_steps": 0}}))
    with pytest.raises(ConfigError, match="bad.yaml"):
        resolve_policy(str(pol))
