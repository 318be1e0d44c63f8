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
``<|image_pad|>`` to ``grid_thw.prod() // merge_size**2`` tokens is how the processor
builds its input, and works everywhere.

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

import ast
import copy
import inspect
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vla_eval.policies._hf import (
    HFLoadOptions,
    checkpoint_file,
    model_signature,
    require_models_extra,
    resolve_device,
    resolve_dtype,
    validate_config,
)
from vla_eval.actions.space import LIBERO_DELTA_EEF, ActionChunk
from vla_eval.adapter import Policy, SlotStates
from vla_eval.policies.image_preprocess import ImagePreprocess
from vla_eval.policies.planner_bridge import BridgeConfig, BridgeError, PlanFollower, PlannerBridge

# --------------------------------------------------------------------------- prompts
# Upstream's format requests, verbatim: GigaAI-research/VLA-R1 scripts/inference.py line 12
# (traj_form) and line 11 (aff_form; "define" is upstream's word).  The trailing "\n<image>" is
# part of the text upstream sends: the sharegpt-style training prompts mark the image with it.
TRAJECTORY_SUFFIX = (
    " Please output the optimal trajectory of the end-effector to the target object in the format "
    "<output>[[x1, y1], [x2, y2], ...]</output>.\n<image>"
)
AFFORDANCE_SUFFIX = (
    " Please output the 2D affordance region define by bounding box of the object in the format "
    '<output>{"x": value, "y": value, "width": value, "height": value}</output>.\n<image>'
)
PROMPT_TEMPLATES = {
    "trajectory": "{instruction}" + TRAJECTORY_SUFFIX,
    "affordance": "{instruction}" + AFFORDANCE_SUFFIX,
}
IMAGE_MARKER = "<image>"

