"""Which policy a run uses, with its arguments, as recorded data.

``--policy NAME`` picks a registered adapter; ``--policy path.yaml`` (or a file in
``policies/``) names an adapter plus arguments; ``--policy-arg key=value`` overrides
are parsed as YAML scalars and recorded with the run.

How chunks are executed belongs to the policy's recipe (openpi LIBERO: replan every 5 of
10 actions; ACT: temporal ensembling), not to the adapter, so it is its own block:
``execution: {replan_steps: K, temporal_ensemble: k}`` in the policy YAML, or
``--policy-arg execution.replan_steps=K`` / ``--policy-arg execution.temporal_ensemble=k``.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vla_eval import paths, yaml_io
from vla_eval.errors import ConfigError, UnknownNameError
from vla_eval.policies import POLICIES, Policy
from vla_eval.strict import StrictNumbers
from vla_eval.yaml_io import load_model


class ExecutionConfig(StrictNumbers):
    """How the rollout turns action chunks into env steps (see :class:`vla_eval.actions.convert.ChunkExecutor`).

    ``temporal_ensemble`` (ACT's ``k``) only has an effect when chunks overlap, so it
    implies ``replan_steps = 1`` (a new chunk every step) unless ``replan_steps`` is given.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    replan_steps: int | None = Field(default=None, ge=1)
    temporal_ensemble: float | None = Field(default=None, ge=0)
    action_rule: str | None = None
    """A model wrapper's post-processing of each executed action (``vla_eval.actions.wrapper_rules``: SimplerEnv's
    RT-1 / Octo / OpenVLA gripper, rotation and terminate rules); ``None``: the policy's declared action space."""

    @field_validator("action_rule")
    @classmethod
    def _known_rule(cls, value: str | None) -> str | None:
        from vla_eval.actions.wrapper_rules import ACTION_RULES

        if value is not None and value not in ACTION_RULES:
            raise ValueError(f"unknown action rule {value!r}; known: {', '.join(sorted(ACTION_RULES))}")
        return value


class PolicyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    adapter: str
    args: dict[str, Any] = Field(default_factory=dict)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    source: str | None = None

    def create(self) -> Policy:
        return POLICIES.create(self.adapter, **self.args)


class _PolicyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    adapter: str
    name: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)


def _split_execution(extra: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate ``execution`` / ``execution.<field>`` overrides from adapter arguments."""
    args, execution = {}, {}
    for key, value in extra.items():
        if key == "execution":
            if not isinstance(value, dict):
                raise ConfigError(f"--policy-arg execution={value!r}: expected a mapping such as {{replan_steps: 5}}")
            execution.update(value)
        elif key.startswith("execution."):
            execution[key.partition(".")[2]] = value
        else:
            args[key] = value
    return args, execution


def _execution(base: ExecutionConfig, overrides: dict[str, Any], source: str) -> ExecutionConfig:
    if not overrides:
        return base
    try:
        return ExecutionConfig.model_validate({**base.model_dump(), **overrides})
    except ValidationError as exc:
        fields = "; ".join(f"field 'execution.{'.'.join(map(str, e['loc']))}': {e['msg']}" for e in exc.errors())
        known = "replan_steps >= 1, temporal_ensemble >= 0, action_rule"
        raise ConfigError(f"{source}: {fields} (known: {known})") from None


def parse_overrides(pairs: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--policy-arg {pair!r}: expected key=value")
        try:
            out[key.strip()] = yaml_io.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            out[key.strip()] = raw
        except yaml_io.YamlExpansionError as exc:
            raise ConfigError(f"--policy-arg {key.strip()}: {exc}") from None
        except RecursionError:
            raise ConfigError(f"--policy-arg {key.strip()}: YAML nested too deeply") from None
    return out


def _check_args(adapter: str, args: dict[str, Any], source: str) -> None:
    factory = POLICIES.get(adapter)
    params = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n != "self"]
    for key, value in args.items():
        if key not in accepted:
            raise ConfigError(
                f"{source}: policy adapter {adapter!r} has no argument {key!r}; "
                f"accepted: {', '.join(accepted) or '(none)'}"
            )
        _check_number(adapter, key, value, params[key], source)


def _check_number(adapter: str, key: str, value: Any, param: inspect.Parameter, source: str) -> None:
    """A plain-constructor argument declared a number (by annotation or default) must be a finite number.

    ``int(True)`` is 1 and ``float('nan')`` passes every comparison, so ``chunk_size=true`` or
    ``scale=nan`` would otherwise run silently with a value nobody meant."""
    annotation = param.annotation if isinstance(param.annotation, str) else getattr(param.annotation, "__name__", "")
    numeric = annotation in ("int", "float") or (
        type(param.default) in (int, float) and param.annotation is inspect.Parameter.empty
    )
    if not numeric:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(
            f"{source}: policy adapter {adapter!r} argument {key!r}: expected a finite number, got {value!r}"
        )


def resolve_policy(name_or_path: str, overrides: list[str] | None = None) -> PolicyConfig:
    extra, exec_overrides = _split_execution(parse_overrides(overrides))
    candidate = Path(name_or_path)
    reserved = {n: f"{POLICIES.origin(n)} adapter {POLICIES.target(n)}" for n in POLICIES.names()}
    file = (
        candidate
        if candidate.suffix in (".yaml", ".yml")
        else paths.find_named_yaml("policies", name_or_path, reserved)
    )
    if file is not None:
        if not file.is_file():
            raise ConfigError(f"policy file {file} does not exist")
        pf = load_model(_PolicyFile, file)
        if pf.adapter not in POLICIES:
            raise ConfigError(
                f"{file}: field 'adapter': {UnknownNameError('policy adapter', pf.adapter, POLICIES.names())}"
            )
        cfg = PolicyConfig(
            name=pf.name or file.stem,
            adapter=pf.adapter,
            args={**pf.args, **extra},
            execution=_execution(pf.execution, exec_overrides, "--policy-arg"),
            source=str(file),
        )
    elif name_or_path in POLICIES:
        cfg = PolicyConfig(
            name=name_or_path,
            adapter=name_or_path,
            args=extra,
            execution=_execution(ExecutionConfig(), exec_overrides, "--policy-arg"),
        )
    else:
        known = sorted(set(POLICIES.names()) | set(paths.list_named_yaml("policies")))
        raise UnknownNameError("policy", name_or_path, known)
    return check_policy_config(cfg, f"--policy {name_or_path}")


def check_policy_config(cfg: PolicyConfig, where: str = "--policy") -> PolicyConfig:
    """What :func:`resolve_policy` does to a config it read: import the adapter, check its arguments,
    expand shorthands; also for configs built in code (conformance's oracles)."""
    try:
        POLICIES.get(cfg.adapter)  # imports and type-checks a module:Class before anything is called
    except ConfigError as exc:
        where = f"{cfg.source}: field 'adapter'" if cfg.source else where
        raise ConfigError(f"{where}: {exc}") from exc
    _check_args(cfg.adapter, cfg.args, cfg.source or "--policy-arg")
    return _resolved_args(cfg)


def _resolved_args(cfg: PolicyConfig) -> PolicyConfig:
    """Let an adapter expand shorthand arguments (a named preset) to every value in force, so the
    run records and compares them (``Cls.resolve_args(args, source) -> args``, optional)."""
    resolve = getattr(POLICIES.get(cfg.adapter), "resolve_args", None)
    if not callable(resolve):
        return cfg
    return cfg.model_copy(update={"args": resolve(dict(cfg.args), cfg.source or "--policy-arg")})
