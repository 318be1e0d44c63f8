"""VLA-R1 generation settings: upstream's and greedy presets, overrides, and per-episode sampling seeds.

Model-free, so run configs can be validated (and recorded in run.json) without loading a checkpoint.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

UPSTREAM_GENERATION: dict[str, Any] = {
    "do_sample": True,
    "temperature": 0.7,
    "top_p": 0.9,
    "repetition_penalty": 1.1,
    "max_new_tokens": 2048,
}
"""GigaAI-research/VLA-R1 scripts/server.py lines 44-51 (``self.model.generate(...)``)."""
GREEDY_GENERATION: dict[str, Any] = {
    "do_sample": False,
    "temperature": None,
    "top_p": None,
    "repetition_penalty": 1.0,
    "max_new_tokens": 2048,
}
PRESETS = {"upstream": UPSTREAM_GENERATION, "greedy": GREEDY_GENERATION}
_SAMPLING_ONLY = ("temperature", "top_p", "top_k")


class GenerationSettings(BaseModel):
    """How VLA-R1 decodes: a named preset, and any value overridden.

    ``upstream`` samples with upstream's server values; ``greedy`` takes the argmax.  ``top_k``
    left unset means what upstream gets: the checkpoint's ``generation_config`` value (or
    transformers' default, 50), because upstream does not pass it.  Sampling is seeded per
    episode and query (see :func:`sampling_seed`), so a run is reproducible whatever the
    batch composition.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: Literal["upstream", "greedy"] = "upstream"
    temperature: float | None = Field(default=None, gt=0, le=100)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=0, description="None: the checkpoint's generation_config, as upstream")
    repetition_penalty: float | None = Field(default=None, gt=0, le=10)
    max_new_tokens: int | None = Field(default=None, ge=1, le=32768)
    seed: int = Field(default=0, ge=0, lt=2**63, description="base seed of the per-episode sampling streams")

    @model_validator(mode="after")
    def _greedy_does_not_sample(self) -> "GenerationSettings":
        if self.preset == "greedy":
            bad = [f for f in _SAMPLING_ONLY if getattr(self, f) is not None]
            if bad:
                raise ValueError(
                    f"{', '.join(bad)} only apply when sampling; "
                    "preset 'greedy' takes the argmax (use preset 'upstream')"
                )
        return self

    @property
    def do_sample(self) -> bool:
        return bool(PRESETS[self.preset]["do_sample"])

    def resolved(self) -> dict[str, Any]:
        """The preset with the overrides applied: every value the run uses (``top_k`` None: checkpoint's)."""
        base = dict(PRESETS[self.preset])
        for key in ("temperature", "top_p", "repetition_penalty", "max_new_tokens"):
            value = getattr(self, key)
            if value is not None:
                base[key] = value
        out = {"preset": self.preset, **base, "top_k": self.top_k, "seed": self.seed}
        if not self.do_sample:
            for key in _SAMPLING_ONLY:
                out.pop(key)
        return out


def sampling_seed(base: int, episode_seed: int | None, query: int) -> int:
    """Seed of one query's sampling stream: a hash of (``generation.seed``, the episode seed,
    the query's index in the episode).  Episodes without a seed use ``(generation.seed, query)``
    alone, so they repeat each other."""
    entropy = [int(base), 1, int(episode_seed), int(query)] if episode_seed is not None else [int(base), 0, int(query)]
    a, b = np.random.SeedSequence(entropy).generate_state(2)
    return int((int(a) << 31) ^ int(b)) & (2**63 - 1)


def resolve_generation_args(args: dict[str, Any], source: str) -> dict[str, Any]:
    """Policy arguments with ``generation`` expanded to every value in force (recorded in run.json,
    so resuming with other generation settings is refused); the ``max_new_tokens`` shortcut is folded in."""
    from vla_eval.errors import ConfigError

    out = dict(args)
    raw = out.get("generation", {})
    if raw is None:
        raw = {}
    if isinstance(raw, GenerationSettings):
        raw = raw.model_dump()
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: field 'generation': expected a mapping such as {{preset: upstream}}, got {raw!r}")
    shortcut = out.pop("max_new_tokens", None)
    try:
        gen = GenerationSettings.model_validate(raw)
    except ValidationError as exc:
        lines = [
            f"field 'generation.{'.'.join(str(p) for p in e['loc'])}': {e['msg']}"
            if e["loc"]
            else f"field 'generation': {e['msg']}"
            for e in exc.errors()
        ]
        raise ConfigError(f"{source}: " + "; ".join(lines) + " (presets: upstream, greedy)") from None
    if shortcut is not None:
        if gen.max_new_tokens is not None and gen.max_new_tokens != shortcut:
            raise ConfigError(
                f"{source}: max_new_tokens {shortcut!r} and generation.max_new_tokens {gen.max_new_tokens} "
                "disagree; set one"
            )
        try:
            gen = GenerationSettings.model_validate({**gen.model_dump(exclude_none=True), "max_new_tokens": shortcut})
        except ValidationError as exc:
            raise ConfigError(f"{source}: field 'max_new_tokens': {exc.errors()[0]['msg']}") from None
    res = gen.resolved()
    explicit = {k: v for k, v in res.items() if k not in ("do_sample",) and v is not None}
    out["generation"] = explicit
    return out
