"""Env backends: each turns (suite, task, split) into a gymnasium env.

A backend is registered here by name; suite files pick one with ``backend:``. Everything
that depends on which simulator a suite uses (its ``backend_options``, its protocol-level
scores, the facts ``doctor`` lists) is asked of the backend, so the runner, the reports and
the doctor never test a backend's name and a new simulator needs no edit outside its folder.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict

from vla_eval.errors import ConfigError, UnknownNameError
from vla_eval.registry import Registry

if TYPE_CHECKING:
    import gymnasium as gym

    from vla_eval.spec import SuiteSpec


class BackendOptions(BaseModel):
    """Base of every backend's ``backend_options`` model: unknown keys are errors (a typo would
    otherwise silently run the default protocol), and the options are read-only."""

    model_config = ConfigDict(extra="forbid", frozen=True)


OptionsT = TypeVar("OptionsT", bound=BaseModel)


@dataclass(frozen=True)
class ProtocolTable:
    """A backend's protocol-level score for reports (e.g. SimplerEnv's calc_metrics aggregate).

    Cells are plain text, not escaped: task and group names come from suite files, so each
    renderer (HTML, Markdown) escapes them for its own format.
    """

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    headline: float | None = None
    """The suite-level score (a fraction), shown as a leaderboard column titled ``headline_label``."""
    headline_label: str = ""


def _option_field(loc: tuple[Any, ...]) -> str:
    return ".".join(["backend_options", *(str(p) for p in loc)])


def options_error(source: str, exc: pydantic.ValidationError, model: type[BaseModel]) -> ConfigError:
    """One line naming the file, each bad ``backend_options.<field>``, what is expected and what was given."""
    errors = exc.errors()
    parts = []
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden" and len(e["loc"]) == 1)
    if unknown:
        expected = sorted(model.model_fields) or "none (this backend takes no options)"
        parts.append(f"field 'backend_options': unknown option(s) {unknown}, expected {expected}")
    for e in errors:
        if e["type"] == "extra_forbidden" and len(e["loc"]) == 1:
            continue
        msg = str(e["msg"])
        if e["type"] == "value_error":  # our validators word the whole message, the value included
            msg = msg.removeprefix("Value error, ")
        elif e["type"] != "missing":
            msg += f", got {e.get('input')!r}"
        parts.append(f"field '{_option_field(e['loc'])}': {msg}")
    return ConfigError(f"{source}: " + "; ".join(parts))


class Backend(abc.ABC, Generic[OptionsT]):
    name: str
    expert: str | None = None
    """Registered name of the privileged-state expert that solves this backend's tasks (conformance
    compares an adapter's oracle against it); ``None`` when the backend has none."""
    options_model: ClassVar[type[BaseModel]] = BackendOptions
    """The pydantic model of this backend's ``backend_options`` (subclass :class:`BackendOptions`
    so unknown keys are refused); the default accepts none."""

    def options(self, spec: "SuiteSpec", source: str = "suite") -> OptionsT:
        """``spec.backend_options`` as the backend's typed model, defaults filled in.

        Raises a one-line :class:`ConfigError` naming ``source`` and each bad field.
        """
        try:
            return self.options_model.model_validate(spec.backend_options)  # type: ignore[return-value]
        except pydantic.ValidationError as exc:
            raise options_error(source, exc, self.options_model) from None

    @abc.abstractmethod
    def task_names(self) -> list[str]:
        """Tasks this backend can build (for validation and ``vla-eval list envs``)."""

    def validate_suite(self, spec: "SuiteSpec", source: str) -> None:
        """Raise ConfigError naming ``source`` and the field if the suite asks for something unknown.

        The base checks ``backend_options`` and that every task is one of :meth:`task_names`;
        a backend with more to check (cameras, perturbations) overrides and calls it.
        """
        self.options(spec, source)
        known = self.task_names()
        for i, task in enumerate(spec.tasks):
            if task.name not in known:
                unknown = UnknownNameError(f"{self.name} task", task.name, known)
                raise ConfigError(f"{source}: field 'tasks.{i}': {unknown}")

    @abc.abstractmethod
    def make_env(self, spec: "SuiteSpec", task: str, split: str, cameras: list[str], depth: bool = False) -> "gym.Env":
        """Build one env for ``task`` under ``split``'s perturbations; reused across that task's episodes."""

    def episode_reset_options(self, spec: "SuiteSpec", task: str, episode_index: int) -> dict[str, Any] | None:
        """Extra ``reset(options=...)`` for an episode (e.g. a fixed init-state id)."""
        return None

    def init_state_id(self, spec: "SuiteSpec", episode_index: int) -> int:
        """Which fixed initial state an episode uses; seeded backends use the episode index."""
        return episode_index

    def protocol_tables(self, spec: "SuiteSpec", summary: Any) -> list[ProtocolTable]:
        """Protocol-level scores of a run (``summary`` is :func:`vla_eval.tables.summary_frame`'s
        frame) for the HTML/Markdown report; none unless the simulator's protocol defines one."""
        return []

    def protocol_summary(self, spec: "SuiteSpec", summary: Any) -> str | None:
        """Markdown appended to a run's ``table.md``; by default :meth:`protocol_tables` as tables."""
        tables = self.protocol_tables(spec, summary)
        if not tables:
            return None
        out = []
        for t in tables:
            out += ["| " + " | ".join(t.header) + " |", "|" + "---|" * len(t.header)]
            out += ["| " + " | ".join(r) + " |" for r in t.rows]
            out.append("")
        return "\n".join(out).rstrip()

    def protocol_facts(self, spec: "SuiteSpec") -> dict[str, Any]:
        """Protocol knobs in force that the suite file may leave implicit (``doctor`` lists them)."""
        return {}

    def versions(self) -> dict[str, str]:
        """Simulator and asset versions recorded with every run."""
        return {}

    def check_ready(self, spec: "SuiteSpec") -> None:
        """Raise a :class:`~vla_eval.errors.VlaEvalError` before a run starts if something the suite
        needs is not installed (the message says how to install it)."""


BACKENDS: Registry[Backend] = Registry("backend", base=Backend)
BACKENDS.register("tabletop", "vla_eval.sims.tabletop.backend:TabletopBackend", help="built-in MuJoCo tabletop scenes")
BACKENDS.register(
    "simpler",
    "vla_eval.sims.simpler.backend:SimplerBackend",
    help="SimplerEnv-style Google-robot / Bridge tasks rebuilt in MuJoCo",
)
BACKENDS.register(
    "simpler_real",
    "vla_eval.sims.simpler.real2sim.backend:SimplerRealBackend",
    help="SimplerEnv visual matching on SimplerEnv's robots, objects and real photos (vla-eval assets fetch simpler)",
)
BACKENDS.register(
    "simpler_sapien",
    "vla_eval.sims.simpler.sapien.backend:SimplerSapienBackend",
    help="SimplerEnv visual matching on SimplerEnv's own SAPIEN engine (bash scripts/simpler_sapien_env.sh)",
)
BACKENDS.register(
    "libero",
    "vla_eval.sims.libero.backend:LiberoBackend",
    help="LIBERO suites (robosuite + MuJoCo; pip install -e .[libero])",
)

from vla_eval.plugins import BACKEND_GROUP, register_plugins  # noqa: E402

register_plugins(BACKENDS, BACKEND_GROUP)

_instances: dict[str, Backend] = {}


def get_backend(name: str) -> Backend:
    if name not in _instances:
        _instances[name] = BACKENDS.create(name)
    return _instances[name]
