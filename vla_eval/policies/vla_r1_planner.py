"""The model-independent image-space planner: query a 2D-output model, parse, lift, follow, query again.

Any adapter whose model answers with image points (VLA-R1 today) subclasses
:class:`ImagePlannerPolicy` and implements only :meth:`ImagePlannerPolicy.generate`; tests and the
bridge proof drive the same state machine with exact text and no model.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from vla_eval.actions.space import LIBERO_DELTA_EEF, ActionChunk
from vla_eval.adapter import Policy, SlotStates
from vla_eval.policies.image_preprocess import ImagePreprocess
from vla_eval.policies.planner_bridge import BridgeConfig, BridgeError, PlanFollower, PlannerBridge
from vla_eval.policies.vla_r1_parser import parse_output
from vla_eval.policies.vla_r1_prompts import build_prompt


class PlannerSettings(BaseModel):
    """Settings shared by every image-space planner (model-independent part)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: Literal["trajectory", "affordance"] = "trajectory"
    prompt_template: str | None = Field(default=None, description="override; must contain {instruction}")
    coords: Literal["normalized", "pixels"] = "normalized"
    image_orientation: Literal["upright", "libero_rot180"] = Field(
        default="upright",
        description="view the checkpoint was trained on; the harness converts every env's images to it",
    )
    image: ImagePreprocess = ImagePreprocess()
    bridge: BridgeConfig = BridgeConfig()
    task_mode: Literal["pick", "pick_place"] = "pick"
    place_instruction: str = Field(default="{instruction}", description="instruction of the place query (pick_place)")
    retry_after_steps: int = Field(
        default=5, ge=1, description="hold this many steps after a failed query, then ask again"
    )
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
    lazy_images = True
    """Pictures are read only when a plan is made (:meth:`_query`); between plans the follower steers from
    ``eef_pos``, and whether the next call plans depends on that call's observation."""

    def __init__(
        self, settings: PlannerSettings, text_source: Callable[[list[dict], list[str]], list[str]] | None = None
    ):
        self.settings = settings
        self.image_orientation = settings.image_orientation
        self.cameras_needed = (settings.bridge.camera,)
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
            if (
                st.stage == "pick"
                and self._missed_grasp(obs)
                and st.missed_grasps < self.settings.bridge.regrasp_attempts
            ):
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
