"""One JSON sanitizer: what a policy, a doctor report or a wire frame hands us, made storable."""

from __future__ import annotations

from typing import Any

import numpy as np


def json_safe(value: Any, depth: int = 0) -> Any:
    """A JSON-storable copy of ``value``: arrays become lists, unknown objects their ``repr`` (bounded)."""
    if depth > 20:
        return "<nested too deep>"
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value if not isinstance(value, float) or np.isfinite(value) else str(value)
    if isinstance(value, np.generic):
        return json_safe(value.item(), depth + 1)
    if isinstance(value, np.ndarray):
        if value.size > 10_000 or value.dtype.kind not in "biuf":
            return f"<array shape={value.shape} dtype={value.dtype}>"
        return json_safe(value.tolist(), depth + 1)
    if isinstance(value, dict):
        return {str(k): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, depth + 1) for v in value]
    if isinstance(value, bytes):
        return value[:2000].decode("utf-8", errors="replace")
    return repr(value)[:2000]
