"""Loading Qwen2.5-VL for VLA-R1, and the decoding pieces that depend on transformers.

Loading deliberately avoids ``AutoProcessor``: for Qwen2.5-VL it also builds a video
processor that needs torchvision, whose registry build is CUDA-only and breaks CPU
machines.  ``AutoTokenizer`` + ``AutoImageProcessor(backend="pil")`` and expanding each
``<|image_pad|>`` to ``grid_thw.prod() // merge_size**2`` tokens is how the processor
builds its input, and works everywhere.  torch and transformers are imported inside the
functions so the rest of the adapter (config, parser, planner) imports without them.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vla_eval.policies._hf import checkpoint_file, resolve_device, resolve_dtype
from vla_eval.policies.planner_bridge import BridgeError
from vla_eval.policies.vla_r1_generation import GenerationSettings
from vla_eval.policies.vla_r1_prompts import IMAGE_PAD, QWEN2_5_VL_CHAT_TEMPLATE

if TYPE_CHECKING:
    from vla_eval.policies.vla_r1 import VlaR1Config


@dataclass
class QwenVL:
    """A loaded checkpoint: what :class:`~vla_eval.policies.vla_r1.VlaR1Policy` keeps as attributes."""

    torch: Any
    device: Any
    dtype: Any
    tokenizer: Any
    image_processor: Any
    model: Any
    template: str
    merge_size: int
    eos_ids: set[int]


def load_qwen_vl(cfg: "VlaR1Config") -> QwenVL:
    """Tokenizer (left padding, for batched generation), PIL image processor and model, checked to belong together."""
    import torch
    from transformers import AutoImageProcessor, AutoTokenizer, Qwen2_5_VLForConditionalGeneration

    device = resolve_device(cfg.device)
    dtype = resolve_dtype(cfg.dtype, device)
    common = cfg.common_kwargs()
    tokenizer = AutoTokenizer.from_pretrained(cfg.checkpoint, padding_side="left", **common)
    ip_kwargs: dict[str, Any] = {}
    if cfg.min_pixels is not None:
        ip_kwargs["min_pixels"] = cfg.min_pixels
    if cfg.max_pixels is not None:
        ip_kwargs["max_pixels"] = cfg.max_pixels
    image_processor = AutoImageProcessor.from_pretrained(cfg.checkpoint, backend="pil", **common, **ip_kwargs)
    model_kwargs: dict[str, Any] = {"dtype": dtype, **common}
    if cfg.attn_implementation:
        model_kwargs["attn_implementation"] = cfg.attn_implementation
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(cfg.checkpoint, **model_kwargs)
    model.to(device).eval()

    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    template = chat_template(cfg, tokenizer)
    image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_PAD)
    if image_token_id != model.config.image_token_id:
        raise BridgeError(
            f"tokenizer's {IMAGE_PAD} id {image_token_id} != model config image_token_id "
            f"{model.config.image_token_id}: tokenizer and model do not belong together"
        )
    gen = model.generation_config
    eos = gen.eos_token_id if gen.eos_token_id is not None else tokenizer.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
    eos_ids.add(tokenizer.convert_tokens_to_ids("<|im_end|>"))
    return QwenVL(
        torch=torch,
        device=device,
        dtype=dtype,
        tokenizer=tokenizer,
        image_processor=image_processor,
        model=model,
        template=template,
        merge_size=int(getattr(image_processor, "merge_size", 2)),
        eos_ids=eos_ids,
    )


def chat_template(cfg: "VlaR1Config", tokenizer: Any) -> str:
    """The checkpoint's chat template (tokenizer, then ``chat_template.jinja`` / ``.json``), else Qwen2.5-VL's own."""
    if cfg.chat_template == "checkpoint":
        if getattr(tokenizer, "chat_template", None):
            return tokenizer.chat_template
        for name in ("chat_template.jinja", "chat_template.json"):
            f = checkpoint_file(cfg.checkpoint, name)
            if f is not None:
                text = f.read_text(encoding="utf-8")
                return json.loads(text)["chat_template"] if name.endswith(".json") else text
    return QWEN2_5_VL_CHAT_TEMPLATE


def resolve_generation(settings: GenerationSettings, model: Any) -> dict[str, Any]:
    """Every generation value in force, ``top_k`` resolved as upstream's call gets it."""
    res = settings.resolved()
    if res["do_sample"] and res["top_k"] is None:
        ckpt = getattr(model.generation_config, "top_k", None)
        if ckpt is not None:
            res["top_k"], res["top_k_source"] = int(ckpt), "checkpoint generation_config"
        else:
            res["top_k"], res["top_k_source"] = transformers_default("top_k", 50), "transformers default"
    return res


def decoding_config(model: Any):
    """The checkpoint's generation config in greedy mode: sampling happens in our processor,
    so the checkpoint's own sampling values must not warn or apply twice."""
    gc = copy.deepcopy(model.generation_config)
    gc.do_sample = False
    for key in ("temperature", "top_p", "top_k", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff"):
        if hasattr(gc, key):
            setattr(gc, key, None)
    return gc


def seeded_sampler(temperature: float, top_k: int, top_p: float, generators: list):
    """A logits processor that samples each row with its own ``torch.Generator``.

    Generation runs in greedy mode with this processor last: it applies transformers' own
    temperature, top-k and top-p warpers (the order and code ``do_sample=True`` uses), draws
    one token per row from the row's generator and leaves only that token finite, so the
    argmax picks it.  One generator per row keeps every episode's samples independent of
    which other episodes share the batch (the batching server changes that every call).
    """
    import torch
    from transformers import LogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    warpers: list = []
    if temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(temperature))
    if top_k:
        warpers.append(TopKLogitsWarper(top_k=top_k, min_tokens_to_keep=1))
    if top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p=top_p, min_tokens_to_keep=1))

    class SeededSampler(LogitsProcessor):
        def __init__(self):
            self.temperature, self.top_k, self.top_p = temperature, top_k, top_p

        def __call__(self, input_ids, scores):
            for w in warpers:
                scores = w(input_ids, scores)
            probs = torch.softmax(scores.float(), dim=-1)
            picks = torch.cat([torch.multinomial(probs[b], 1, generator=g) for b, g in enumerate(generators)])
            out = torch.full_like(scores, float("-inf"))
            out[torch.arange(len(generators), device=scores.device), picks] = 0.0
            return out

    return SeededSampler()


def transformers_default(key: str, fallback: Any) -> Any:
    """transformers' global default for an unset generation value (50 for ``top_k``)."""
    try:
        from transformers import GenerationConfig

        return GenerationConfig._get_default_generation_params().get(key, fallback)
    except Exception:  # pragma: no cover - a transformers without the helper
        return fallback