QWEN2_5_VL_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'text' %}{{ content['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""Qwen2.5-VL's own chat template (image + text subset); used when a checkpoint ships none."""

IMAGE_PAD = "<|image_pad|>"

PromptStyle = Literal["upstream_server", "upstream_training"]


def build_prompt(instruction: str, variant: str = "trajectory", template: str | None = None) -> str:
    """The prompt string upstream's client sends: the instruction, unchanged, then the format
    request (scripts/inference.py lines 69 and 77: ``prompt + aff_form`` / ``prompt + traj_form``)."""
    tpl = template if template is not None else PROMPT_TEMPLATES[variant]
    return tpl.replace("{instruction}", instruction)


def user_content(prompt: str, style: PromptStyle = "upstream_server") -> list[dict[str, Any]]:
    """The user turn's content list, composed as upstream composes it.

    * ``upstream_server`` (scripts/server.py lines 22-26, ``convert_to_user_message``): one text
      item ``" " + prompt`` (a leading space; the literal ``<image>`` stays in the text) followed
      by the image.
    * ``upstream_training`` (RFT_training/verl/verl/utils/dataset/rl_dataset.py lines 195-214,
      ``_build_messages``): the prompt split at ``<image>``, the marker replaced by the image.
    """
    if style == "upstream_server":
        return [{"type": "text", "text": f" {prompt}"}, {"type": "image"}]
    parts = [p for p in re.split(f"({re.escape(IMAGE_MARKER)})", prompt) if p != ""]
    content = [{"type": "image"} if p == IMAGE_MARKER else {"type": "text", "text": p} for p in parts]
    n = sum(c["type"] == "image" for c in content)
    if n != 1:
        raise ValueError(f"prompt_style upstream_training needs exactly one {IMAGE_MARKER} in the prompt, found {n}")
    return content


def render_chat(
    tokenizer: Any,
    template: str,
    prompt: str,
    n_image_tokens: int,
    system_prompt: str | None = None,
    style: PromptStyle = "upstream_server",
) -> str:
    """Chat-formatted text as upstream's processor renders it, with the single ``<|image_pad|>``
    expanded to the image's token count, as the processor would."""
    messages: list[dict[str, Any]] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    messages.append({"role": "user", "content": user_content(prompt, style)})
    text = tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False, add_generation_prompt=True)
    if text.count(IMAGE_PAD) != 1:
        raise ValueError(f"chat template produced {text.count(IMAGE_PAD)} image placeholders, expected 1")
    return text.replace(IMAGE_PAD, IMAGE_PAD * n_image_tokens)


# --------------------------------------------------------------------------- generation settings
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
                raise ValueError(f"{', '.join(bad)} only apply when sampling; preset 'greedy' takes the argmax (use preset 'upstream')")
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
    """Texts from one batched model call, the image size each was answered on, and timings.

    ``row_extras`` (optional, one dict per text) is folded into that row's chunk extras
    (e.g. the sampling seed of the query)."""

    texts: list[str]
    image_hw: list[tuple[int, int]] | None = None
    timing: dict[str, Any] = field(default_factory=dict)
    row_extras: list[dict[str, Any]] | None = None


@dataclass
class _EnvState:
    instruction: str = ""
    seed: int | None = None
    stage: Literal["pick", "place", "done"] = "pick"
    follower: PlanFollower | None = None
    wait: int = 0
    queries: int = 0
    gripper: float = -1.0
    missed_grasps: int = 0
    hang: float = 0.0
    note: dict[str, Any] = field(default_factory=dict)


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
        self._slots: SlotStates[_EnvState] = SlotStates(
            lambda instruction, seed: _EnvState(instruction=instruction, seed=None if seed is None else int(seed))
        )
        self._states: list[_EnvState] = []  # the current call's rows
        self.last_model_images: list[np.ndarray] = []  # what the last query showed the model (doctor saves them)

    # -- hooks
    def generate(
        self, images: list[np.ndarray], prompts: list[str], seeds: list[tuple[int | None, int]] | None = None
    ) -> "Generation":
        """Texts for a batch of (preprocessed image, prompt).

        ``seeds[k]`` = (episode seed or None, index of this query in its episode), for adapters
        that sample; an override may leave the argument out (it is then not passed)."""
        raise NotImplementedError

    def _generate_takes_seeds(self) -> bool:
        try:
            return "seeds" in inspect.signature(self.generate).parameters
        except (TypeError, ValueError):  # pragma: no cover - builtins / C callables
            return False

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
            if st.note:
                extras[i].update(st.note)
                st.note = {}
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
        self.last_model_images = images
        t0 = time.perf_counter()
        if self._text_source is not None:
            gen = Generation(list(self._text_source([obs_batch[i] for i in ask], prompts)))
        elif self._generate_takes_seeds():
            gen = self.generate(images, prompts, seeds=[(self._states[i].seed, self._states[i].queries) for i in ask])
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
                **(gen.row_extras[k] if gen.row_extras else {}),
            }
            if parsed.ok:
                pts = self.settings.image.to_source_coords(parsed.points, src_images[k].shape[:2])
                try:
                    if st.stage == "pick":
                        plan = self.bridge.pick_plan(pts, obs_batch[i])
                        st.hang = self.bridge.object_hang(pts, obs_batch[i])
                        ex["object_hang_m"] = round(st.hang, 4)
                    else:
                        plan = self.bridge.place_plan(pts, obs_batch[i], st.hang)
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
            if st.stage == "pick" and self._missed_grasp(obs) and st.missed_grasps < self.settings.bridge.regrasp_attempts:
                st.missed_grasps += 1
                st.note = {"missed_grasp": 1}
                st.gripper = -1.0
            elif st.stage == "pick" and self.settings.task_mode == "pick_place":
                st.stage = "place"
            else:
                st.stage = "done"
        st.wait -= 1
        hold[6] = st.gripper
        return hold

    def _missed_grasp(self, obs: dict[str, Any]) -> bool:
        """The fingers closed on nothing: a pick that missed is asked again (from above the object,
        a new view) instead of carrying an empty gripper through the place stage.  Proprioception
        only, as a real robot would check; the episode records each miss (``missed_grasp``)."""
        limit = self.settings.bridge.missed_grasp_width
        q = (obs.get("state") or {}).get("gripper_qpos")
        if limit is None or q is None:
            return False
        return float(np.sum(np.abs(np.asarray(q, dtype=np.float64)))) < limit

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "settings": self.settings.model_dump(mode="json")}


