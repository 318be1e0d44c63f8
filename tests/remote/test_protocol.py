"""The msgpack-numpy wire format, byte for byte (the layout openpi_client.msgpack_numpy writes)."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from vla_eval.remote import protocol


@pytest.mark.parametrize(
    "arr",
    [
        np.arange(6, dtype=np.float32).reshape(2, 3),
        np.array([[1, -2]], np.int64),
        np.zeros((0, 4), np.uint8),
        np.array([True, False]),
    ],
)
def test_array_frame_layout(arr):
    raw = msgpack.unpackb(protocol.packb({"a": arr}), raw=True)[b"a"]
    assert raw[b"__ndarray__"] is True and raw[b"data"] == arr.tobytes()
    assert raw[b"dtype"] == arr.dtype.str.encode() and raw[b"shape"] == list(arr.shape)
    back = protocol.unpackb(protocol.packb({"a": arr}))["a"]
    assert back.dtype == arr.dtype and back.shape == arr.shape and np.array_equal(back, arr)


def test_non_contiguous_array_is_sent_in_logical_order():
    arr = np.arange(12, dtype=np.int32).reshape(3, 4).T
    back = protocol.unpackb(protocol.packb(arr))
    assert np.array_equal(back, arr) and back.shape == (4, 3)


def test_numpy_scalars_and_tuples():
    back = protocol.unpackb(protocol.packb({"x": np.float32(1.5), "n": np.int64(-3), "t": (1, 2)}))
    assert back["x"] == 1.5 and back["x"].dtype == np.float32 and back["n"].dtype == np.int64 and back["t"] == [1, 2]
    raw = msgpack.unpackb(protocol.packb(np.float32(1.5)), raw=True)
    assert raw == {b"__npgeneric__": True, b"data": 1.5, b"dtype": b"<f4"}


@pytest.mark.parametrize("bad", [np.array([object()]), np.array([1 + 2j]), np.zeros(2, dtype="V4"), np.complex64(1j)])
def test_object_void_complex_are_refused(bad):
    with pytest.raises(ValueError, match="unsupported dtype"):
        protocol.packb({"x": bad})


def test_plain_dicts_pass_through_unpack():
    assert protocol.unpackb(protocol.packb({"a": {"b": [1, "s"]}})) == {"a": {"b": [1, "s"]}}


def test_packer_streams_the_same_bytes():
    obj = {"a": np.ones(3, np.float64)}
    assert protocol.Packer().pack(obj) == protocol.packb(obj)


def test_to_wire_keeps_numpy_and_stringifies_the_rest():
    class Thing:
        def __str__(self):
            return "thing"

    arr = np.ones(2)
    out = protocol.to_wire({1: [arr, (Thing(), None, b"x", True, 2, 2.5, "s")], "g": np.int8(3)})
    assert set(out) == {"1", "g"} and out["1"][0] is arr and out["g"] == 3
    assert out["1"][1] == ["thing", None, b"x", True, 2, 2.5, "s"]
