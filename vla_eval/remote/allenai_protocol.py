"""allenai's model-server protocol (PyPI ``vla-eval`` 0.8.0, allenai/vla-evaluation-harness), both ends.

Their harness and ours share the import name ``vla_eval``, so their package can never be imported
here; this module re-implements the wire format from their source (``docs/policies.md``, section
"allenai model servers", cites each fact by file and line):

* one websocket; every frame is a msgpack map ``{type, payload, seq, timestamp}``, ``type`` one of
  ``hello / observation / action / episode_start / episode_end / error``, protocol version 1;
* numpy arrays travel as ``{"__ndarray__": True, data, dtype, shape}`` with string keys, HWC uint8
  images with 1, 3 or 4 channels as ``{"__image__": True, format: png|jpeg|raw, data, shape}``;
* the client sends HELLO first and the server answers HELLO (with ``observation_params``,
  ``action_spec``, ``observation_spec``); then per episode one EPISODE_START, one OBSERVATION per
  env step, each answered by exactly one ACTION (or ERROR) echoing its ``seq``, and an EPISODE_END.

Decoding is hostile-input safe, as for the openpi format (:mod:`vla_eval.remote.protocol`): only
numeric arrays are rebuilt, shapes must account for the bytes sent, compressed images are
size-checked before they are decoded, and every violation raises :class:`AllenaiProtocolError`.
"""

from __future__ import annotations

import enum
import io
import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import msgpack
import numpy as np

from vla_eval.remote import protocol

PROTOCOL_VERSION = 1

ImageFormat = Literal["png", "jpeg", "raw"]
IMAGE_FORMATS: tuple[str, ...] = ("png", "jpeg", "raw")
MAX_IMAGE_PIXELS = 64 * 1024 * 1024
"""Largest compressed image either end decodes (a PNG of a few KiB can claim gigapixels)."""


class MessageType(str, enum.Enum):
    HELLO = "hello"
    OBSERVATION = "observation"
    ACTION = "action"
    EPISODE_START = "episode_start"
    EPISODE_END = "episode_end"
    ERROR = "error"


class AllenaiProtocolError(protocol.ProtocolError):
    """A frame that does not follow allenai's wire format (or exceeds this end's limits)."""


@dataclass(frozen=True)
class Frame:
    type: MessageType
    payload: dict[str, Any]
    seq: int = 0
    timestamp: float = field(default_factory=time.time)


def hello_payload(**extra: Any) -> dict[str, Any]:
    """The fields both ends put in HELLO; ``harness_version`` is informational (they only log it)."""
    from vla_eval import __version__

    return {"harness_version": f"vla-eval-harness {__version__}", "protocol_version": PROTOCOL_VERSION, **extra}


def is_image_array(arr: np.ndarray) -> bool:
    """The arrays their codec sends as images: HWC uint8 with 1, 3 or 4 channels."""
    return arr.ndim == 3 and arr.dtype == np.uint8 and arr.shape[2] in (1, 3, 4)


def encode_image(img: np.ndarray, fmt: ImageFormat) -> dict[str, Any]:
    img = np.ascontiguousarray(img)
    if fmt == "raw":
        return {
            "__image__": True,
            "format": "raw",
            "data": img.tobytes(),
            "dtype": img.dtype.str,
            "shape": list(img.shape),
        }
    from PIL import Image

    pil = Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img)
    if fmt == "jpeg" and pil.mode != "RGB":
        raise ValueError(f"JPEG frames need RGB images, got a {img.shape[2]}-channel image; use png or raw")
    buf = io.BytesIO()
    if fmt == "jpeg":
        pil.save(buf, format="JPEG", quality=95)
    else:
        pil.save(buf, format="PNG")
    return {"__image__": True, "format": fmt, "data": buf.getvalue(), "shape": list(img.shape)}


