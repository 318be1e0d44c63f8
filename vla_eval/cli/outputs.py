"""Output paths checked before a command does its work.

A command that runs a canary or a report for minutes and then finds that ``--json`` names a folder,
or that ``-o`` sits under a file, wastes the work and used to end in a traceback. Each check names
the flag, the path and what was expected, and raises :class:`~vla_eval.errors.ConfigError` (exit 2).
"""

from __future__ import annotations

import os
from pathlib import Path

from vla_eval.errors import ConfigError


def _existing_ancestor(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _check_creatable(path: Path, flag: str) -> None:
    ancestor = _existing_ancestor(path)
    if ancestor != path and not ancestor.is_dir():
        raise ConfigError(f"{flag} {path}: {ancestor} is a file, so nothing can be created under it")
    if not os.access(ancestor if ancestor.is_dir() else ancestor.parent, os.W_OK):
        raise ConfigError(f"{flag} {path}: {ancestor} is not writable")


def output_file(path: Path | str | None, flag: str) -> Path | None:
    """A file the command will write (created with its folders if missing)."""
    if path is None:
        return None
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a folder, expected the path of a file to write")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{flag} {path}: file is not writable")
    _check_creatable(path.parent if str(path.parent) else Path("."), flag)
    return path


def output_dir(path: Path | str | None, flag: str) -> Path | None:
    """A folder the command will write into (created if missing)."""
    if path is None:
        return None
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path}: is a file, expected a folder")
    _check_creatable(path, flag)
    return path
