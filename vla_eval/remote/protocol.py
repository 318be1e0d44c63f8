"""The openpi wire format: msgpack, numpy arrays as ``{b"__ndarray__": True, b"data", b"dtype", b"shape"}``.

Same byte layout as ``openpi_client.msgpack_numpy`` (re-implemented so the harness does not
depend on that package, whose metadata pins numpy<2), so an openpi server or client on the
other end decodes our frames and we decode theirs.  Object / void / complex arrays are refused:
msgpack must never become a pickle channel.
"""

from __future__ import annotations

import functools
from typing import Any

import msgpack
import numpy as np


def pack_array(obj: Any) -> Any:
    if isinstance(obj, (np.ndarray, np.generic)) and obj.dtype.kind in ("V", "O", "c"):
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
        return np.ndarray(buffer=obj[b"data"], dtype=np.dtype(obj[b"dtype"]), shape=obj[b"shape"])
    if b"__npgeneric__" in obj:
        return np.dtype(obj[b"dtype"]).type(obj[b"data"])
    return obj


Packer = functools.partial(msgpack.Packer, default=pack_array)
packb = functools.partial(msgpack.packb, default=pack_array)
unpackb = functools.partial(msgpack.unpackb, object_hook=unpack_array)


def to_wire(obj: Any) -> Any:
    """Make extras msgpack-safe: numpy stays numpy, other unknown objects become strings."""
    if isinstance(obj, dict):
        return {str(k): to_wire(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_wire(v) for v in obj]
    if isinstance(obj, (np.ndarray, np.generic, str, int, float, bool, bytes)) or obj is None:
        return obj
    return str(obj)
