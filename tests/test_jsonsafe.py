"""The one JSON sanitizer: bounded by default (episode extras, doctor.json), unbounded for a server's metadata."""

from __future__ import annotations

import json

import numpy as np

from vla_eval.jsonsafe import json_safe


def test_numpy_values_become_strict_json():
    out = json_safe({"a": np.arange(3), "b": np.float32(0.5), 3: (np.int64(2), None), "c": float("nan"), "d": b"hi"})
    assert out == {"a": [0, 1, 2], "b": 0.5, "3": [2, None], "c": "nan", "d": "hi"}
    json.dumps(out, allow_nan=False)  # no NaN sneaks into the file


def test_large_arrays_and_long_text_are_bounded_by_default():
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    out = json_safe({"image": image, "blob": b"x" * 5000, "obj": object()})
    assert out["image"] == "<array shape=(64, 64, 3) dtype=uint8>"
    assert len(out["blob"]) == 2000
    assert out["obj"].startswith("<object object")


def test_unbounded_keeps_every_element_and_byte():
    meta = {"norm_stats": np.arange(20_000, dtype=np.float32), "names": np.array(["a", "b"]), "note": b"y" * 5000}
    out = json_safe(meta, max_array=None, max_text=None)
    assert out["norm_stats"] == list(range(20_000))
    assert out["names"] == ["a", "b"]
    assert len(out["note"]) == 5000
