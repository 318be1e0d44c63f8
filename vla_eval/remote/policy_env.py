"""Which interpreter a policy adapter runs in: this one, or its managed environment's (vla_eval/environments.py).

An adapter declares ``environment = "NAME"`` when its model family pins packages the harness cannot share (LeRobot:
torch < 2.11).  If every module that environment provides is importable here, the adapter runs in-process as any
other; otherwise ``vla-eval run`` serves it with ``python -m vla_eval serve`` started from the environment's
interpreter (:class:`~vla_eval.remote.supervisor.LocalPolicyServer`), and ``vla-eval serve`` re-launches itself
there.  Either way the run records which environment the policy ran in (``run.json`` ``policy_environment``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def environment_of(policy_cls: Any) -> str | None:
    name = getattr(policy_cls, "environment", None)
    return str(name) if name else None


def foreign_python(policy_cls: Any) -> Path | None:
    """The managed interpreter the adapter must run in, or None when this interpreter can host it.

    Raises :class:`~vla_eval.environments.EnvironmentNotBuilt` (with the build command) when it is needed and absent.
    """
    from vla_eval import environments

    name = environment_of(policy_cls)
    if name is None or environments.importable_here(name):
        return None
    python = environments.python_for(name)
    if Path(python).absolute().parent.parent == Path(sys.prefix).absolute():
        # already in it (its modules failed to import for another reason; let the adapter say why). Compared by
        # prefix, not by resolving links: every venv's bin/python links to the same base interpreter
        return None
    return python


def announce(policy_name: str, policy_cls: Any, python: Path) -> str:
    """The one line a run prints when it serves the policy from another interpreter."""
    name = environment_of(policy_cls)
    return (
        f"policy {policy_name} needs environment {name!r} (its packages are not importable here): "
        f"serving it from {python}"
    )


def record(policy_cls: Any, python: Path | None) -> dict[str, Any] | None:
    """``run.json``'s ``policy_environment``: name, interpreter, key package versions; None for adapters that
    declare no environment."""
    from vla_eval import environments

    name = environment_of(policy_cls)
    if name is None:
        return None
    return environments.describe(name, python)
