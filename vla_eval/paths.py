"""Where the built-in data folders live, and how user and plugin folders join them.

``envs/``, ``policies/`` and ``suites/`` are data folders at the repository top level
(docs/architecture.md §3) and stay the source of truth. A wheel carries copies of them as package data
under ``vla_eval/_data/`` (see ``setup.py``), so the package finds them next to itself
in a source / editable checkout and inside itself when installed.

Lookup order for a name: the built-in folder, then user folders (``VLA_EVAL_<KIND>_PATH``,
``./<kind>/`` in the current folder), then folders of installed plugins. A user or plugin
file with the name of a built-in one is an error naming both files: a registered name
always means the built-in (a ``policies/scripted.yaml`` dropped into the current folder
must not replace the scripted expert).
"""

from __future__ import annotations

import os
from pathlib import Path

from vla_eval.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
BUNDLED_DATA = PACKAGE_DIR / "_data"
DATA_KINDS = ("suites", "policies", "envs")
_SINGULAR = {"suites": "suite", "policies": "policy", "envs": "env"}


def data_root() -> Path:
    """``vla_eval/_data`` in an installed wheel, else the repository root."""
    if (BUNDLED_DATA / "suites").is_dir():
        return BUNDLED_DATA
    return REPO_ROOT


def builtin_dir(kind: str) -> Path:
    return data_root() / kind


def _user_dirs(kind: str) -> list[Path]:
    extra = os.environ.get(f"VLA_EVAL_{kind.upper()}_PATH", "")
    dirs = [Path(p) for p in extra.split(os.pathsep) if p]
    dirs.append(Path.cwd() / kind)
    return dirs


def _plugin_sources(kind: str) -> list[Path]:
    if kind != "suites":
        return []
    from vla_eval.plugins import suite_sources

    return [path for _, path in suite_sources()]


def search_path(kind: str) -> list[Path]:
    """Folders (or single files, from plugins) searched for ``kind``: built-in first."""
    seen: list[Path] = []
    for d in [builtin_dir(kind), *_user_dirs(kind), *_plugin_sources(kind)]:
        d = d.resolve()
        if d not in seen:
            seen.append(d)
    return seen


def _files(source: Path) -> dict[str, Path]:
    if source.is_file() and source.suffix in (".yaml", ".yml"):
        return {source.stem: source}
    if source.is_dir():
        return {f.stem: f for f in sorted(source.glob("*.yaml"))}
    return {}


def _candidates(kind: str, name: str) -> list[Path]:
    return [f for source in search_path(kind) if (f := _files(source).get(name)) is not None]


def find_named_yaml(kind: str, name: str, reserved: dict[str, str] | None = None) -> Path | None:
    """The file for ``name``; an error if a non-built-in file shadows a built-in file or a ``reserved`` name.

    ``reserved`` maps names registered in code (e.g. policy adapters) to a description of
    where they come from, for the error message.
    """
    found = _candidates(kind, name)
    if not found:
        return None
    builtin = builtin_dir(kind).resolve()
    first = found[0]
    # an identical copy (a checkout of this project as the current folder) shadows nothing
    others = [f for f in found if f.parent.resolve() != builtin and f.read_bytes() != first.read_bytes()]
    if first.parent.resolve() == builtin and others:
        raise ConfigError(
            f"{others[0]} shadows the built-in {_SINGULAR.get(kind, kind)} {name!r} ({first}); "
            "built-in names always mean the "
            f"built-in: rename your file, or pass its path (--{_SINGULAR.get(kind, kind)} {others[0]})"
        )
    if first.parent.resolve() != builtin and reserved and name in reserved:
        raise ConfigError(
            f"{first} shadows the registered {_SINGULAR.get(kind, kind)} {name!r} ({reserved[name]}); "
            "built-in names always mean the "
            f"built-in: rename your file, or pass its path (--{_SINGULAR.get(kind, kind)} {first})"
        )
    return first


def list_named_yaml(kind: str) -> dict[str, Path]:
    """Every name with the file it resolves to (built-in files win over shadowing ones)."""
    found: dict[str, Path] = {}
    for source in search_path(kind):
        for name, f in _files(source).items():
            found.setdefault(name, f)
    return dict(sorted(found.items()))
