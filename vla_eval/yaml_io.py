"""Load YAML files into pydantic models with errors that name the file and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml

from vla_eval.errors import ConfigError

M = TypeVar("M", bound=pydantic.BaseModel)


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text (UTF-8) YAML file: {exc.reason} at byte {exc.start}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of fields at the top level, got {type(data).__name__}")
    return data


def format_validation_error(source: str, exc: pydantic.ValidationError) -> str:
    lines = [f"{source}: {exc.error_count()} invalid field(s):"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        got = err.get("input")
        got_txt = "" if err["type"] == "missing" else f" (got {got!r})"
        lines.append(f"  - field '{loc}': {err['msg']}{got_txt}")
    return "\n".join(lines)


def validate_model(model: type[M], data: Any, source: str) -> M:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from exc


def load_model(model: type[M], path: Path) -> M:
    return validate_model(model, read_yaml_mapping(path), str(path))
