"""Parser of VLA-R1's answers (``<think>…</think><output>JSON</output>``) into normalised image points.

It reads untrusted model text, so it never raises and never evaluates code.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

OUTPUT_RE = re.compile(r"<output>\s*(.*?)\s*</output>", re.S | re.I)
THINK_RE = re.compile(r"<think>\s*(.*?)\s*</think>", re.S | re.I)


@dataclass
class ParsedOutput:
    """Result of parsing one generation. ``points`` is ``(N, 2)`` normalised ``(x, y)`` or None on failure."""

    raw_text: str
    reasoning: str
    points: np.ndarray | None = None
    box: dict[str, float] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.points is not None


def _load_json(body: str) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        # Python-literal fallback (single quotes, trailing commas): safe, no code execution.
        return ast.literal_eval(body)


def _number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{v!r} is not a number")
    f = float(v)
    if not np.isfinite(f):
        raise ValueError(f"{v!r} is not finite")
    return f


def parse_output(
    text: str,
    variant: Literal["trajectory", "affordance"] = "trajectory",
    coords: Literal["normalized", "pixels"] = "normalized",
    image_hw: tuple[int, int] | None = None,
    tolerance: float = 0.02,
) -> ParsedOutput:
    """Parse ``<think>…</think><output>JSON</output>``; never raises.

    Trajectory: a non-empty list of ``[x, y]`` pairs. Affordance: ``{"x", "y", "width",
    "height"}`` with ``(x, y)`` the box centre; its centre becomes a one-point plan.
    ``coords="pixels"`` divides by ``image_hw`` (the image the model saw).  Values may
    overshoot [0, 1] by ``tolerance`` (then clipped); further out is a failure, because
    it would be lifted through a pixel that does not exist.
    """
    raw = text if isinstance(text, str) else str(text)
    think = THINK_RE.search(raw)
    reasoning = think.group(1) if think else ""
    search_from = raw[think.end() :] if think else raw
    m = OUTPUT_RE.search(search_from) or OUTPUT_RE.search(raw)
    if not m:
        return ParsedOutput(raw, reasoning, error="no <output>…</output> block")
    body = m.group(1)
    try:
        data = _load_json(body)
    except (ValueError, SyntaxError) as exc:
        return ParsedOutput(raw, reasoning, error=f"output is not JSON: {exc}")
    except (RecursionError, MemoryError) as exc:
        # hostile or degenerate output ("[" * 100000): a parse failure like any other
        return ParsedOutput(raw, reasoning, error=f"output is not JSON: nested too deeply ({type(exc).__name__})")
    box = None
    try:
        if variant == "trajectory":
            if not isinstance(data, (list, tuple)) or not data:
                raise ValueError("expected a non-empty list of [x, y] points")
            pts = []
            for p in data:
                if not isinstance(p, (list, tuple)) or len(p) != 2:
                    raise ValueError(f"point {p!r} is not [x, y]")
                pts.append([_number(p[0]), _number(p[1])])
            points = np.asarray(pts, dtype=np.float64)
        else:
            if not isinstance(data, dict):
                raise ValueError('expected {"x": ..., "y": ..., "width": ..., "height": ...}')
            box = {k: _number(data[k]) for k in ("x", "y", "width", "height")}
            points = np.array([[box["x"], box["y"]]])
    except (KeyError, ValueError, TypeError) as exc:
        return ParsedOutput(raw, reasoning, error=f"malformed output: {exc}")
    if coords == "pixels":
        if image_hw is None:
            return ParsedOutput(raw, reasoning, error="pixel coordinates need the model image size")
        points = points / np.array([image_hw[1], image_hw[0]], dtype=np.float64)
    if np.any(points < -tolerance) or np.any(points > 1 + tolerance):
        return ParsedOutput(raw, reasoning, error=f"coordinates outside [0, 1]: {points.round(3).tolist()}")
    return ParsedOutput(raw, reasoning, points=np.clip(points, 0.0, 1.0), box=box)
