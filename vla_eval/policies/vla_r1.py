"""VLA-R1 adapter: a Qwen2.5-VL reasoning model that answers in image space.

VLA-R1 (a Qwen2.5-VL-3B fine-tune, ``Qwen2_5_VLForConditionalGeneration``) is asked for
either the end-effector *trajectory* to the target object or the object's *affordance*
box, and answers ``<think>reasoning</think><output>JSON</output>`` with coordinates
normalised to [0, 1].  The harness turns that into motion with the planner bridge
(:mod:`vla_eval.policies.planner_bridge`): lift to 3D with the rendered depth, follow
the path, grasp at its end, lift (and optionally place after a second query).

Loading deliberately avoids ``AutoProcessor``: for Qwen2.5-VL it also builds a video
processor that needs torchvision, whose registry build is CUDA-only and breaks CPU
machines.  ``AutoTokenizer`` + ``AutoImageProcessor(backend="pil")`` and expanding each
``<|image_pad|>`` to ``grid_thw.prod() // merge_size**2`` tokens is exactly what the
processor does, and works everywhere.

The model is queried once per plan stage (not every step); between queries the bridge
steers closed loop from ``eef_pos``.  Every query records ``parse_failure`` (0/1),
``raw_text`` and ``reasoning`` in the chunk extras, so the episode record carries the
format-validity rate and the model's reasoning.
"""

from __future__ import annotations

import ast
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from vla_eval.policies._hf import (
    HFLoadOptions,
    checkpoint_file,
    model_signature,
    require_models_extra,
    resolve_device,
    resolve_dtype,
    validate_config,
)
from vla_eval.policies.base import LIBERO_DELTA_EEF, ActionChunk, Policy, SlotStates
from vla_eval.policies.image_preprocess import ImagePreprocess
from vla_eval.policies.planner_bridge import BridgeConfig, BridgeError, PlanFollower, PlannerBridge

# --------------------------------------------------------------------------- prompts
TRAJECTORY_SUFFIX = (
    " Please output the optimal trajectory of the end-effector to the target object in the format "
    "<output>[[x1, y1], [x2, y2], ...]</output>."
)
AFFORDANCE_SUFFIX = (
    " Please output the affordance region of the target object in the format "
    '<output>{"x": ..., "y": ..., "width": ..., "height": ...}</output>.'
)
PROMPT_TEMPLATES = {
    "trajectory": "{instruction}" + TRAJECTORY_SUFFIX,
    "affordance": "{instruction}" + AFFORDANCE_SUFFIX,
}

