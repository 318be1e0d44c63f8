"""Typed suite specification: what a suite file (``suites/<name>.yaml``) may say.

Everything that changes a success rate (step limits, settle steps, image size, seeds,
perturbations) lives here, so the resolved spec stored with a run *is* the protocol.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_serializer, model_validator

from vla_eval import paths
from vla_eval.errors import ConfigError, UnknownNameError
from vla_eval.strict import StrictNumbers
from vla_eval.yaml_io import load_model


class _Strict(StrictNumbers):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class TaskSpec(_Strict):
    """One task of a suite; ``max_steps`` overrides the suite default for this task."""

    name: str
    max_steps: int | None = Field(default=None, gt=0)
    episodes: int | None = Field(
        default=None,
        gt=0,
        description="this task's episode count (SimplerEnv's per-task grids); "
        "episodes_per_task caps it (CLI --episodes)",
    )


class SplitSpec(_Strict):
    """A named evaluation condition: in-domain, or a set of perturbations on top of the task."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=100)
    out_of_domain: bool = False
    perturbations: list[dict[str, Any]] = Field(default_factory=list)
    task_perturbations: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    tasks: list[str] | None = Field(
        default=None, description="tasks this split runs on (None = all); SimplerEnv's variant lists are per task"
    )
    description: str = ""
    family: str | None = Field(default=None, pattern=r"^[a-z0-9_]+$")
    """Who defined the condition: unset = this project's perturbations (``vla_eval``),
    ``libero_pro`` = LIBERO-PRO's official suites. Tables never average OOD rates across families."""

    @model_serializer(mode="wrap")
    def _omit_unset_family(self, handler):
        # unset stays out of the dump so suite hashes of runs recorded before the field existed hold
        data = handler(self)
        if isinstance(data, dict) and data.get("family") is None:
            data.pop("family", None)
        return data

    def applies_to(self, task: str) -> bool:
        return self.tasks is None or task in self.tasks

    def perturbations_for(self, task: str) -> list[dict[str, Any]]:
        """Split-wide perturbations plus those that only make sense for one task (e.g. its object names)."""
        return [*self.perturbations, *self.task_perturbations.get(task, [])]

    @model_validator(mode="after")
    def _ood_has_perturbations(self) -> "SplitSpec":
        if self.out_of_domain and not (self.perturbations or self.task_perturbations):
            raise ValueError(f"split {self.name!r} is out_of_domain but declares no perturbations")
        return self


class SuiteSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=100)
    description: str = ""
    backend: str
    tasks: list[TaskSpec] = Field(min_length=1)
    splits: list[SplitSpec] = Field(default_factory=lambda: [SplitSpec(name="in_domain")], min_length=1)
    episodes_per_task: int = Field(gt=0)
    max_steps: int = Field(gt=0)
    settle_steps: int = Field(default=0, ge=0)
    settle_action: list[float] = Field(default_factory=lambda: [0, 0, 0, 0, 0, 0, -1])
    cameras: list[str] = Field(default_factory=lambda: ["agentview", "wrist"])
    image_size: tuple[int, int] = (128, 128)
    seed: int = 0
    success_rule: Literal["first_success", "final_step"] = "first_success"
    """first_success: an episode ends at its first successful step (LIBERO, tabletop); final_step: every
    episode runs to its step limit and the last step's success counts (SimplerEnv's evaluator)."""
    backend_options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("tasks", mode="before")
    @classmethod
    def _task_shorthand(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": t} if isinstance(t, str) else t for t in value]
        return value

    @field_validator("image_size")
    @classmethod
    def _positive_size(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) <= 0 or max(value) > 4096:
            raise ValueError("image_size must be [height, width] with 1..4096 pixels each")
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> "SuiteSpec":
        for label, names in (("tasks", [t.name for t in self.tasks]), ("splits", [s.name for s in self.splits])):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{label} names must be unique; repeated: {dupes}")
        if self.splits[0].out_of_domain:
            raise ValueError("the first split is the in-domain reference; it must not be out_of_domain")
        tasks = {t.name for t in self.tasks}
        for split in self.splits:
            unknown = sorted(set(split.task_perturbations) - tasks)
            if unknown:
                raise ValueError(f"split {split.name!r}: task_perturbations names tasks not in this suite: {unknown}")
            unknown = sorted(set(split.tasks or []) - tasks)
            if unknown:
                raise ValueError(f"split {split.name!r}: field 'tasks' names tasks not in this suite: {unknown}")
        return self

    @property
    def in_domain_split(self) -> str:
        return self.splits[0].name

    def task_max_steps(self, task: str) -> int:
        for t in self.tasks:
            if t.name == task:
                return t.max_steps or self.max_steps
        raise KeyError(task)

    def task_episodes(self, task: str) -> int:
        for t in self.tasks:
            if t.name == task:
                return min(t.episodes, self.episodes_per_task) if t.episodes else self.episodes_per_task
        raise KeyError(task)

    def split(self, name: str) -> SplitSpec:
        for s in self.splits:
            if s.name == name:
                return s
        raise KeyError(name)

    def canonical_json(self) -> str:
        return json.dumps(
            without_unset_protocol_fields(self.model_dump(mode="json")), sort_keys=True, separators=(",", ":")
        )

    def spec_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]


def without_unset_protocol_fields(suite: dict[str, Any]) -> dict[str, Any]:
    """The suite dict without fields added later that still hold their defaults (``success_rule``
    first_success, per-task ``episodes``, per-split ``tasks``), so hashes of suites that do not
    use them stay what they were before those fields existed."""
    out = dict(suite)
    if out.get("success_rule") == "first_success":
        out.pop("success_rule")
    if isinstance(out.get("tasks"), list):
        out["tasks"] = [
            {k: v for k, v in t.items() if not (k == "episodes" and v is None)} if isinstance(t, dict) else t
            for t in out["tasks"]
        ]
    if isinstance(out.get("splits"), list):
        out["splits"] = [
            {k: v for k, v in sp.items() if not (k == "tasks" and v is None)} if isinstance(sp, dict) else sp
            for sp in out["splits"]
        ]
    return out


def resolve_suite_path(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        if not candidate.is_file():
            raise ConfigError(f"suite file {candidate} does not exist")
        return candidate
    found = paths.find_named_yaml("suites", name_or_path)
    if found is None:
        raise UnknownNameError("suite", name_or_path, list(paths.list_named_yaml("suites")))
    return found


def load_suite(suite: "str | Path | SuiteSpec", overrides: dict[str, Any] | None = None) -> SuiteSpec:
    """Load, override (CLI values like ``episodes_per_task``) and validate a suite, backend checks included.

    ``suite`` is a name, a file, or a spec built in memory (a cut of a shipped suite); the
    in-memory one goes through the same overrides and backend checks as a file.
    """
    from vla_eval.backends import get_backend
    from vla_eval.yaml_io import read_yaml_mapping, validate_model

    if isinstance(suite, SuiteSpec):
        path: Path | str = f"suite {suite.name!r} (in memory)"
        data = suite.model_dump(mode="json")
    else:
        path = resolve_suite_path(str(suite))
        data = read_yaml_mapping(path)
    for key, value in (overrides or {}).items():
        if value is not None:
            data[key] = value
    spec = validate_model(SuiteSpec, data, str(path))
    try:
        backend = get_backend(spec.backend)
    except ConfigError as exc:
        raise ConfigError(f"{path}: field 'backend': {exc}") from exc
    backend.validate_suite(spec, source=str(path))
    return spec


__all__ = ["SuiteSpec", "SplitSpec", "TaskSpec", "load_suite", "resolve_suite_path", "load_model"]
