"""Env backends: each turns (suite, task, split) into a gymnasium env.

A backend is registered here by name; suite files pick one with ``backend:``.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

from vla_eval.registry import Registry

if TYPE_CHECKING:
    import gymnasium as gym

    from vla_eval.spec import SuiteSpec


class Backend(abc.ABC):
    name: str
    expert: str | None = None
    """Registered name of the privileged-state expert that solves this backend's tasks (conformance
    compares an adapter's oracle against it); ``None`` when the backend has none."""

    @abc.abstractmethod
    def task_names(self) -> list[str]:
        """Tasks this backend can build (for validation and ``vla-eval list envs``)."""

    @abc.abstractmethod
    def validate_suite(self, spec: "SuiteSpec", source: str) -> None:
        """Raise ConfigError naming ``source`` and the field if the suite asks for something unknown."""

    @abc.abstractmethod
    def make_env(self, spec: "SuiteSpec", task: str, split: str, cameras: list[str], depth: bool = False) -> "gym.Env":
        """Build one env for ``task`` under ``split``'s perturbations; reused across that task's episodes."""

    def episode_reset_options(self, spec: "SuiteSpec", task: str, episode_index: int) -> dict[str, Any] | None:
        """Extra ``reset(options=...)`` for an episode (e.g. a fixed init-state id)."""
        return None

    def init_state_id(self, spec: "SuiteSpec", episode_index: int) -> int:
        """Which fixed initial state an episode uses; seeded backends use the episode index."""
        return episode_index

    def protocol_summary(self, spec: "SuiteSpec", summary: Any) -> str | None:
        """Markdown for a protocol-level score (e.g. SimplerEnv's variant aggregation), if the backend has one."""
        return None

    def versions(self) -> dict[str, str]:
        """Simulator and asset versions recorded with every run."""
        return {}

    def check_ready(self, spec: "SuiteSpec") -> None:
        """Raise a :class:`~vla_eval.errors.VlaEvalError` before a run starts if something the suite
        needs is not installed (the message says how to install it)."""


BACKENDS: Registry[Backend] = Registry("backend", base=Backend)
BACKENDS.register("tabletop", "vla_eval.sims.tabletop.backend:TabletopBackend", help="built-in MuJoCo tabletop scenes")
BACKENDS.register("simpler", "vla_eval.sims.simpler.backend:SimplerBackend", help="SimplerEnv-style Google-robot / Bridge tasks rebuilt in MuJoCo")
BACKENDS.register("simpler_real", "vla_eval.sims.simpler.real2sim.backend:SimplerRealBackend",
                  help="SimplerEnv visual matching on SimplerEnv's robots, objects and real photos (vla-eval assets fetch simpler)")
BACKENDS.register("simpler_sapien", "vla_eval.sims.simpler.sapien.backend:SimplerSapienBackend",
                  help="SimplerEnv visual matching on SimplerEnv's own SAPIEN engine (bash scripts/simpler_sapien_env.sh)")
BACKENDS.register("libero", "vla_eval.sims.libero.backend:LiberoBackend", help="LIBERO suites (robosuite + MuJoCo; pip install -e .[libero])")

from vla_eval.plugins import BACKEND_GROUP, register_plugins  # noqa: E402

register_plugins(BACKENDS, BACKEND_GROUP)

_instances: dict[str, Backend] = {}


def get_backend(name: str) -> Backend:
    if name not in _instances:
        _instances[name] = BACKENDS.create(name)
    return _instances[name]