QWEN2_5_VL_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'text' %}{{ content['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""Qwen2.5-VL's own chat template (image-only subset); used when a checkpoint ships none."""

IMAGE_PAD = "<|image_pad|>"


def build_prompt(instruction: str, variant: str = "trajectory", template: str | None = None) -> str:
    """The user text VLA-R1 was trained with: the instruction followed by the format request."""
    tpl = template if template is not None else PROMPT_TEMPLATES[variant]
    return tpl.replace("{instruction}", instruction.strip())


def render_chat(tokenizer: Any, template: str, prompt: str, n_image_tokens: int, system_prompt: str | None = None) -> str:
    """Chat-formatted text (image first, then the prompt, as Qwen2.5-VL fine-tunes are trained)
    with the single ``<|image_pad|>`` expanded to the image's token count, as the processor would."""
    messages: list[dict[str, Any]] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    messages.append({"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]})
    text = tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False, add_generation_prompt=True)
    if text.count(IMAGE_PAD) != 1:
        raise ValueError(f"chat template produced {text.count(IMAGE_PAD)} image placeholders, expected 1")
    return text.replace(IMAGE_PAD, IMAGE_PAD * n_image_tokens)


# --------------------------------------------------------------------------- parsing
OUTPUT_RE = re.compile(r"<output>\s*(.*?)\s*</output>", re.S | re.I)
THINK_RE = re.compile(r"<think>\s*(.*?)\s*</think>", re.S | re.I)


@dataclass
class ParsedOutput:
    """Result of parsing one generation. ``points`` is ``(N, 2)`` normalised ``(x, y)`` or None on failure."""

    raw_text: str
    reasoning: str
    points: np.ndarray | None = None
    box: dict[str, float] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.points is not None


def _load_json(body: str) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        # Python-literal fallback (single quotes, trailing commas): safe, no code execution.
        return ast.literal_eval(body)


def _number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{v!r} is not a number")
    f = float(v)
    if not np.isfinite(f):
        raise ValueError(f"{v!r} is not finite")
    return f


def parse_output(
    text: str,
    variant: Literal["trajectory", "affordance"] = "trajectory",
    coords: Literal["normalized", "pixels"] = "normalized",
    image_hw: tuple[int, int] | None = None,
    tolerance: float = 0.02,
) -> ParsedOutput:
    """Parse ``<think>…</think><output>JSON</output>``; never raises.

    Trajectory: a non-empty list of ``[x, y]`` pairs. Affordance: ``{"x", "y", "width",
    "height"}`` with ``(x, y)`` the box centre; its centre becomes a one-point plan.
    ``coords="pixels"`` divides by ``image_hw`` (the image the model saw).  Values may
    overshoot [0, 1] by ``tolerance`` (then clipped); further out is a failure, because
    it would be lifted through a pixel that does not exist.
    """
    raw = text if isinstance(text, str) else str(text)
    think = THINK_RE.search(raw)
    reasoning = think.group(1) if think else ""
    search_from = raw[think.end() :] if think else raw
    m = OUTPUT_RE.search(search_from) or OUTPUT_RE.search(raw)
    if not m:
        return ParsedOutput(raw, reasoning, error="no <output>…</output> block")
    body = m.group(1)
    try:
        data = _load_json(body)
    except (ValueError, SyntaxError) as exc:
        return ParsedOutput(raw, reasoning, error=f"output is not JSON: {exc}")
    except (RecursionError, MemoryError) as exc:
        # hostile or degenerate output ("[" * 100000): a parse failure like any other
        return ParsedOutput(raw, reasoning, error=f"output is not JSON: nested too deeply ({type(exc).__name__})")
    box = None
    try:
        if variant == "trajectory":
            if not isinstance(data, (list, tuple)) or not data:
                raise ValueError("expected a non-empty list of [x, y] points")
            pts = []
            for p in data:
                if not isinstance(p, (list, tuple)) or len(p) != 2:
                    raise ValueError(f"point {p!r} is not [x, y]")
                pts.append([_number(p[0]), _number(p[1])])
            points = np.asarray(pts, dtype=np.float64)
        else:
            if not isinstance(data, dict):
                raise ValueError('expected {"x": ..., "y": ..., "width": ..., "height": ...}')
            box = {k: _number(data[k]) for k in ("x", "y", "width", "height")}
            points = np.array([[box["x"], box["y"]]])
    except (KeyError, ValueError, TypeError) as exc:
        return ParsedOutput(raw, reasoning, error=f"malformed output: {exc}")
    if coords == "pixels":
        if image_hw is None:
            return ParsedOutput(raw, reasoning, error="pixel coordinates need the model image size")
        points = points / np.array([image_hw[1], image_hw[0]], dtype=np.float64)
    if np.any(points < -tolerance) or np.any(points > 1 + tolerance):
        return ParsedOutput(raw, reasoning, error=f"coordinates outside [0, 1]: {points.round(3).tolist()}")
    return ParsedOutput(raw, reasoning, points=np.clip(points, 0.0, 1.0), box=box)


# --------------------------------------------------------------------------- planner policy
class PlannerSettings(BaseModel):
    """Settings shared by every image-space planner (model-independent part)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: Literal["trajectory", "affordance"] = "trajectory"
    prompt_template: str | None = Field(default=None, description="override; must contain {instruction}")
    coords: Literal["normalized", "pixels"] = "normalized"
    image_orientation: Literal["upright", "libero_rot180"] = Field(
        default="upright", description="view the checkpoint was trained on; the harness converts every env's images to it"
    )
    image: ImagePreprocess = ImagePreprocess()
    bridge: BridgeConfig = BridgeConfig()
    task_mode: Literal["pick", "pick_place"] = "pick"
    place_instruction: str = Field(default="{instruction}", description="instruction of the place query (pick_place)")
    retry_after_steps: int = Field(default=5, ge=1, description="hold this many steps after a failed query, then ask again")
    max_queries: int = Field(default=8, ge=1, description="model queries per episode before holding until timeout")
    chunk_size: int = Field(default=1, ge=1, description="actions per call; >1 repeats the follower's action open loop")

    @field_validator("prompt_template", "place_instruction")
    @classmethod
    def _has_instruction(cls, v: str | None) -> str | None:
        if v is not None and "{instruction}" not in v:
            raise ValueError("must contain the placeholder {instruction}")
        return v


@dataclass
class Generation:
    """Texts from one batched model call, the image size each was answered on, and timings."""

    texts: list[str]
    image_hw: list[tuple[int, int]] | None = None
    timing: dict[str, Any] = field(default_factory=dict)


@dataclass
class _EnvState:
    instruction: str = ""
    stage: Literal["pick", "place", "done"] = "pick"
    follower: PlanFollower | None = None
    wait: int = 0
    queries: int = 0
    gripper: float = -1.0


class ImagePlannerPolicy(Policy):
    """State machine shared by 2D-output planners: query -> parse -> lift -> follow -> (query again).

    Subclasses implement :meth:`generate` (images + prompts -> texts).  Passing
    ``text_source`` instead lets tests and the bridge proof feed exact text through the
    same parser and bridge with no model.
    """

    name = "image_planner"
    action_space = LIBERO_DELTA_EEF
    needs_images = True
    needs_depth = True
    slot_aware = True

    def __init__(self, settings: PlannerSettings, text_source: Callable[[list[dict], list[str]], list[str]] | None = None):
        self.settings = settings
        self.image_orientation = settings.image_orientation
        self.bridge = PlannerBridge(settings.bridge)
        self._text_source = text_source
        self._slots: SlotStates[_EnvState] = SlotStates(lambda instruction, seed: _EnvState(instruction=instruction))
        self._states: list[_EnvState] = []  # the current call's rows

    # -- hooks
    def generate(self, images: list[np.ndarray], prompts: list[str]) -> "Generation":
        """Texts for a batch of (preprocessed image, prompt)."""
        raise NotImplementedError

    # -- Policy API
    def reset(self, instructions: list[str], seeds: list[int] | None = None, slots=None) -> None:
        self._slots.reset(instructions, seeds, slots)

    def release(self, slots) -> None:
        self._slots.release(slots)

    def _prompt(self, st: _EnvState) -> str:
        instr = st.instruction
        if st.stage == "place":
            instr = self.settings.place_instruction.replace("{instruction}", instr)
        return build_prompt(instr, self.settings.prompt, self.settings.prompt_template)

    def predict(self, obs_batch: list[dict[str, Any]], slots=None) -> ActionChunk:
        self._states = self._slots.rows(obs_batch, slots)
        extras: list[dict[str, Any]] = [{} for _ in obs_batch]
        ask = [
            i
            for i, st in enumerate(self._states)
            if st.stage != "done" and st.follower is None and st.wait <= 0 and st.queries < self.settings.max_queries
        ]
        if ask:
            self._query(ask, obs_batch, extras)
        actions = np.zeros((len(obs_batch), self.settings.chunk_size, 7))
        for i, (st, obs) in enumerate(zip(self._states, obs_batch)):
            actions[i, :] = self._step(st, obs)
        return ActionChunk(actions=actions, space=LIBERO_DELTA_EEF, extras=extras)

    def _query(self, ask: list[int], obs_batch: list[dict[str, Any]], extras: list[dict[str, Any]]) -> None:
        cam = self.settings.bridge.camera
        src_images, images, prompts = [], [], []
        for i in ask:
            try:
                img = np.asarray(obs_batch[i]["images"][cam])
            except (KeyError, TypeError) as exc:
                raise BridgeError(f"observation has no image from camera {cam!r}") from exc
            src_images.append(img)
            images.append(self.settings.image.apply(img))
            prompts.append(self._prompt(self._states[i]))
        t0 = time.perf_counter()
        if self._text_source is not None:
            gen = Generation(list(self._text_source([obs_batch[i] for i in ask], prompts)))
        else:
            gen = self.generate(images, prompts)
        if len(gen.texts) != len(ask):
            raise BridgeError(f"generation returned {len(gen.texts)} texts for {len(ask)} prompts")
        gen_s = time.perf_counter() - t0
        for k, i in enumerate(ask):
            st = self._states[i]
            st.queries += 1
            model_hw = gen.image_hw[k] if gen.image_hw else images[k].shape[:2]
            parsed = parse_output(gen.texts[k], self.settings.prompt, self.settings.coords, model_hw)
            ex: dict[str, Any] = {
                "parse_failure": int(not parsed.ok),
                "raw_text": parsed.raw_text,
                "reasoning": parsed.reasoning,
                "stage": st.stage,
                "generate_time_s": round(gen_s, 6),
                **gen.timing,
            }
            if parsed.ok:
                pts = self.settings.image.to_source_coords(parsed.points, src_images[k].shape[:2])
                try:
                    plan = (self.bridge.pick_plan if st.stage == "pick" else self.bridge.place_plan)(pts, obs_batch[i])
                    st.follower = PlanFollower(plan, self.settings.bridge)
                    ex["bridge_failure"] = 0
                except BridgeError as exc:
                    ex["bridge_failure"] = 1
                    ex["bridge_error"] = str(exc)
                    st.wait = self.settings.retry_after_steps
            else:
                ex["parse_error"] = parsed.error
                st.wait = self.settings.retry_after_steps
            extras[i] = ex

    def _step(self, st: _EnvState, obs: dict[str, Any]) -> np.ndarray:
        hold = np.zeros(7)
        if st.follower is not None:
            action = st.follower.step(np.asarray(obs["state"]["eef_pos"]))
            if action is not None:
                st.gripper = float(action[6])
                return action
            st.follower = None
            if st.stage == "pick" and self.settings.task_mode == "pick_place":
                st.stage = "place"
            else:
                st.stage = "done"
        st.wait -= 1
        hold[6] = st.gripper
        return hold

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "settings": self.settings.model_dump(mode="json")}


# --------------------------------------------------------------------------- VLA-R1
class VlaR1Config(PlannerSettings, HFLoadOptions):
    """Everything a ``policies/vla_r1.yaml`` may set (validated, unknown keys refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chat_template: Literal["checkpoint", "builtin"] = Field(
        default="checkpoint", description="the checkpoint's chat template, falling back to Qwen2.5-VL's own"
    )
    system_prompt: str | None = None
    max_new_tokens: int = Field(default=1024, ge=1)
    do_sample: bool = False
    temperature: float = Field(default=1.0, gt=0)
    min_pixels: int | None = Field(default=None, ge=1)
    max_pixels: int | None = Field(default=None, ge=1)


class VlaR1Policy(ImagePlannerPolicy):
    """VLA-R1 through ``transformers``: batched, left-padded generation across envs."""

    name = "vla_r1"
    Config = VlaR1Config

    def __init__(self, **kwargs: Any):
        cfg: VlaR1Config = validate_config(VlaR1Config, kwargs, "vla_r1")  # type: ignore[assignment]
        super().__init__(cfg)
        self.cfg = cfg
        require_models_extra()
        self._load()

    def _load(self) -> None:
        import torch
        from transformers import AutoImageProcessor, AutoTokenizer, Qwen2_5_VLForConditionalGeneration

        cfg = self.cfg
        self.device = resolve_device(cfg.device)
        self.dtype = resolve_dtype(cfg.dtype, self.device)
        common = cfg.common_kwargs()
        self.tokenizer = AutoTokenizer.from_pretrained(cfg.checkpoint, padding_side="left", **common)
        ip_kwargs: dict[str, Any] = {}
        if cfg.min_pixels is not None:
            ip_kwargs["min_pixels"] = cfg.min_pixels
        if cfg.max_pixels is not None:
            ip_kwargs["max_pixels"] = cfg.max_pixels
        self.image_processor = AutoImageProcessor.from_pretrained(cfg.checkpoint, backend="pil", **common, **ip_kwargs)
        model_kwargs: dict[str, Any] = {"dtype": self.dtype, **common}
        if cfg.attn_implementation:
            model_kwargs["attn_implementation"] = cfg.attn_implementation
        self.model = Qwen2_5_VLForConditionalGeneration.from_pretrained(cfg.checkpoint, **model_kwargs)
        self.model.to(self.device).eval()
        self._torch = torch

        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._template = self._chat_template()
        image_token_id = self.tokenizer.convert_tokens_to_ids(IMAGE_PAD)
        if image_token_id != self.model.config.image_token_id:
            raise BridgeError(
                f"tokenizer's {IMAGE_PAD} id {image_token_id} != model config image_token_id "
                f"{self.model.config.image_token_id}: tokenizer and model do not belong together"
            )
        self.merge_size = int(getattr(self.image_processor, "merge_size", 2))
        gen = self.model.generation_config
        eos = gen.eos_token_id if gen.eos_token_id is not None else self.tokenizer.eos_token_id
        self._eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        self._eos_ids.add(self.tokenizer.convert_tokens_to_ids("<|im_end|>"))

    def _chat_template(self) -> str:
        if self.cfg.chat_template == "checkpoint":
            if getattr(self.tokenizer, "chat_template", None):
                return self.tokenizer.chat_template
            for name in ("chat_template.jinja", "chat_template.json"):
                f = checkpoint_file(self.cfg.checkpoint, name)
                if f is not None:
                    text = f.read_text(encoding="utf-8")
                    return json.loads(text)["chat_template"] if name.endswith(".json") else text
        return QWEN2_5_VL_CHAT_TEMPLATE

    def render_prompt(self, prompt: str, n_image_tokens: int) -> str:
        return render_chat(self.tokenizer, self._template, prompt, n_image_tokens, self.cfg.system_prompt)

    def generate(self, images: list[np.ndarray], prompts: list[str]) -> "Generation":
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
        gen_kwargs: dict[str, Any] = {"max_new_tokens": self.cfg.max_new_tokens, "do_sample": self.cfg.do_sample}
        if self.cfg.do_sample:
            gen_kwargs["temperature"] = self.cfg.temperature
        gen_kwargs["pad_token_id"] = self.tokenizer.pad_token_id
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
        hw = [(int(g[1]) * patch, int(g[2]) * patch) for g in grids.tolist()]  # the resized image the model saw
        return Generation(decoded, hw, timing)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "config": self.cfg.model_dump(mode="json")}

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]


VlaR1Policy.__signature__ = model_signature(VlaR1Config)  # type: ignore[attr-defined]
