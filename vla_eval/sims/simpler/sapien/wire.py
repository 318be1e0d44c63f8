"""Framing between vla-eval and the SimplerEnv engine server: a 4-byte big-endian length, then that many bytes of
UTF-8 JSON, one message per frame, over the child's stdin (requests) and stdout (replies).

Standard library only: the same file is imported by vla-eval (numpy 2) and, by path, by the server running in
SimplerEnv's own interpreter (numpy < 2), so it cannot depend on either side's packages. Payloads are small (poses,
joint positions, SimplerEnv's ``evaluate()`` info): JSON lists are cheaper here than an array codec.

A request is ``{"op": <name>, ...}``; a reply is ``{"ok": true, ...}`` or ``{"ok": false, "error": <one line>,
"trace": <traceback text>}``.
"""

from __future__ import annotations

import json
import struct
from typing import IO, Any

MAX_FRAME_BYTES = 64 << 20
"""A frame longer than this is a corrupted stream (a stray print on the server's stdout), not a message."""

_HEADER = struct.Struct(">I")


class WireError(RuntimeError):
    """The stream ended or carried something that is not a frame."""


def write_frame(stream: IO[bytes], message: dict[str, Any]) -> None:
    body = json.dumps(message, separators=(",", ":"), allow_nan=False).encode("utf-8")
    stream.write(_HEADER.pack(len(body)) + body)
    stream.flush()


def _read_exact(stream: IO[bytes], n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise WireError(f"stream closed after {n - left} of {n} bytes")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(stream: IO[bytes]) -> dict[str, Any]:
    (size,) = _HEADER.unpack(_read_exact(stream, _HEADER.size))
    if size > MAX_FRAME_BYTES:
        raise WireError(f"frame of {size} bytes (over {MAX_FRAME_BYTES}): the stream is not speaking this protocol")
    message = json.loads(_read_exact(stream, size).decode("utf-8"))
    if not isinstance(message, dict):
        raise WireError(f"frame holds a {type(message).__name__}, expected an object")
    return message
