"""``--videos failures`` end to end with mixed outcomes: videos exist exactly for the failed episodes.

A real ``vla-eval run`` of the scripted expert on a cut of the tabletop scenes, with outcomes fixed
by construction: ``open_drawer`` succeeds (200 steps are plenty) except episode 1, where the
policy raises (``policy_error``); ``pick_place_cube`` gets 4 steps and times out. Before this test,
the ``failures`` mode writing the successful episodes' videos instead passed every test.
"""

from __future__ import annotations

import imageio.v2 as imageio
import pytest
import yaml

from vla_eval.cli.main import main
from vla_eval.execution.plan import build_plan
from vla_eval.spec import load_suite
from vla_eval.store import RunStore

SHORT_STEPS = 4


@pytest.mark.slow
def test_videos_failures_writes_exactly_the_failed_episodes(tmp_path):
    suite = tmp_path / "mixed.yaml"
    suite.write_text(
        yaml.safe_dump(
            {
                "name": "mixed_outcomes",
                "backend": "tabletop",
                "tasks": ["open_drawer", {"name": "pick_place_cube", "max_steps": SHORT_STEPS}],
                "episodes_per_task": 2,
                "max_steps": 200,
                "cameras": ["agentview"],
                "image_size": [32, 32],
                "splits": [{"name": "in_domain"}],
            }
        )
    )
    plan = build_plan(load_suite(str(suite)))
    bad_seed = next(i.seed for i in plan if i.task == "open_drawer" and i.episode_index == 1)
    run_dir = tmp_path / "run"
    assert (
        main(
            [
                "run",
                "--suite",
                str(suite),
                "--policy",
                "_faulty:ScriptedWithErrors",
                "--policy-arg",
                f"bad_seeds=[{bad_seed}]",
                "--videos",
                "failures",
                "--workers",
                "2",
                "--run-dir",
                str(run_dir),
                "--no-progress",
            ]
        )
        == 0
    )
    with RunStore(run_dir, readonly=True) as store:
        records = {(r.task, r.episode_index): r for r in store.records()}
    outcomes = {key: r.termination for key, r in records.items()}
    assert outcomes == {
        ("open_drawer", 0): "success",
        ("open_drawer", 1): "policy_error",
        ("pick_place_cube", 0): "timeout",
        ("pick_place_cube", 1): "timeout",
    }

    failed = {key for key, r in records.items() if not r.success}
    with_video = {key for key, r in records.items() if r.video_path}
    assert with_video == failed, f"videos for {sorted(with_video)}, failed episodes {sorted(failed)}"
    on_disk = sorted(p.relative_to(run_dir).as_posix() for p in (run_dir / "videos").iterdir())
    assert on_disk == sorted(records[key].video_path for key in failed)
    for key in failed:
        with imageio.get_reader(run_dir / records[key].video_path) as reader:
            frames = reader.count_frames()
        # the frame after reset, then one every ``video_frame_stride`` counted steps (render on demand keeps
        # every 2nd frame and says so in the record)
        stride = int(records[key].extras.get("video_frame_stride", 1))
        assert frames == records[key].steps // stride + 1, (key, frames, records[key].steps, stride)
    assert records[("pick_place_cube", 0)].steps == SHORT_STEPS
