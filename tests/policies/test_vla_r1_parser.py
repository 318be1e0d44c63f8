"""VLA-R1 output parsing on well-formed and malformed generations, and the exact prompts."""

from __future__ import annotations

import numpy as np
import pytest

from vla_eval.policies.vla_r1 import build_prompt, parse_output


def test_prompts_exactly_as_upstream():
    assert build_prompt("pick up the red cube") == (
        "pick up the red cube Please output the optimal trajectory of the end-effector to the target object in the "
        "format <output>[[x1, y1], [x2, y2], ...]</output>."
    )
    aff = build_prompt("open the drawer", "affordance")
    assert aff.startswith("open the drawer Please output the affordance region")
    assert aff.endswith('<output>{"x": ..., "y": ..., "width": ..., "height": ...}</output>.')
    assert build_prompt("x", template="Task: {instruction}!") == "Task: x!"


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
    ("<output>{\"x\": 0.5}</output>", "malformed"),
    ("<output>[[\"a\", 0.2]]</output>", "malformed"),
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
    p = parse_output('<think>handle</think><output>{"x": 0.4, "y": 0.6, "width": 0.1, "height": 0.2}</output>', "affordance")
    assert p.ok and p.box == {"x": 0.4, "y": 0.6, "width": 0.1, "height": 0.2}
    np.testing.assert_allclose(p.points, [[0.4, 0.6]])
    assert not parse_output("<output>[[0.1, 0.2]]</output>", "affordance").ok


def test_pixel_coordinates():
    p = parse_output("<output>[[28, 14]]</output>", coords="pixels", image_hw=(56, 112))
    np.testing.assert_allclose(p.points, [[0.25, 0.25]])
    assert not parse_output("<output>[[28, 14]]</output>", coords="pixels").ok
