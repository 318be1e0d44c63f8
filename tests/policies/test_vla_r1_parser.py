"""VLA-R1 output parsing on well-formed and malformed generations, and the exact prompts."""

from __future__ import annotations

import numpy as np
import pytest

from vla_eval.policies.vla_r1 import build_prompt, parse_output

# Upstream's format requests, copied from GigaAI-research/VLA-R1 scripts/inference.py
# line 12 (traj_form) and line 11 (aff_form); lines 68-69 and 76-77 send `prompt + form`.
UPSTREAM_TRAJ_FORM = (
    " Please output the optimal trajectory of the end-effector to the target object in the format "
    "<output>[[x1, y1], [x2, y2], ...]</output>.\n<image>"
)
UPSTREAM_AFF_FORM = (
    " Please output the 2D affordance region define by bounding box of the object in the format "
    '<output>{"x": value, "y": value, "width": value, "height": value}</output>.\n<image>'
)


def test_prompts_equal_upstream_bytes():
    assert (
        build_prompt("reach for the ketchup bottle on the oven.")
        == "reach for the ketchup bottle on the oven." + UPSTREAM_TRAJ_FORM
    )
    assert build_prompt("pick up the broccoli and place it in a pot.", "affordance") == (
        "pick up the broccoli and place it in a pot." + UPSTREAM_AFF_FORM
    )
    assert (
        build_prompt("open the drawer ", "affordance").encode() == ("open the drawer " + UPSTREAM_AFF_FORM).encode()
    )  # no strip
    assert build_prompt("x", template="Task: {instruction}!") == "Task: x!"


def test_user_turn_composed_as_upstream():
    from vla_eval.policies.vla_r1 import user_content

    # scripts/server.py lines 22-26: [{"type": "text", "text": f" {prompt}"}, {"type": "image", ...}]
    assert user_content("go" + UPSTREAM_TRAJ_FORM) == [
        {"type": "text", "text": " go" + UPSTREAM_TRAJ_FORM},
        {"type": "image"},
    ]
    # RFT_training/verl/verl/utils/dataset/rl_dataset.py lines 195-214: split at <image>, marker -> image
    assert user_content("go" + UPSTREAM_TRAJ_FORM, "upstream_training") == [
        {"type": "text", "text": "go" + UPSTREAM_TRAJ_FORM[: -len("<image>")]},
        {"type": "image"},
    ]
    with pytest.raises(ValueError, match="exactly one <image>"):
        user_content("no marker", "upstream_training")


WELL_FORMED = [
    ("<think>go left</think><output>[[0.1, 0.2], [0.3, 0.4]]</output>", [[0.1, 0.2], [0.3, 0.4]], "go left"),
    ("<THINK>\nmulti\nline\n</THINK>\n<OUTPUT>\n [[0.5,0.5]] \n</OUTPUT>", [[0.5, 0.5]], "multi\nline"),
    ("<output>[[0, 1], [1, 0]]</output>", [[0, 1], [1, 0]], ""),
    ("<think>a <output>[[9, 9]]</output> inside thoughts</think><output>[[0.2, 0.3]]</output>", [[0.2, 0.3]], None),
    ("<output>[[0.5, 0.5],]</output>", [[0.5, 0.5]], ""),  # trailing comma: literal fallback
    ("<output>[[1.01, -0.01]]</output>", [[1.0, 0.0]], ""),  # within tolerance -> clipped
]


@pytest.mark.parametrize("text,points,reasoning", WELL_FORMED)
def test_well_formed_trajectories(text, points, reasoning):
    p = parse_output(text)
    assert p.ok, p.error
    np.testing.assert_allclose(p.points, points)
    if reasoning is not None:
        assert p.reasoning == reasoning
    assert p.raw_text == text


MALFORMED = [
    ("", "no <output>"),
    ("<think>only thinking</think>", "no <output>"),
    ("<output>[[0.1, 0.2]]", "no <output>"),
    ("<output></output>", "not JSON"),
    ("<output>[[0.1, 0.2], [0.3]]</output>", "malformed"),
    ("<output>[]</output>", "malformed"),
    ('<output>{"x": 0.5}</output>', "malformed"),
    ('<output>[["a", 0.2]]</output>', "malformed"),
    ("<output>[[true, 0.2]]</output>", "malformed"),
    ("<output>[[NaN, 0.2]]</output>", "malformed"),
    ("<output>[[1.5, 0.2]]</output>", "outside [0, 1]"),
    ("<output>__import__('os').system('x')</output>", "not JSON"),
]


@pytest.mark.parametrize("text,err", MALFORMED)
def test_malformed_outputs_are_failures_not_exceptions(text, err):
    p = parse_output(text)
    assert not p.ok and err in p.error


def test_affordance_box_centre():
    p = parse_output(
        '<think>handle</think><output>{"x": 0.4, "y": 0.6, "width": 0.1, "height": 0.2}</output>', "affordance"
    )
    assert p.ok and p.box == {"x": 0.4, "y": 0.6, "width": 0.1, "height": 0.2}
    np.testing.assert_allclose(p.points, [[0.4, 0.6]])
    assert not parse_output("<output>[[0.1, 0.2]]</output>", "affordance").ok


def test_pixel_coordinates():
    p = parse_output("<output>[[28, 14]]</output>", coords="pixels", image_hw=(56, 112))
    np.testing.assert_allclose(p.points, [[0.25, 0.25]])
    assert not parse_output("<output>[[28, 14]]</output>", coords="pixels").ok
