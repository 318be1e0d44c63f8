"""Fixtures of the results tests.

``runs_root``: an empty results root for hand-built fixture runs (``runfixtures.make_run``:
fast, any counts, used for the statistics of check / compare at realistic episode counts).

``real_runs``: folders written by the REAL runner (``vla-eval run`` through
``vla_eval.cli.main.main``), once per test session, so that ``baseline save``, ``check``,
``compare`` and ``report`` are tested on what a user's run actually contains (every
field the runner writes, errored episodes, the config block), not on a copy of its format.
The suite is ``tabletop_basic`` (2 episodes per task) plus a language-paraphrase split.
Outcomes are fixed by construction, not by physics luck:

* ``scripted``: the privileged expert, every episode succeeds (asserted by the tests).
* ``flaky``: the same expert, but its ``predict`` raises (-> ``policy_error``) on episode
  0 of every task and on every instruction containing "move the" (the index-1 paraphrase
  of pick_place_cube and push_block; open_drawer's is "slide the drawer out").
* ``noop``: holds still, every episode times out.
* ``env_faulty``: the expert on a tabletop backend whose env raises in ``step`` (->
  ``env_error``) for the seed of pick_place_cube's episode 1 (a different backend, so a
  different protocol: compared with ``--allow-protocol-mismatch``).
* ``evil``: a one-episode run whose run id, policy name and checkpoint are HTML.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from vla_eval import paths
from vla_eval.cli.main import main
from vla_eval.execution.plan import build_plan
from vla_eval.spec import load_suite

from realruns import EVIL, LANGUAGE_SPLIT


@pytest.fixture
def runs_root(tmp_path):
    """Where fixture runs go (a results root, as `vla-eval run --results-root` would write)."""
    return tmp_path / "results"


@dataclass
class RealRuns:
    root: Path
    scripted: Path
    flaky: Path
    noop: Path
    env_faulty: Path
    evil: Path
    suite: Path
    bad_seeds: list[int]
    env_bad_seed: int
    max_steps: int


def _suite_file(folder: Path, backend: str | None = None) -> Path:
    data = yaml.safe_load(paths.find_named_yaml("suites", "tabletop_basic").read_text())
    data["episodes_per_task"] = 2
    data["splits"].append({"name": LANGUAGE_SPLIT, "out_of_domain": True, "description": "paraphrased instruction",
                           "perturbations": [{"type": "language", "index": 1}]})
    if backend:
        data["backend"] = backend
    path = folder / f"tabletop_fixture{'_' + backend.split(':')[-1] if backend else ''}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _run(suite: Path, run_dir: Path, policy: str, *extra: str) -> None:
    rc = main(["run", "--suite", str(suite), "--policy", policy, "--workers", "1", "--run-dir", str(run_dir),
               "--no-progress", *extra])
    assert rc == 0, f"fixture run {run_dir.name} failed"


@pytest.fixture(scope="session")
def real_runs(tmp_path_factory) -> RealRuns:
    base = tmp_path_factory.mktemp("real_runs")
    root = base / "results"
    suite = _suite_file(base)
    plan = build_plan(load_suite(str(suite)))
    bad_seeds = sorted({i.seed for i in plan if i.episode_index == 0})
    env_bad_seed = next(i.seed for i in plan if i.task == "pick_place_cube" and i.episode_index == 1)

    _run(suite, root / "scripted", "scripted")
    _run(suite, root / "flaky", "_faulty:ScriptedWithErrors", "--policy-arg", f"bad_seeds={bad_seeds}",
         "--policy-arg", "bad_instructions=[move the]")
    _run(suite, root / "noop", "noop")

    faulty_suite = _suite_file(base, backend="_faulty:FaultyBackend")
    old = os.environ.get("VLA_EVAL_TEST_BAD_SEED")
    os.environ["VLA_EVAL_TEST_BAD_SEED"] = str(env_bad_seed)
    try:
        _run(faulty_suite, base / "faulty" / "env_faulty", "scripted")
    finally:
        if old is None:
            os.environ.pop("VLA_EVAL_TEST_BAD_SEED", None)
        else:
            os.environ["VLA_EVAL_TEST_BAD_SEED"] = old

    evil_suite = base / "evil_suite.yaml"
    evil_suite.write_text(yaml.safe_dump({
        "name": "tabletop_evil", "backend": "tabletop", "tasks": ["pick_place_cube"], "episodes_per_task": 1,
        "max_steps": 3, "cameras": ["agentview"], "image_size": [32, 32], "splits": [{"name": "in_domain"}],
    }))
    policy_file = base / "evil_policy.yaml"
    evil_ckpt = base / EVIL["checkpoint"]  # a real folder: the runner's preflight refuses checkpoints that don't exist
    evil_ckpt.mkdir(parents=True)
    policy_file.write_text(yaml.safe_dump({"adapter": "_faulty:CheckpointNoop", "name": EVIL["policy"],
                                           "args": {"checkpoint": str(evil_ckpt)}}))
    _run(evil_suite, root / EVIL["run_id"], str(policy_file))
    return RealRuns(root, root / "scripted", root / "flaky", root / "noop", base / "faulty" / "env_faulty",
                    root / EVIL["run_id"], suite, bad_seeds, env_bad_seed, 200)
