"""Which policy a run uses, with its arguments, as recorded data.

``--policy NAME`` picks a registered adapter; ``--policy path.yaml`` (or a file in
``policies/``) names an adapter plus arguments; ``--policy-arg key=value`` overrides
are parsed as YAML scalars and recorded with the run.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from vla_eval import paths
from vla_eval.errors import ConfigError, UnknownNameError
from vla_eval.policies import POLICIES, Policy
from vla_eval.yaml_io import load_model


class PolicyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    adapter: str
    args: dict[str, Any] = Field(default_factory=dict)
    source: str | None = None

    def create(self) -> Policy:
        return POLICIES.create(self.adapter, **self.args)


class _PolicyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    adapter: str
    name: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)


def parse_overrides(pairs: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--policy-arg {pair!r}: expected key=value")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            out[key.strip()] = raw
    return out


def _check_args(adapter: str, args: dict[str, Any], source: str) -> None:
    factory = POLICIES.get(adapter)
    params = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n != "self"]
    for key in args:
        if key not in accepted:
            raise ConfigError(
                f"{source}: policy adapter {adapter!r} has no argument {key!r}; accepted: {', '.join(accepted) or '(none)'}"
            )


def resolve_policy(name_or_path: str, overrides: list[str] | None = None) -> PolicyConfig:
    extra = parse_overrides(overrides)
    candidate = Path(name_or_path)
    reserved = {n: f"{POLICIES.origin(n)} adapter {POLICIES.target(n)}" for n in POLICIES.names()}
    file = candidate if candidate.suffix in (".yaml", ".yml") else paths.find_named_yaml("policies", name_or_path, reserved)
    if file is not None:
        if not file.is_file():
            raise ConfigError(f"policy file {file} does not exist")
        pf = load_model(_PolicyFile, file)
        if pf.adapter not in POLICIES:
            raise ConfigError(f"{file}: field 'adapter': {UnknownNameError('policy adapter', pf.adapter, POLICIES.names())}")
        cfg = PolicyConfig(name=pf.name or file.stem, adapter=pf.adapter, args={**pf.args, **extra}, source=str(file))
    elif name_or_path in POLICIES:
        cfg = PolicyConfig(name=name_or_path, adapter=name_or_path, args=extra)
    else:
        known = sorted(set(POLICIES.names()) | set(paths.list_named_yaml("policies")))
        raise UnknownNameError("policy", name_or_path, known)
    try:
        POLICIES.get(cfg.adapter)  # imports and type-checks a module:Class before anything is called
    except ConfigError as exc:
        where = f"{cfg.source}: field 'adapter'" if cfg.source else f"--policy {name_or_path}"
        raise ConfigError(f"{where}: {exc}") from exc
    _check_args(cfg.adapter, cfg.args, cfg.source or "--policy-arg")
    return cfg
