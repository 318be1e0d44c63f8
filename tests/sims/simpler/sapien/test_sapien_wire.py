"""The framing vla-eval and SimplerEnv's engine server speak (no engine needed)."""

from __future__ import annotations

import io
import struct

import pytest

from vla_eval.sims.simpler.sapien import wire


def test_frames_round_trip_in_order():
    buf = io.BytesIO()
    wire.write_frame(buf, {"op": "step", "action": [0.0, -0.01, 0.02, 0, 0, 0.05, 1.0]})
    wire.write_frame(buf, {"op": "close"})
    buf.seek(0)
    assert wire.read_frame(buf) == {"op": "step", "action": [0.0, -0.01, 0.02, 0, 0, 0.05, 1.0]}
    assert wire.read_frame(buf) == {"op": "close"}


def test_a_cut_stream_is_an_error_not_a_partial_message():
    buf = io.BytesIO()
    wire.write_frame(buf, {"op": "reset", "seed": 3})
    cut = io.BytesIO(buf.getvalue()[:-2])
    with pytest.raises(wire.WireError, match="stream closed"):
        wire.read_frame(cut)


def test_stray_output_is_rejected_as_not_a_frame():
    """A print on the server's stdout would be read as a huge length: refused, not allocated."""
    with pytest.raises(wire.WireError, match="not speaking this protocol"):
        wire.read_frame(io.BytesIO(b"reset ok {'scene_name': ...}\n"))


def test_non_finite_numbers_are_refused_at_the_sender():
    with pytest.raises(ValueError):
        wire.write_frame(io.BytesIO(), {"op": "step", "action": [float("nan")] * 7})


def test_a_frame_must_hold_an_object():
    body = b"[1, 2]"
    with pytest.raises(wire.WireError, match="holds a list"):
        wire.read_frame(io.BytesIO(struct.pack(">I", len(body)) + body))