def _encoder(image_format: ImageFormat):
    def default(obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            if obj.dtype.kind not in protocol.ALLOWED_KINDS:
                raise ValueError(f"unsupported dtype for the wire: {obj.dtype}")
            if image_format != "raw" and is_image_array(obj):
                return encode_image(obj, image_format)
            arr = np.ascontiguousarray(obj)
            return {"__ndarray__": True, "data": arr.tobytes(), "dtype": arr.dtype.str, "shape": list(arr.shape)}
        if isinstance(obj, np.generic):
            return obj.item()
        raise TypeError(f"cannot send a {type(obj).__name__} over the wire")

    return default


def encode_frame(frame: Frame, image_format: ImageFormat = "png") -> bytes:
    raw = {
        "type": frame.type.value,
        "payload": frame.payload,
        "seq": int(frame.seq),
        "timestamp": float(frame.timestamp),
    }
    return msgpack.packb(raw, default=_encoder(image_format), use_bin_type=True)


def _decode_image(obj: dict[str, Any]) -> np.ndarray:
    fmt, data = obj.get("format"), obj.get("data")
    if fmt not in IMAGE_FORMATS:
        raise AllenaiProtocolError(f"image format must be one of {', '.join(IMAGE_FORMATS)}, got {fmt!r}"[:200])
    if not isinstance(data, bytes):
        raise AllenaiProtocolError("image data must be raw bytes")
    if fmt == "raw":
        return _decode_array({**obj, "__ndarray__": True})
    from PIL import Image, UnidentifiedImageError

    try:
        pil = Image.open(io.BytesIO(data))
        if pil.format != fmt.upper():
            raise AllenaiProtocolError(f"image declared {fmt!r} but its bytes are {pil.format or 'unknown'}")
        w, h = pil.size
        if w * h > MAX_IMAGE_PIXELS:
            raise AllenaiProtocolError(f"image of {w}x{h} pixels exceeds the limit of {MAX_IMAGE_PIXELS} pixels")
        arr = np.array(pil)
    except AllenaiProtocolError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise AllenaiProtocolError(f"undecodable {fmt} image: {exc}"[:300]) from exc
    shape = obj.get("shape")
    if isinstance(shape, list) and all(isinstance(d, int) for d in shape) and math.prod(shape) == arr.size:
        arr = arr.reshape(shape)  # a 1-channel image decodes as (H, W); the sender said (H, W, 1)
    return arr


def _decode_array(obj: dict[str, Any]) -> np.ndarray:
    data = obj.get("data")
    if not isinstance(data, bytes):
        raise AllenaiProtocolError("array data must be raw bytes")
    try:
        dtype, shape = protocol._dtype(obj.get("dtype")), protocol._shape(obj.get("shape"))
    except protocol.ProtocolError as exc:
        raise AllenaiProtocolError(str(exc)) from None
    expected = math.prod(shape) * dtype.itemsize
    if expected != len(data):
        raise AllenaiProtocolError(
            f"array of shape {shape} and dtype {dtype.str} needs {expected} bytes, frame carries {len(data)}"
        )
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def _object_hook(obj: dict[Any, Any]) -> Any:
    if obj.get("__image__") is True:
        return _decode_image(obj)
    if obj.get("__ndarray__") is True:
        return _decode_array(obj)
    return obj


def decode_frame(data: Any, max_frame_bytes: int | None = None) -> Frame:
    """One frame from the network; anything malformed raises :class:`AllenaiProtocolError`."""
    limit = protocol.MAX_FRAME_BYTES if max_frame_bytes is None else max_frame_bytes
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise AllenaiProtocolError(f"expected a binary frame, got {type(data).__name__}: {str(data)[:200]!r}")
    if len(data) > limit:
        raise AllenaiProtocolError(f"frame of {len(data)} bytes exceeds the limit of {limit} bytes (max_frame_bytes)")
    try:
        raw = msgpack.unpackb(data, object_hook=_object_hook, raw=False, strict_map_key=False)
    except AllenaiProtocolError:
        raise
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, RecursionError) as exc:
        raise AllenaiProtocolError(f"malformed msgpack frame: {type(exc).__name__}: {exc}"[:500]) from exc
    if not isinstance(raw, dict):
        raise AllenaiProtocolError(f"a frame must be a map, got {type(raw).__name__}")
    missing = [k for k in ("type", "payload", "seq", "timestamp") if k not in raw]
    if missing:
        raise AllenaiProtocolError(f"frame lacks {missing}; keys {sorted(map(str, raw))}"[:300])
    try:
        kind = MessageType(raw["type"])
    except ValueError:
        raise AllenaiProtocolError(f"unknown frame type {raw['type']!r}"[:200]) from None
    seq, ts, payload = raw["seq"], raw["timestamp"], raw["payload"]
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise AllenaiProtocolError(f"frame seq must be an integer, got {seq!r}"[:200])
    if isinstance(ts, bool) or not isinstance(ts, (int, float)):
        raise AllenaiProtocolError(f"frame timestamp must be a number, got {ts!r}"[:200])
    if not isinstance(payload, dict):
        raise AllenaiProtocolError(f"{kind.value} payload must be a map, got {type(payload).__name__}")
    return Frame(kind, payload, seq, float(ts))


# -- action and observation specs (their ``vla_eval/specs.py`` DimSpec dicts)


def dim_spec(
    name: str, dims: int, fmt: str, rng: tuple[float, float] | None = None, description: str = ""
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "dims": dims, "format": fmt}
    if rng is not None:
        out["range"] = [float(rng[0]), float(rng[1])]
    if description:
        out["description"] = description
    return out
