"""``record-demos`` and ``run`` start the same episode from the same state and judge it by the same rule.

Each command rolls out the backend's expert (wrapped to log its first observation) on a one-task,
one-episode cut of a shipped suite, with the demo seed set to the run's. Before both commands
built their settings in one place, record-demos passed no reset options (LIBERO started from the
init state its seed picked, not the episode's; SimplerEnv from a seed-picked configuration) and
judged SimplerEnv episodes by their first success instead of the final step.
"""

from __future__ import annotations

import json

import pytest

h5py = pytest.importorskip("h5py")

from vla_eval.demos import record_demos  # noqa: E402
from vla_eval.execution.runner import RunRequest, run  # noqa: E402
from vla_eval.spec import SuiteSpec, load_suite  # noqa: E402
from vla_eval.store import RunStore  # noqa: E402

pytestmark = pytest.mark.slow


def _cut(suite: str, task: str, image_size: int) -> SuiteSpec:
    data = load_suite(suite).model_dump(mode="json")
    data["tasks"] = [t for t in data["tasks"] if t["name"] == task]
    data["splits"] = data["splits"][:1]
    data["episodes_per_task"] = 1
    data["image_size"] = [image_size, image_size]
    data["backend_options"].pop("task_groups", None)
    return SuiteSpec.model_validate(data)


def _both(tmp_path, spec: SuiteSpec, probe: str):
    run_log, demo_log = tmp_path / "run.jsonl", tmp_path / "demo.jsonl"
    run(
        RunRequest(
            suite=spec,
            policy=f"_first_obs_probe:{probe}",
            policy_args=[f"log={run_log}"],
            workers=1,
            run_dir=tmp_path / "run",
            progress=False,
        )
    )
    with RunStore(tmp_path / "run", readonly=True) as store:
        (record,) = list(store.records())
    summary = record_demos(
        spec,
        f"_first_obs_probe:{probe}",
        tmp_path / "demos",
        episodes=1,
        seed=spec.seed,
        policy_args=[f"log={demo_log}"],
        keep_failures=True,
        progress=False,
    )
    task = spec.tasks[0].name
    assert summary.kept[task] == 1
    with h5py.File(summary.files[task], "r") as f:
        demo = dict(f["data/demo_0"].attrs)
    firsts = [[json.loads(line)["digest"] for line in p.read_text().splitlines()] for p in (run_log, demo_log)]
    return record, demo, firsts


def _assert_same_episode(record, demo, firsts, rule: str):
    run_first, demo_first = firsts
    assert len(run_first) == len(demo_first) == 1
    assert demo_first == run_first, "record-demos started the episode from another state than run"
    assert demo["init_state_id"] == record.init_state_id and demo["seed"] == record.seed
    assert record.success_rule == rule
    assert demo["success_rule"] == record.success_rule, "record-demos judges success by another rule than run"
    assert bool(demo["success"]) == record.success
    assert demo["final_state_digest"] == record.final_state_digest


def test_libero_demo_starts_and_is_judged_like_the_run(tmp_path):
    pytest.importorskip("libero")
    spec = _cut("libero_spatial", load_suite("libero_spatial").tasks[0].name, 64)
    record, demo, firsts = _both(tmp_path, spec, "LiberoProbe")
    _assert_same_episode(record, demo, firsts, "first_success")


def test_final_step_simpler_demo_starts_and_is_judged_like_the_run(tmp_path):
    spec = _cut("simpler_google_vm_panda", "google_pick_coke_can_vertical", 64)
    assert spec.backend == "simpler" and spec.success_rule == "final_step"
    record, demo, firsts = _both(tmp_path, spec, "SimplerProbe")
    _assert_same_episode(record, demo, firsts, "final_step")
    assert record.success, "the expert solves the episode, so the final-step rule is what judged it"
