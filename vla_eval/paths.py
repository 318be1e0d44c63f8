"""Where the built-in data folders live.

``envs/``, ``policies/`` and ``suites/`` are data folders at the repository top level
(DESIGN §3). The package finds them next to itself (editable / source installs) and a
user adds folders of their own through environment variables.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def search_path(kind: str) -> list[Path]:
    """Folders searched for ``kind`` (``suites`` or ``policies``): user folders first."""
    extra = os.environ.get(f"VLA_EVAL_{kind.upper()}_PATH", "")
    dirs = [Path(p) for p in extra.split(os.pathsep) if p]
    dirs.append(Path.cwd() / kind)
    dirs.append(REPO_ROOT / kind)
    seen: list[Path] = []
    for d in dirs:
        d = d.resolve()
        if d not in seen:
            seen.append(d)
    return seen


def find_named_yaml(kind: str, name: str) -> Path | None:
    for folder in search_path(kind):
        candidate = folder / f"{name}.yaml"
        if candidate.is_file():
            return candidate
    return None


def list_named_yaml(kind: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in reversed(search_path(kind)):
        if folder.is_dir():
            for f in sorted(folder.glob("*.yaml")):
                found[f.stem] = f
    return dict(sorted(found.items()))
