"""VLA-R1 adapter: a Qwen2.5-VL reasoning model that answers in image space.

VLA-R1 (a Qwen2.5-VL-3B fine-tune, ``Qwen2_5_VLForConditionalGeneration``) is asked for
either the end-effector *trajectory* to the target object or the object's *affordance*
box, and answers ``<think>reasoning</think><output>JSON</output>`` with coordinates
normalised to [0, 1].  The harness turns that into motion with the planner bridge
(:mod:`vla_eval.policies.planner_bridge`): lift to 3D with the rendered depth, follow
the path, grasp at its end, lift (and optionally place after a second query).

The adapter is split along its seams: the prompt (:mod:`.vla_r1_prompts`), generation presets
(:mod:`.vla_r1_generation`), the output parser (:mod:`.vla_r1_parser`), the model-independent
image planner (:mod:`.vla_r1_planner`) and the Qwen loader (:mod:`.vla_r1_qwen`).  This module
holds the config and the adapter class, and re-exports the public names of the others so
``vla_eval.policies.vla_r1`` stays the one import path.

The prompt follows upstream's inference code (GigaAI-research/VLA-R1 ``scripts/inference.py``
and ``scripts/server.py``): the instruction plus upstream's format request, which ends in
``".\n<image>"``, sent as one text item with a leading space and the image after it; the
tests pin the rendered chat string to those bytes.  Generation uses upstream's server values
(``generation.preset: upstream``) or greedy decoding, seeded per episode.

The model is queried once per plan stage (not every step); between queries the bridge
steers closed loop from ``eef_pos``.  Every query records ``parse_failure`` (0/1),
``raw_text`` and ``reasoning`` in the chunk extras, so the episode record carries the
format-validity rate and the model's reasoning.
"""

from __future__ import annotations

import copy
import time
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from vla_eval.policies._hf import HFLoadOptions, model_signature, require_models_extra, validate_config
from vla_eval.policies.vla_r1_generation import (
    GREEDY_GENERATION,
    PRESETS,
    UPSTREAM_GENERATION,
    GenerationSettings,
    resolve_generation_args,
    sampling_seed,
)
from vla_eval.policies.vla_r1_parser import OUTPUT_RE, THINK_RE, ParsedOutput, parse_output
from vla_eval.policies.vla_r1_planner import Generation, ImagePlannerPolicy, PlannerSettings
from vla_eval.policies.vla_r1_prompts import (
    AFFORDANCE_SUFFIX,
    IMAGE_MARKER,
    IMAGE_PAD,
    PROMPT_TEMPLATES,
    QWEN2_5_VL_CHAT_TEMPLATE,
    TRAJECTORY_SUFFIX,
    PromptStyle,
    build_prompt,
    render_chat,
    user_content,
)
from vla_eval.policies.vla_r1_qwen import decoding_config, load_qwen_vl, resolve_generation, seeded_sampler

__all__ = [
    "AFFORDANCE_SUFFIX",
    "GREEDY_GENERATION",
    "IMAGE_MARKER",
    "IMAGE_PAD",
    "OUTPUT_RE",
    "PRESETS",
    "PROMPT_TEMPLATES",
    "QWEN2_5_VL_CHAT_TEMPLATE",
    "THINK_RE",
    "TRAJECTORY_SUFFIX",
    "UPSTREAM_GENERATION",
    "Generation",
    "GenerationSettings",
    "ImagePlannerPolicy",
    "ParsedOutput",
    "PlannerSettings",
    "PromptStyle",
    "VlaR1Config",
    "VlaR1Policy",
    "build_prompt",
    "parse_output",
    "render_chat",
    "resolve_generation_args",
    "sampling_seed",
    "user_content",
]


