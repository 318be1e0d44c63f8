"""Third-party extensions through entry points: policies, backends and suites.

An installed package adds to vla-eval with no edit here, by declaring in its
``pyproject.toml``::

    [project.entry-points."vla_eval.policies"]
    my_policy = "my_pkg.policy:MyPolicy"        # a vla_eval.policies.Policy subclass

    [project.entry-points."vla_eval.backends"]
    my_sim = "my_pkg.backend:MyBackend"         # a vla_eval.backends.Backend subclass

    [project.entry-points."vla_eval.suites"]
    my_suites = "my_pkg.suites"                 # a package whose folder holds suite YAML files
                                                # (or "my_pkg:SUITES", a str/Path to a file or folder)

Policies and backends are registered lazily (nothing is imported until used) and are
type-checked on first use like any ``module:Class``. Built-in names always win: a
plugin that reuses one is skipped with a warning.

Without installing anything, a suite may also name its backend as ``backend:
my_pkg.backend:MyBackend`` (and a policy file its ``adapter: my_pkg.policy:MyPolicy``) with
``my_pkg`` on ``PYTHONPATH``; the entry point only adds a short name, ``vla-eval list envs``
and the report's protocol tables (the report never imports a ``module:Class`` it reads from
a results folder). docs/extending.md walks through both.
"""

from __future__ import annotations

import importlib
import os
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from types import ModuleType

POLICY_GROUP = "vla_eval.policies"
BACKEND_GROUP = "vla_eval.backends"
SUITE_GROUP = "vla_eval.suites"


def entry_points(group: str) -> list[metadata.EntryPoint]:
    try:
        return sorted(metadata.entry_points(group=group), key=lambda ep: ep.name)
    except Exception as exc:  # a broken dist-info must not take the CLI down
        _warn(f"cannot read entry points of group {group!r}: {exc}")
        return []


def _dist_name(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return getattr(dist, "name", None) or "?"


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def register_plugins(registry, group: str) -> None:
    """Add every entry point of ``group`` to ``registry`` (lazily, as ``"module:attr"``)."""
    for ep in entry_points(group):
        if ep.name in registry.names():
            _warn(f"plugin {_dist_name(ep)} registers {registry.kind} {ep.name!r}, which is already taken; ignored")
            continue
        registry.register(
            ep.name, ep.value, help=f"(plugin {_dist_name(ep)}) {ep.value}", origin=f"plugin {_dist_name(ep)}"
        )


@lru_cache(maxsize=None)
def suite_sources() -> tuple[tuple[str, Path], ...]:
    """``(label, file or folder)`` for every suite entry point, resolved once per process."""
    out = []
    for ep in entry_points(SUITE_GROUP):
        label = f"plugin {_dist_name(ep)} ({ep.name} = {ep.value})"
        try:
            obj = ep.load() if ":" in ep.value else importlib.import_module(ep.value)
            if callable(obj) and not isinstance(obj, ModuleType):
                obj = obj()
            if isinstance(obj, ModuleType):
                files = getattr(obj, "__file__", None)
                locations = list(getattr(obj, "__path__", [])) or ([os.path.dirname(files)] if files else [])
                path = Path(locations[0])
            else:
                path = Path(os.fspath(obj))
        except Exception as exc:
            _warn(f"suite entry point {label}: cannot load: {type(exc).__name__}: {exc}")
            continue
        if not path.exists():
            _warn(f"suite entry point {label}: {path} does not exist")
            continue
        out.append((label, path))
    return tuple(out)
