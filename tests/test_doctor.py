"""``vla-eval doctor``: exit 0 for a sound suite/policy pair, non-zero with the problem named otherwise."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from vla_eval.cli.main import main
from vla_eval.execution.plan import episode_seed
from vla_eval.sims.tabletop.env import TabletopEnv

pytestmark = pytest.mark.slow


def _doctor(tmp_path, *args):
    out = tmp_path / "doc"
    rc = main(["doctor", "--suite", "tabletop_basic", "--out", str(out), *args])
    return rc, json.loads((out / "doctor.json").read_text()), out


def test_scripted_expert_is_healthy(tmp_path, capsys):
    rc, report, out = _doctor(tmp_path, "--policy", "scripted")
    text = capsys.readouterr().out
    assert rc == 0 and report["problems"] == [] and "nothing wrong found" in text
    names = {c[0] for c in report["checks"]}
    assert {"observation contract", "chunk finite", "chunk range", "action space compatible"} <= names
    assert report["protocol"]["max_steps"] == 200 and report["protocol"]["replan_steps"] == "whole chunk"
    assert "mujoco" in report["versions"] and (out / "agentview_true_view.png").is_file()


def test_nan_policy_fails_with_the_reason(tmp_path, capsys):
    rc, report, _ = _doctor(tmp_path, "--policy", "_faulty:BadOutputPolicy", "--policy-arg", "mode=nan")
    assert rc == 1 and any(p.startswith("chunk finite") for p in report["problems"])
    assert "chunk finite" in capsys.readouterr().out


def test_saves_exactly_what_the_policy_receives(tmp_path):
    rc, report, out = _doctor(
        tmp_path, "--policy", "_faulty:ImageEchoPolicy", "--policy-arg", "image_orientation=libero_rot180"
    )
    assert rc == 0, report["problems"]
    assert report["protocol"]["image_conversion"] == "top_left->libero_rot180:flip_cols"
    env = TabletopEnv("pick_place_cube", cameras=("agentview",), image_size=(128, 128))
    try:
        # the run's first episode of tabletop_basic's first task (suite seed 0, no settle steps)
        raw = env.reset(seed=episode_seed(0, "pick_place_cube", 0))[0]["images"]["agentview"]
    finally:
        env.close()
    seen = np.asarray(Image.open(out / "agentview_policy_input.png"))
    np.testing.assert_array_equal(seen, raw[:, ::-1])
    np.testing.assert_array_equal(np.asarray(Image.open(out / "agentview_true_view.png")), raw)
    np.testing.assert_array_equal(np.asarray(Image.open(out / "model_input_0.png")), raw[:, ::-1][::2, ::2])


def test_unknown_task_is_a_clear_error(tmp_path, capsys):
    rc = main(["doctor", "--suite", "tabletop_basic", "--policy", "scripted", "--task", "fly", "--out", str(tmp_path)])
    assert rc == 2 and "'fly' is not in suite tabletop_basic" in capsys.readouterr().err
