"""The run-level metadata stored with every run (``run.json`` and the store's ``config`` entry), typed.

Every reader (``table``, ``compare``, ``check``, ``baseline save``, ``runs``) used to walk the
stored dict with ``.get(...) or {}`` chains, each with its own idea of what may be missing.
:class:`RunMeta` is the one reading of that dict. It is deliberately lenient: run folders
written before ``schema_version`` existed (version 0), by fixtures, or by a newer release all
load; fields they lack are ``None`` or empty. :meth:`RunMeta.stored` gives back exactly the
keys that were stored, so hashes computed from the stored suite do not move.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vla_eval.errors import ConfigError

SCHEMA_VERSION = 1
"""1: ``schema_version`` recorded; the keys are those of version 0 (unversioned run folders)."""
CHECKPOINT_KEYS = ("checkpoint_hash", "checkpoint", "checkpoint_path", "model_path", "pretrained", "model")


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class TaskRecord(_Lenient):
    name: str | None = None
    max_steps: int | None = None


class SplitRecord(_Lenient):
    name: str | None = None
    out_of_domain: bool = False
    family: str | None = None


class SuiteRecord(_Lenient):
    """The resolved suite spec as stored; not re-validated against today's :class:`~vla_eval.spec.SuiteSpec`,
    whose fields may have changed since the run was made."""

    name: str | None = None
    backend: str | None = None
    tasks: list[TaskRecord] = Field(default_factory=list)
    splits: list[SplitRecord] = Field(default_factory=list)
    max_steps: int | None = None
    settle_steps: int | None = None
    image_size: list[int] | None = None
    episodes_per_task: int | None = None
    backend_options: dict[str, Any] = Field(default_factory=dict)

    def stored(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)

    @property
    def task_names(self) -> list[str]:
        return [str(t.name) for t in self.tasks if t.name is not None]

    @property
    def split_names(self) -> list[str]:
        return [str(s.name) for s in self.splits if s.name is not None]

    @property
    def ood_splits(self) -> list[str]:
        return [str(s.name) for s in self.splits if s.name is not None and s.out_of_domain]

    @property
    def split_family(self) -> dict[str, str]:
        """Split -> who defined it; unset means this project's perturbations (``vla_eval``)."""
        return {str(s.name): s.family or "vla_eval" for s in self.splits if s.name is not None}

    def task_max_steps(self) -> dict[str, int | None]:
        return {str(t.name): t.max_steps or self.max_steps for t in self.tasks}

    @property
    def render_quality(self) -> str | None:
        return self.backend_options.get("render_quality")


class PolicyRecord(_Lenient):
    name: str | None = None
    adapter: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    source: str | None = None


class LimitsRecord(_Lenient):
    policy_timeout_s: float | None = None
    episode_timeout_s: float | None = None
    max_worker_rss_mb: float | None = None
    stop_if_dead: int | None = None


class RunMeta(_Lenient):
    schema_version: int = 0
    """0: written before the metadata was versioned (the key is absent)."""
    run_id: str | None = None
    created_at: str | None = None
    suite: SuiteRecord = Field(default_factory=SuiteRecord)
    suite_hash: str | None = None
    policy: PolicyRecord = Field(default_factory=PolicyRecord)
    checkpoint_hash: str | None = None
    replan_steps: int | None = None
    videos: str | None = None
    render: str | None = None
    """``on_demand`` (envs draw only what the policy or the video looks at) or ``eager``; absent in older runs."""
    workers: int | None = None
    batch_envs: int | None = None
    executor: str | None = None
    limits: LimitsRecord | None = None
    policy_server: str | None = None
    policy_environment: dict[str, Any] | None = None
    """The environment the policy ran in when its adapter declares one (vla_eval/environments.py): ``name``,
    ``managed`` (its own interpreter, not the harness's), ``python`` and ``versions`` of its key packages."""
    versions: dict[str, Any] = Field(default_factory=dict)
    sim_stack: str | None = None
    git: dict[str, Any] | None = None
    machine: dict[str, Any] | None = None
    argv: list[str] = Field(default_factory=list)

    @classmethod
    def from_stored(cls, data: Any, source: str = "run metadata") -> "RunMeta":
        """Read a stored config dict (``None`` for a store without one); a malformed one is a one-line error."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: run metadata is {type(data).__name__}, expected a mapping")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise ConfigError(f"{source}: run metadata field {where!r}: {err['msg']}") from None

    def stored(self) -> dict[str, Any]:
        """The dict as written to the store and ``run.json`` (only the keys that were set)."""
        return self.model_dump(mode="json", exclude_unset=True)

    @property
    def is_empty(self) -> bool:
        return not self.model_fields_set and not self.model_extra

    @property
    def checkpoint(self) -> str | None:
        """The checkpoint identity recorded for the run: the fingerprint, else the policy block's own
        fields, else the policy arguments that name a checkpoint."""
        for source in (self.stored(), self.policy.model_dump(exclude_unset=True), self.policy.args):
            for key in CHECKPOINT_KEYS:
                value = source.get(key)
                if value not in (None, ""):
                    return str(value)
        return None

    def stack(self) -> str | None:
        """The simulator stack label: as recorded, else derived from the recorded versions."""
        from vla_eval.provenance import sim_stack

        return self.sim_stack or sim_stack(self.versions)
