"""Safe folder names from user-given names (policy ``name:``, suite names).

A policy file may say ``name: "x/../../../trav/evil"``; joined into a path unchanged it
wrote a whole run folder outside ``--results-root``. Names become one path component of
``[A-Za-z0-9_.-]`` here, and :func:`inside` proves the result stays under its root.
"""

from __future__ import annotations

import re
from pathlib import Path

from vla_eval.errors import ConfigError

_UNSAFE = re.compile(r"(?:[^A-Za-z0-9_.-]|\.{2,})+")


def safe_component(name: str, max_len: int = 80) -> str:
    """One path component: unsafe characters become ``_``, no leading dot, never empty."""
    text = _UNSAFE.sub("_", str(name)).strip("._") or "unnamed"
    return text[:max_len]


def inside(root: Path, child: Path) -> Path:
    """``child`` if it resolves under ``root``, else a :class:`ConfigError`."""
    root_r, child_r = Path(root).resolve(), Path(child).resolve()
    if child_r != root_r and root_r not in child_r.parents:
        raise ConfigError(
            f"run folder {child} would land outside the results root {root}; pass --run-dir to choose one"
        )
    return child


def run_folder(results_root: Path, suite: str, policy: str, stamp: str) -> Path:
    name = f"{safe_component(suite)}__{safe_component(policy)}__{stamp}"
    return inside(results_root, Path(results_root) / name)
