"""Numbers that make sense in every typed model: finite, and never a YAML boolean.

pydantic's lax mode reads ``max_steps: true`` as 1 and accepts ``nan`` / ``.inf`` for a
float; a suite that says so runs one step, or drives MuJoCo unstable and records the
episode as a success. Models mix :class:`StrictNumbers` in to refuse both."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


def _accepts_bool(annotation: Any) -> bool:
    if annotation is bool or annotation is Any:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_accepts_bool(a) for a in typing.get_args(annotation))
    return typing.get_origin(annotation) is None and annotation not in (int, float, type(None))


class StrictNumbers(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name in cls.model_fields:
            if not _accepts_bool(cls.model_fields[info.field_name].annotation):
                raise ValueError(f"expected a number, got the boolean {value}")
        return value
