"""One JSON sanitizer: what a policy, a doctor report or a wire frame hands us, made storable."""

from __future__ import annotations

from typing import Any

import numpy as np

MAX_ARRAY = 10_000
"""Largest array stored element by element by default; bigger ones (images) become a one-line summary."""
MAX_TEXT = 2000
"""Characters kept of a ``repr`` or of decoded bytes by default."""


def json_safe(value: Any, depth: int = 0, *, max_array: int | None = MAX_ARRAY, max_text: int | None = MAX_TEXT) -> Any:
    """A JSON-storable copy of ``value``: arrays become lists, unknown objects their ``repr``.

    Non-finite floats become strings (``"nan"``), since strict JSON has no NaN.  ``max_array`` and
    ``max_text`` bound what one record may grow to; ``None`` keeps everything, for data that must
    arrive whole (a policy server's metadata, whose lists a client may read back).
    """
    if depth > 20:
        return "<nested too deep>"
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value if not isinstance(value, float) or np.isfinite(value) else str(value)
    if isinstance(value, np.generic):
        return json_safe(value.item(), depth + 1, max_array=max_array, max_text=max_text)
    if isinstance(value, np.ndarray):
        if max_array is not None and (value.size > max_array or value.dtype.kind not in "biuf"):
            return f"<array shape={value.shape} dtype={value.dtype}>"
        return json_safe(value.tolist(), depth + 1, max_array=max_array, max_text=max_text)
    if isinstance(value, dict):
        return {str(k): json_safe(v, depth + 1, max_array=max_array, max_text=max_text) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, depth + 1, max_array=max_array, max_text=max_text) for v in value]
    if isinstance(value, bytes):
        return value[:max_text].decode("utf-8", errors="replace")
    return repr(value)[:max_text]
