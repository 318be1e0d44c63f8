"""Shared Hugging Face loading options for the model adapters.

torch and transformers are imported inside functions only: registering or listing
adapters (and resolving a policy config in the parent process) must not pay for
importing them, and a harness installed without the ``models`` extra must still run
baselines.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vla_eval.errors import ConfigError

DType = Literal["auto", "float32", "bfloat16", "float16"]


class HFLoadOptions(BaseModel):
    """How to load a checkpoint (a local folder or a hub id).

    ``trust_remote_code`` is off unless the user turns it on in the policy config: it runs
    Python shipped with the checkpoint.  ``local_files_only`` forbids downloads (a
    run on an offline cluster then fails fast with a clear message instead of hanging).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    checkpoint: str = Field(min_length=1)
    dtype: DType = "auto"
    device: str = "auto"
    trust_remote_code: bool = False
    local_files_only: bool = False
    revision: str | None = None
    attn_implementation: str | None = None

    @field_validator("checkpoint", mode="before")
    @classmethod
    def _path_to_str(cls, v: Any) -> Any:
        return os.fspath(v) if isinstance(v, os.PathLike) else v

    def common_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"trust_remote_code": self.trust_remote_code, "local_files_only": self.local_files_only}
        if self.revision:
            kw["revision"] = self.revision
        return kw


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    return device


def resolve_dtype(dtype: DType, device: str):
    """``auto``: bfloat16 on GPU (what VLA checkpoints are trained in), float32 on CPU."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


def require_models_extra() -> None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ConfigError(
            f"this policy adapter needs torch and transformers ({exc}); install with "
            "`pip install torch==2.13.0 'transformers>=5'` (or the package's [models] extra)"
        ) from exc


def validate_config(model: type[BaseModel], kwargs: dict[str, Any], who: str) -> BaseModel:
    """Pydantic validation with a one-paragraph error that names the adapter."""
    try:
        return model.model_validate(kwargs)
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc']) or '(config)'}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(f"policy adapter {who}: invalid arguments: " + "; ".join(lines)) from None


def checkpoint_file(checkpoint: str, name: str) -> Path | None:
    """``name`` inside a local checkpoint folder, or None (hub ids are resolved by transformers)."""
    p = Path(checkpoint) / name
    return p if p.is_file() else None


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def model_signature(config_model: type[BaseModel]):
    """An ``inspect.Signature`` listing the config's fields as keyword arguments.

    The policy-config resolver checks ``--policy-arg`` names against the adapter's
    signature before any worker starts; adapters take ``**kwargs`` (validated by
    pydantic), so they publish their fields this way to keep that early check.
    """
    import inspect

    params = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=f.default)
        for name, f in config_model.model_fields.items()
    ]
    return inspect.Signature(params)