class VlaR1Config(PlannerSettings, HFLoadOptions):
    """Everything a ``policies/vla_r1.yaml`` may set (validated, unknown keys refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chat_template: Literal["checkpoint", "builtin"] = Field(
        default="checkpoint", description="the checkpoint's chat template, falling back to Qwen2.5-VL's own"
    )
    prompt_style: PromptStyle = Field(
        default="upstream_server",
        description="how the user turn is composed: as upstream's server, or as its RL training data",
    )
    system_prompt: str | None = None
    generation: GenerationSettings = GenerationSettings()
    max_new_tokens: int | None = Field(default=None, ge=1, description="shortcut for generation.max_new_tokens")
    min_pixels: int | None = Field(default=None, ge=1)
    max_pixels: int | None = Field(default=None, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _moved_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            moved = [k for k in ("do_sample", "temperature", "top_p", "repetition_penalty") if k in data]
            if moved:
                raise ValueError(
                    f"{', '.join(moved)}: set generation settings under 'generation' "
                    "(e.g. generation: {preset: upstream | greedy, temperature: 0.7, top_p: 0.9, "
                    "repetition_penalty: 1.1})"
                )
        return data

    @model_validator(mode="after")
    def _one_max_new_tokens(self) -> "VlaR1Config":
        g = self.generation
        if self.max_new_tokens is not None and g.max_new_tokens is not None and g.max_new_tokens != self.max_new_tokens:
            raise ValueError(
                f"max_new_tokens {self.max_new_tokens} and generation.max_new_tokens {g.max_new_tokens} "
                "disagree; set one"
            )
        if self.prompt_style == "upstream_training":
            tpl = self.prompt_template or PROMPT_TEMPLATES[self.prompt]
            if tpl.count(IMAGE_MARKER) != 1:
                raise ValueError(
                    f"prompt_style upstream_training needs exactly one {IMAGE_MARKER} in the prompt template"
                )
        return self

    @property
    def generation_in_force(self) -> GenerationSettings:
        """``generation`` with the ``max_new_tokens`` shortcut folded in."""
        if self.max_new_tokens is None:
            return self.generation
        return self.generation.model_copy(update={"max_new_tokens": self.max_new_tokens})


class VlaR1Policy(ImagePlannerPolicy):
    """VLA-R1 through ``transformers``: batched, left-padded generation across envs."""

    name = "vla_r1"

    def __init__(self, **kwargs: Any):
        cfg: VlaR1Config = validate_config(VlaR1Config, kwargs, "vla_r1")  # type: ignore[assignment]
        super().__init__(cfg)
        self.cfg = cfg
        require_models_extra()
        self._load()

    def _load(self) -> None:
        q = load_qwen_vl(self.cfg)
        self._torch, self.device, self.dtype = q.torch, q.device, q.dtype
        self.tokenizer, self.image_processor, self.model = q.tokenizer, q.image_processor, q.model
        self._template, self.merge_size, self._eos_ids = q.template, q.merge_size, q.eos_ids
        self.generation = resolve_generation(self.cfg.generation_in_force, self.model)
        self._greedy_config = decoding_config(self.model)

    def render_prompt(self, prompt: str, n_image_tokens: int) -> str:
        return render_chat(
            self.tokenizer, self._template, prompt, n_image_tokens, self.cfg.system_prompt, self.cfg.prompt_style
        )

    def generate(
        self, images: list[np.ndarray], prompts: list[str], seeds: list[tuple[int | None, int]] | None = None
    ) -> "Generation":
        torch = self._torch
        t0 = time.perf_counter()
        from PIL import Image

        vis = self.image_processor(images=[Image.fromarray(im) for im in images], return_tensors="pt")
        grids = vis["image_grid_thw"]
        texts = [self.render_prompt(p, int(grids[k].prod()) // self.merge_size**2) for k, p in enumerate(prompts)]
        enc = self.tokenizer(texts, return_tensors="pt", padding=True)
        inputs = {k: v.to(self.device) for k, v in enc.items()}
        inputs["pixel_values"] = vis["pixel_values"].to(self.device, self.dtype)
        inputs["image_grid_thw"] = grids.to(self.device)
        t1 = time.perf_counter()
        g = self.generation
        keys = list(seeds) if seeds is not None else [(None, 0)] * len(prompts)
        if len(keys) != len(prompts):
            raise ValueError(f"generate got {len(keys)} seeds for {len(prompts)} prompts")
        row_seeds = [sampling_seed(g["seed"], ep, q) for ep, q in keys]
        gc = copy.deepcopy(self._greedy_config)  # checkpoint's config, greedy; our values on top
        gc.max_new_tokens = g["max_new_tokens"]
        gc.repetition_penalty = g["repetition_penalty"]
        gc.pad_token_id = self.tokenizer.pad_token_id
        gen_kwargs: dict[str, Any] = {"generation_config": gc}
        if g["do_sample"]:
            gens = [torch.Generator(device=self.device).manual_seed(rs) for rs in row_seeds]
            gen_kwargs["logits_processor"] = [seeded_sampler(g["temperature"], g["top_k"], g["top_p"], gens)]
        with torch.inference_mode():
            out = self.model.generate(**inputs, **gen_kwargs)
        t2 = time.perf_counter()
        new = out[:, enc["input_ids"].shape[1] :].tolist()
        decoded = []
        for row in new:
            cut = next((j for j, t in enumerate(row) if t in self._eos_ids), len(row))
            decoded.append(self.tokenizer.decode(row[:cut], skip_special_tokens=False))
        timing = {
            "preprocess_s": round(t1 - t0, 6),
            "model_s": round(t2 - t1, 6),
            "new_tokens": int(max((len(r) for r in new), default=0)),
        }
        patch = int(getattr(self.image_processor, "patch_size", 14))
        hw = [(int(r[1]) * patch, int(r[2]) * patch) for r in grids.tolist()]  # the resized image the model saw
        rows: list[dict[str, Any]] = []
        for (_, q), rs in zip(keys, row_seeds):
            ex: dict[str, Any] = {"sampling_seed": rs} if g["do_sample"] else {}
            if q == 0:  # once per episode: every generation value in force
                ex["generation"] = dict(g)
            rows.append(ex)
        return Generation(decoded, hw, timing, rows)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "config": self.cfg.model_dump(mode="json"), "generation": dict(self.generation)}

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]


VlaR1Policy.__signature__ = model_signature(VlaR1Config)  # type: ignore[attr-defined]
VlaR1Policy.resolve_args = staticmethod(resolve_generation_args)  # type: ignore[attr-defined]