# --------------------------------------------------------------------------- VLA-R1
class VlaR1Config(PlannerSettings, HFLoadOptions):
    """Everything a ``policies/vla_r1.yaml`` may set (validated, unknown keys refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chat_template: Literal["checkpoint", "builtin"] = Field(
        default="checkpoint", description="the checkpoint's chat template, falling back to Qwen2.5-VL's own"
    )
    prompt_style: PromptStyle = Field(
        default="upstream_server", description="how the user turn is composed: as upstream's server, or as its RL training data"
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
                    "(e.g. generation: {preset: upstream | greedy, temperature: 0.7, top_p: 0.9, repetition_penalty: 1.1})"
                )
        return data

    @model_validator(mode="after")
    def _one_max_new_tokens(self) -> "VlaR1Config":
        g = self.generation
        if self.max_new_tokens is not None and g.max_new_tokens is not None and g.max_new_tokens != self.max_new_tokens:
            raise ValueError(
                f"max_new_tokens {self.max_new_tokens} and generation.max_new_tokens {g.max_new_tokens} disagree; set one"
            )
        if self.prompt_style == "upstream_training":
            tpl = self.prompt_template or PROMPT_TEMPLATES[self.prompt]
            if tpl.count(IMAGE_MARKER) != 1:
                raise ValueError(f"prompt_style upstream_training needs exactly one {IMAGE_MARKER} in the prompt template")
        return self

    @property
    def generation_in_force(self) -> GenerationSettings:
        """``generation`` with the ``max_new_tokens`` shortcut folded in."""
        if self.max_new_tokens is None:
            return self.generation
        return self.generation.model_copy(update={"max_new_tokens": self.max_new_tokens})


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
        lines = [f"field 'generation.{'.'.join(str(p) for p in e['loc'])}': {e['msg']}" if e["loc"] else f"field 'generation': {e['msg']}"
                 for e in exc.errors()]
        raise ConfigError(f"{source}: " + "; ".join(lines) + " (presets: upstream, greedy)") from None
    if shortcut is not None:
        if gen.max_new_tokens is not None and gen.max_new_tokens != shortcut:
            raise ConfigError(f"{source}: max_new_tokens {shortcut!r} and generation.max_new_tokens {gen.max_new_tokens} disagree; set one")
        try:
            gen = GenerationSettings.model_validate({**gen.model_dump(exclude_none=True), "max_new_tokens": shortcut})
        except ValidationError as exc:
            raise ConfigError(f"{source}: field 'max_new_tokens': {exc.errors()[0]['msg']}") from None
    res = gen.resolved()
    explicit = {k: v for k, v in res.items() if k not in ("do_sample",) and v is not None}
    out["generation"] = explicit
    return out


def _seeded_sampler(temperature: float, top_k: int, top_p: float, generators: list):
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
        self.generation = self._resolve_generation()
        self._greedy_config = self._decoding_config()

    def _resolve_generation(self) -> dict[str, Any]:
        """Every generation value in force, ``top_k`` resolved as upstream's call gets it."""
        res = self.cfg.generation_in_force.resolved()
        if res["do_sample"] and res["top_k"] is None:
            ckpt = getattr(self.model.generation_config, "top_k", None)
            if ckpt is not None:
                res["top_k"], res["top_k_source"] = int(ckpt), "checkpoint generation_config"
            else:
                res["top_k"], res["top_k_source"] = _transformers_default("top_k", 50), "transformers default"
        return res

    def _decoding_config(self):
        """The checkpoint's generation config in greedy mode: sampling happens in our processor,
        so the checkpoint's own sampling values must not warn or apply twice."""
        gc = copy.deepcopy(self.model.generation_config)
        gc.do_sample = False
        for key in ("temperature", "top_p", "top_k", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff"):
            if hasattr(gc, key):
                setattr(gc, key, None)
        return gc

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
        return render_chat(self.tokenizer, self._template, prompt, n_image_tokens, self.cfg.system_prompt, self.cfg.prompt_style)

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
            gen_kwargs["logits_processor"] = [_seeded_sampler(g["temperature"], g["top_k"], g["top_p"], gens)]
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


def _transformers_default(key: str, fallback: Any) -> Any:
    """transformers' global default for an unset generation value (50 for ``top_k``)."""
    try:
        from transformers import GenerationConfig

        return GenerationConfig._get_default_generation_params().get(key, fallback)
    except Exception:  # pragma: no cover - a transformers without the helper
        return fallback


VlaR1Policy.__signature__ = model_signature(VlaR1Config)  # type: ignore[attr-defined]
VlaR1Policy.resolve_args = staticmethod(resolve_generation_args)  # type: ignore[attr-defined]
