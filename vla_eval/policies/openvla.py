"""OpenVLA-style action-token adapter.

OpenVLA (and its fine-tunes) emit 7 tokens, one per action dimension, taken from the
last 256 ids of the language vocabulary.  Decoding follows the reference implementation:

* prompt ``In: What action should the robot take to {instruction}?\\nOut:`` (instruction
  lower-cased, as in OpenVLA's LIBERO evaluation);
* 7 greedy tokens, restricted to the action-bin ids with a ``LogitsProcessor`` (a mask
  on the scores: unlike ``bad_words_ids`` it cannot be bypassed and costs nothing);
* bin index ``clip(vocab_size - token - 1, 0, 254)`` into the centres of
  ``linspace(-1, 1, 256)``;
* unnormalise ``0.5 (a + 1)(q99 - q01) + q01`` per dimension where the stats' ``mask``
  is true (the gripper is not normalised), with the statistics of the fine-tuning
  dataset (``unnorm_key``: the wrong key silently ruins a run, so it is required
  whenever the checkpoint carries more than one);
* the gripper comes out in [0, 1] with 1 = open (``open_01``); the harness converts it
  to the env's -1 open / +1 close (OpenVLA's ``normalize_gripper_action`` +
  ``invert_gripper_action``), after the adapter binarises it if asked.

Real OpenVLA checkpoints ship their own modelling code (``trust_remote_code: true`` in
the policy config, never by default); any image-text-to-text model with a Llava-style
``<image>`` token works without it (tests use a tiny ``LlavaForConditionalGeneration``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vla_eval.actions.space import ActionChunk, ActionSpace
from vla_eval.adapter import Policy, SlotStates
from vla_eval.errors import ConfigError
from vla_eval.policies._hf import (
    HFLoadOptions,
    checkpoint_file,
    model_signature,
    read_json,
    require_models_extra,
    resolve_device,
    resolve_dtype,
    validate_config,
)
from vla_eval.policies.image_preprocess import ImagePreprocess

N_BINS = 256
BIN_CENTERS = (np.linspace(-1.0, 1.0, N_BINS)[:-1] + np.linspace(-1.0, 1.0, N_BINS)[1:]) / 2.0  # 255 centres


def tokens_to_normalized(token_ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """Action token ids -> normalised actions in [-1, 1] (OpenVLA's de-tokenisation)."""
    idx = np.clip(vocab_size - np.asarray(token_ids, dtype=np.int64) - 1, 0, BIN_CENTERS.shape[0] - 1)
    return BIN_CENTERS[idx]


def normalized_to_tokens(actions: np.ndarray, vocab_size: int) -> np.ndarray:
    """Inverse of :func:`tokens_to_normalized` (OpenVLA's ActionTokenizer); used by tests."""
    bins = np.linspace(-1.0, 1.0, N_BINS)
    d = np.digitize(np.clip(actions, -1.0, 1.0), bins)  # 1..256
    return vocab_size - d


def unnormalize(normalized: np.ndarray, stats: "ActionStats") -> np.ndarray:
    """``0.5 (a + 1)(q99 - q01) + q01`` where ``mask``; unchanged elsewhere."""
    q01, q99 = np.asarray(stats.q01), np.asarray(stats.q99)
    mask = np.asarray(stats.mask if stats.mask is not None else [True] * len(q01), dtype=bool)
    return np.where(mask, 0.5 * (normalized + 1.0) * (q99 - q01) + q01, normalized)


class ActionStats(BaseModel):
    """The ``action`` entry of OpenVLA's ``norm_stats`` / ``dataset_statistics.json``."""

    model_config = ConfigDict(extra="ignore")

    q01: list[float]
    q99: list[float]
    mask: list[bool] | None = None


def load_norm_stats(
    checkpoint: str, model_config: Any, path: str | None, unnorm_key: str | None
) -> tuple[str, ActionStats]:
    """Find the dataset statistics (explicit file > checkpoint config ``norm_stats`` > ``dataset_statistics.json``)."""
    table: dict[str, Any] | None = None
    where = ""
    if path:
        table, where = read_json(Path(path)), path
    elif getattr(model_config, "norm_stats", None):
        table, where = dict(model_config.norm_stats), f"{checkpoint}/config.json norm_stats"
    else:
        f = checkpoint_file(checkpoint, "dataset_statistics.json")
        if f is not None:
            table, where = read_json(f), str(f)
    if not table:
        raise ConfigError(
            "openvla: no action statistics found (checkpoint config 'norm_stats', dataset_statistics.json, "
            "or norm_stats_path); they are needed to unnormalise actions"
        )
    keys = sorted(table)
    if unnorm_key is None:
        if len(keys) != 1:
            raise ConfigError(
                f"openvla: {where} holds statistics for {keys}; set unnorm_key to the fine-tuning dataset"
            )
        unnorm_key = keys[0]
    if unnorm_key not in table:
        raise ConfigError(f"openvla: unnorm_key {unnorm_key!r} not in {where}; available: {keys}")
    entry = table[unnorm_key]
    return unnorm_key, ActionStats.model_validate(entry.get("action", entry))


class OpenVlaConfig(HFLoadOptions):
    """Everything a ``policies/openvla.yaml`` may set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_class: str = Field(default="auto", description="'auto' (AutoModelForImageTextToText) or 'module:Class'")
    prompt_template: str = "In: What action should the robot take to {instruction}?\nOut:"
    lowercase_instruction: bool = True
    append_token_id: int | None = Field(
        default=None, description="token appended when the prompt does not end with it (OpenVLA/Llama-2: 29871)"
    )
    unnorm_key: str | None = None
    norm_stats_path: str | None = None
    action_dim: int = Field(default=7, ge=1)
    vocab_size: int | None = Field(
        default=None, description="action bins are the last 256 ids below this (default tokenizer.vocab_size)"
    )
    camera: str = "agentview"
    image_orientation: Literal["upright", "libero_rot180"] = Field(
        default="libero_rot180",
        description="view the checkpoint was trained on; the harness converts (LIBERO fine-tunes: libero_rot180)",
    )
    image: ImagePreprocess = Field(
        default=ImagePreprocess(chain="openvla_libero", center_crop=True),
        description="OpenVLA's LIBERO evaluation chain (JPEG, lanczos3 224, 0.9-area crop); "
        "chain: simple for the old PIL path",
    )
    binarize_gripper: bool = True
    rotation: Literal["axis_angle", "euler_xyz"] = "axis_angle"
    gripper: Literal["close_positive", "open_positive", "open_01", "close_01"] = "open_01"
    position_units: Literal["normalized", "meters"] = "normalized"


def _action_logits_processor(lo: int, hi: int):
    import torch
    from transformers import LogitsProcessor

    class ActionTokenOnly(LogitsProcessor):
        """Everything outside the action-bin ids ``[lo, hi]`` gets ``-inf``."""

        def __call__(self, input_ids, scores):
            masked = torch.full_like(scores, float("-inf"))
            masked[:, lo : hi + 1] = scores[:, lo : hi + 1]
            return masked

    return ActionTokenOnly()


def load_model_class(spec: str):
    """``model_class: module:Class`` from a policy file, checked to be a transformers model before it is used."""
    import transformers

    from vla_eval.registry import check_subclass, import_object

    cls = import_object(spec, "model_class")
    check_subclass(cls, transformers.PreTrainedModel, "model_class", spec)
    return cls


class OpenVlaPolicy(Policy):
    """OpenVLA-style action-token policy; one batched greedy ``generate`` per step for all envs."""

    name = "openvla"
    needs_images = True
    slot_aware = True

    def __init__(self, **kwargs: Any):
        cfg: OpenVlaConfig = validate_config(OpenVlaConfig, kwargs, "openvla")  # type: ignore[assignment]
        self.cfg = cfg
        self.image_orientation = cfg.image_orientation
        self.cameras_needed = (cfg.camera,)
        self.action_space = ActionSpace(
            kind="delta_eef",
            dim=cfg.action_dim,
            rotation=cfg.rotation,
            position_units=cfg.position_units,
            gripper=cfg.gripper,
        )
        require_models_extra()
        self._load()
        self._episodes: SlotStates[_Episode] = SlotStates(lambda instruction, seed: _Episode(instruction))
        self.last_model_images: list[np.ndarray] = []

    def _model_class(self):
        if self.cfg.model_class == "auto":
            import transformers

            return transformers.AutoModelForImageTextToText
        return load_model_class(self.cfg.model_class)

    def _load(self) -> None:
        import torch
        from transformers import AutoImageProcessor, AutoTokenizer

        cfg = self.cfg
        self._torch = torch
        self.device = resolve_device(cfg.device)
        self.dtype = resolve_dtype(cfg.dtype, self.device)
        common = cfg.common_kwargs()
        self.tokenizer = AutoTokenizer.from_pretrained(cfg.checkpoint, padding_side="left", **common)
        self.image_processor = AutoImageProcessor.from_pretrained(cfg.checkpoint, backend="pil", **common)
        kw: dict[str, Any] = {"dtype": self.dtype, **common}
        if cfg.attn_implementation:
            kw["attn_implementation"] = cfg.attn_implementation
        self.model = self._model_class().from_pretrained(cfg.checkpoint, **kw).to(self.device).eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.unnorm_key, self.stats = load_norm_stats(
            cfg.checkpoint, self.model.config, cfg.norm_stats_path, cfg.unnorm_key
        )
        if len(self.stats.q01) != cfg.action_dim or len(self.stats.q99) != cfg.action_dim:
            raise ConfigError(
                f"openvla: statistics {self.unnorm_key!r} have {len(self.stats.q01)} dims, "
                f"action_dim is {cfg.action_dim}"
            )
        self.vocab_size = int(cfg.vocab_size or self.tokenizer.vocab_size)
        self.action_ids = (self.vocab_size - N_BINS, self.vocab_size - 1)
        emb = self.model.get_input_embeddings().weight.shape[0]
        if self.action_ids[1] >= emb:
            raise ConfigError(f"openvla: action ids up to {self.action_ids[1]} exceed the model's {emb} embeddings")
        mc = self.model.config
        self.image_token_id = getattr(mc, "image_token_id", None) or getattr(mc, "image_token_index", None)
        self._logits = _action_logits_processor(*self.action_ids)

    def _n_image_tokens(self, pixel_values) -> int:
        """Llava's count: one token per patch (+1 with the 'full' feature strategy, which keeps CLS)."""
        vc = self.model.config.vision_config
        h, w = pixel_values.shape[-2:]
        n = (h // vc.patch_size) * (w // vc.patch_size)
        return n + (1 if getattr(self.model.config, "vision_feature_select_strategy", "default") == "full" else 0)

    def prompt(self, instruction: str) -> str:
        instr = instruction.strip()
        return self.cfg.prompt_template.format(instruction=instr.lower() if self.cfg.lowercase_instruction else instr)

    def reset(self, instructions: list[str], seeds: list[int] | None = None, slots=None) -> None:
        self._episodes.reset(instructions, seeds, slots)

    def release(self, slots) -> None:
        self._episodes.release(slots)

    def predict(self, obs_batch: list[dict[str, Any]], slots=None) -> ActionChunk:
        torch = self._torch
        from PIL import Image

        t0 = time.perf_counter()
        episodes = self._episodes.rows(obs_batch, slots)
        instr = [e.instruction for e in episodes]
        arrays = [self.cfg.image.apply(np.asarray(o["images"][self.cfg.camera])) for o in obs_batch]
        self.last_model_images = arrays
        images = [Image.fromarray(a) for a in arrays]
        pix = self.image_processor(images=images, return_tensors="pt")["pixel_values"]
        rows = []
        for text in (self.prompt(i) for i in instr):
            ids = self.tokenizer(text, add_special_tokens=True)["input_ids"]
            if self.image_token_id is not None:  # Llava-style: image placeholders right after BOS, as Prismatic does
                bos = ids[:1] if ids and ids[0] == self.tokenizer.bos_token_id else []
                ids = bos + [self.image_token_id] * self._n_image_tokens(pix) + ids[len(bos) :]
            if self.cfg.append_token_id is not None and ids[-1] != self.cfg.append_token_id:
                ids.append(self.cfg.append_token_id)
            rows.append(ids)
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
        attn = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        t1 = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=attn.to(self.device),
                pixel_values=pix.to(self.device, self.dtype),
                max_new_tokens=self.cfg.action_dim,
                min_new_tokens=self.cfg.action_dim,
                do_sample=False,
                logits_processor=[self._logits],
                pad_token_id=pad,
            )
        t2 = time.perf_counter()
        tokens = out[:, width:].cpu().numpy()
        actions = unnormalize(tokens_to_normalized(tokens, self.vocab_size), self.stats)
        if self.cfg.binarize_gripper:
            actions[..., -1] = _binarize_native(actions[..., -1], self.cfg.gripper)
        extras = [
            {"action_tokens": tokens[b].tolist(), "preprocess_s": round(t1 - t0, 6), "model_s": round(t2 - t1, 6)}
            for b in range(len(obs_batch))
        ]
        chain = self.cfg.image.describe()
        for ep, ex in zip(episodes, extras):
            if not ep.recorded:  # once per episode: the image chain the model saw
                ex["image_chain"] = chain
                ep.recorded = True
        return ActionChunk(actions=actions[:, None, :], space=self.action_space, extras=extras)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "config": self.cfg.model_dump(mode="json"),
            "unnorm_key": self.unnorm_key,
            "image_chain": self.cfg.image.describe(),
        }

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]


@dataclass
class _Episode:
    instruction: str
    recorded: bool = False


def _binarize_native(g: np.ndarray, convention: str) -> np.ndarray:
    """Snap a gripper value to its convention's two extremes (threshold: the midpoint)."""
    if convention in ("open_01", "close_01"):
        return np.where(g > 0.5, 1.0, 0.0)
    return np.where(g > 0.0, 1.0, -1.0)


OpenVlaPolicy.__signature__ = model_signature(OpenVlaConfig)  # type: ignore[attr-defined]

__all__ = ["OpenVlaPolicy", "OpenVlaConfig", "tokens_to_normalized", "normalized_to_tokens", "unnormalize"]
