"""The openpi wire format: msgpack, numpy arrays as ``{b"__ndarray__": True, b"data", b"dtype", b"shape"}``.

Same byte layout as ``openpi_client.msgpack_numpy`` (re-implemented so the harness does not
depend on that package, whose metadata pins numpy<2), so an openpi server or client on the
other end decodes our frames and we decode theirs.

Decoding is hostile-input safe, because both ends read frames from the network: a server
reads whatever a client sends, and every worker reads what a (possibly foreign) server
answers. Only numeric and bool dtypes are rebuilt (an object array rebuilt from raw bytes
is a set of wild pointers: numpy segfaults on first touch), ``shape`` must account for
exactly the bytes sent, and a frame larger than :data:`MAX_FRAME_BYTES` is refused
before it is parsed. Every violation raises :class:`ProtocolError`.
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any

import msgpack
import numpy as np

MAX_FRAME_BYTES = int(os.environ.get("VLA_EVAL_MAX_FRAME_BYTES", 256 * 1024 * 1024))
"""Largest frame either end accepts (default 256 MiB: a batch of full-HD images fits; set
``VLA_EVAL_MAX_FRAME_BYTES`` or pass ``max_frame_bytes`` to raise or lower it)."""

ALLOWED_KINDS = frozenset("biuf")
"""dtype kinds that may cross the wire: bool, signed / unsigned int, float."""

MAX_NDIM = 32


class ProtocolError(ValueError):
    """A frame that does not follow the wire format (or exceeds its limits)."""


def _dtype(raw: Any) -> np.dtype:
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", errors="replace")
    if not isinstance(raw, str):
        raise ProtocolError(f"array dtype must be a string, got {type(raw).__name__}")
    try:
        dtype = np.dtype(raw)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"unknown array dtype {raw!r}") from exc
    if dtype.kind not in ALLOWED_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise ProtocolError(f"array dtype {raw!r} is not allowed; only bool, integer and float arrays cross the wire")
    return dtype


def _shape(raw: Any) -> tuple[int, ...]:
    if not isinstance(raw, (list, tuple)) or len(raw) > MAX_NDIM:
        raise ProtocolError(f"array shape must be a list of at most {MAX_NDIM} integers, got {raw!r}"[:300])
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in raw):
        raise ProtocolError(f"array shape must hold non-negative integers, got {raw!r}"[:300])
    return tuple(raw)


def pack_array(obj: Any) -> Any:
    if isinstance(obj, (np.ndarray, np.generic)) and obj.dtype.kind not in ALLOWED_KINDS:
        raise ValueError(f"unsupported dtype for the wire: {obj.dtype}")
    if isinstance(obj, np.ndarray):
        arr = np.ascontiguousarray(obj)
        return {b"__ndarray__": True, b"data": arr.tobytes(), b"dtype": arr.dtype.str, b"shape": arr.shape}
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    if isinstance(obj, tuple):
        return list(obj)
    return obj


def unpack_array(obj: dict) -> Any:
    if b"__ndarray__" in obj:
        data = obj.get(b"data")
        if not isinstance(data, bytes):
            raise ProtocolError("array data must be raw bytes")
        dtype, shape = _dtype(obj.get(b"dtype")), _shape(obj.get(b"shape"))
        expected = math.prod(shape) * dtype.itemsize
        if expected != len(data):
            raise ProtocolError(
                f"array of shape {shape} and dtype {dtype.str} needs {expected} bytes, frame carries {len(data)}"
            )
        return np.frombuffer(data, dtype=dtype).reshape(shape).copy()  # writable, independent of the frame
    if b"__npgeneric__" in obj:
        dtype = _dtype(obj.get(b"dtype"))
        value = obj.get(b"data")
        if not isinstance(value, (bool, int, float)):
            raise ProtocolError(f"numpy scalar data must be a number, got {type(value).__name__}")
        try:
            return dtype.type(value)
        except (OverflowError, ValueError) as exc:
            raise ProtocolError(f"numpy scalar {value!r} does not fit {dtype.str}") from exc
    return obj


def unpackb(data: bytes, max_frame_bytes: int | None = None) -> Any:
    """Decode one frame; every malformed or oversized frame raises :class:`ProtocolError`."""
    limit = MAX_FRAME_BYTES if max_frame_bytes is None else max_frame_bytes
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ProtocolError(f"expected a binary frame, got {type(data).__name__}")
    if len(data) > limit:
        raise ProtocolError(f"frame of {len(data)} bytes exceeds the limit of {limit} bytes (max_frame_bytes)")
    try:
        return msgpack.unpackb(data, object_hook=unpack_array)
    except ProtocolError:
        raise
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, RecursionError) as exc:
        raise ProtocolError(f"malformed msgpack frame: {type(exc).__name__}: {exc}"[:500]) from exc


Packer = functools.partial(msgpack.Packer, default=pack_array)
packb = functools.partial(msgpack.packb, default=pack_array)


def to_wire(obj: Any) -> Any:
    """Make extras msgpack-safe: numpy stays numpy, other unknown objects become strings."""
    if isinstance(obj, dict):
        return {str(k): to_wire(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_wire(v) for v in obj]
    if isinstance(obj, (np.ndarray, np.generic)) and obj.dtype.kind not in ALLOWED_KINDS:
        return str(obj)
    if isinstance(obj, (np.ndarray, np.generic, str, int, float, bool, bytes)) or obj is None:
        return obj
    return str(obj)
