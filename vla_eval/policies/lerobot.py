"""``--policy lerobot --policy-arg path=DIR|hub-id``: any LeRobot policy folder, loaded and run by LeRobot's own code.

LeRobot pins a torch and a huggingface-hub this project's ``models`` extra does not admit, so the adapter declares
``environment = "lerobot"``: when this interpreter cannot import lerobot, the run serves the adapter from the managed
environment's interpreter (``vla-eval env create lerobot``; vla_eval/environments.py, docs/architecture.md §9).

Loading (paths under site-packages/lerobot of LeRobot 0.4.4): ``PreTrainedConfig.from_pretrained`` reads
``config.json`` (its ``type`` picks the class through ``policies/factory.py`` ``get_policy_class``, line 61), the
class's ``from_pretrained`` (``policies/pretrained.py`` line 76) loads ``model.safetensors``, and
``make_pre_post_processors(cfg, pretrained_path=..., preprocessor_overrides={"device_processor": ...})``
(``policies/factory.py`` line 214) loads the saved normalisation pipelines, exactly as ``scripts/lerobot_eval.py``
does (lines 537-546).

Acting: LeRobot's eval calls ``policy.select_action`` once per env step (``lerobot_eval.py`` line 177): the policy
keeps its own action queue (``n_action_steps`` of each predicted chunk, ACT ``policies/act/modeling_act.py``
lines 100-123) and, for Diffusion, the last ``n_obs_steps`` observations (``modeling_diffusion.py`` line 132),
which it must see *every* step.  So this adapter answers one action per call and keeps that state per episode:
each slot gets its own shallow view of the loaded policy (same weights, own queues, reset on the slot's reset) and
its own torch random state, seeded from the episode seed, so a sampled policy (Diffusion's noise) gives the same
actions whichever episodes share a server.

Actions: a LIBERO-trained LeRobot policy outputs LIBERO's native control (``envs/libero.py`` steps the env with
the postprocessed action unchanged): 7-D delta end-effector (position, axis-angle) + gripper in [-1, 1], -1 open,
+1 close, the harness's ``LIBERO_DELTA_EEF``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Hashable, Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vla_eval.actions.space import LIBERO_DELTA_EEF, ActionChunk
from vla_eval.adapter import Policy, SlotStates
from vla_eval.errors import ConfigError
from vla_eval.policies._hf import model_signature, validate_config
from vla_eval.policies.lerobot_features import FeatureMapping, build_inputs, check_features


class LeRobotConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(min_length=1, description="LeRobot policy folder (config.json + model.safetensors) or hub id")
    device: str = Field(default="auto", description="auto (cuda when available) | cpu | cuda[:N]")
    cameras: dict[str, str] = Field(default_factory=lambda: FeatureMapping().cameras)
    state: tuple[str, ...] = Field(default_factory=lambda: FeatureMapping().state)
    resize: Literal["features", "none"] = "features"
    image_orientation: Literal["upright", "libero_rot180"] = Field(
        default="libero_rot180",
        description="view the checkpoint was trained on; LeRobot's LIBERO pipeline rotates LIBERO's render 180°",
    )

    def mapping(self) -> FeatureMapping:
        return FeatureMapping(cameras=self.cameras, state=self.state, resize=self.resize)


@dataclass
class _Episode:
    view: Any  # the policy's shallow per-episode copy (shared weights, own queues)
    rng: Any  # torch CPU generator state
    cuda_rng: Any = None


def _episode_view(policy: Any) -> Any:
    """A copy of ``policy`` that shares its modules and parameters but owns its per-episode state.

    ``copy.copy`` of an ``nn.Module`` shares ``_parameters`` / ``_modules`` (the weights); every other attribute
    (``_action_queue``, ``_queues``, ACT's temporal ensembler, ...) is deep-copied, then ``reset()`` starts the
    episode, so one slot's queue never feeds another's."""
    import torch

    internals = set(vars(torch.nn.Module()))
    view = copy.copy(policy)
    for key, value in vars(policy).items():
        if key in internals or key == "config" or isinstance(value, (torch.nn.Module, torch.Tensor)):
            continue
        view.__dict__[key] = copy.deepcopy(value)
    view.reset()
    return view


class LeRobotPolicy(Policy):
    """Any LeRobot ``PreTrainedPolicy`` with its saved pre/post-processors; one action per step, state per slot."""

    name = "lerobot"
    environment = "lerobot"
    """The managed environment whose interpreter serves this adapter when this one cannot import lerobot."""
    slot_aware = True
    needs_images = True
    action_space = LIBERO_DELTA_EEF
    image_orientation = "libero_rot180"

    def __init__(self, **kwargs: Any):
        cfg: LeRobotConfig = validate_config(LeRobotConfig, kwargs, "lerobot")  # type: ignore[assignment]
        self.cfg = cfg
        self.image_orientation = cfg.image_orientation
        self._load()
        self._episodes: SlotStates[_Episode] = SlotStates(self._new_episode)

    @classmethod
    def checkpoint_location(cls, args: dict[str, Any]) -> str | None:
        value = args.get("path")
        return str(value) if value not in (None, "") else None

    # ------------------------------------------------------------------ loading
    def _load(self) -> None:
        try:
            import torch
            from lerobot.configs.policies import PreTrainedConfig
            from lerobot.policies.factory import get_policy_class, make_pre_post_processors
        except ImportError as exc:
            raise ConfigError(
                f"policy lerobot: cannot import LeRobot here ({exc}); build its environment with "
                "`vla-eval env create lerobot` and the run serves the policy from it"
            ) from None
        path = self.cfg.path
        device = self.cfg.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            config = PreTrainedConfig.from_pretrained(path)
        except Exception as exc:
            raise ConfigError(
                f"policy lerobot: path={path}: not a LeRobot policy ({type(exc).__name__}: {exc})"
            ) from None
        config.device = device
        self.config = config
        features = dict(config.input_features)
        self.input_features = features
        self.cameras = check_features(self.cfg.mapping(), features, f"policy lerobot (path={path})")
        self.cameras_needed = tuple(dict.fromkeys(self.cameras.values()))
        action = config.output_features.get("action")
        dim = tuple(action.shape) if action is not None else ()
        if dim != (LIBERO_DELTA_EEF.dim,):
            raise ConfigError(
                f"policy lerobot (path={path}): output feature 'action' has shape {list(dim)}; the harness drives "
                f"LeRobot policies in LIBERO's {LIBERO_DELTA_EEF.dim}-D delta end-effector space"
            )
        self.policy = get_policy_class(config.type).from_pretrained(path, config=config)
        self.policy.to(device).eval()
        try:
            self.preprocessor, self.postprocessor = make_pre_post_processors(
                config, pretrained_path=path, preprocessor_overrides={"device_processor": {"device": device}}
            )
        except FileNotFoundError as exc:
            raise ConfigError(
                f"policy lerobot: path={path}: no saved processor pipelines ({exc}); checkpoints saved before "
                "LeRobot 0.4 carry their statistics in the model: convert them with "
                "lerobot/processor/migrate_policy_normalization.py"
            ) from None
        self.device = device
        self._torch = torch

    # ------------------------------------------------------------------ episodes
    def _new_episode(self, instruction: str, seed: int | None) -> _Episode:
        torch = self._torch
        gen = torch.Generator().manual_seed(int(seed) if seed is not None else 0)
        cuda = None
        if self.device.startswith("cuda"):
            cuda = torch.cuda.get_rng_state()
        return _Episode(view=_episode_view(self.policy), rng=gen.get_state(), cuda_rng=cuda)

    def reset(
        self, instructions: list[str], seeds: list[int] | None = None, slots: Sequence[Hashable] | None = None
    ) -> None:
        self._episodes.reset(instructions, seeds, slots)

    def release(self, slots: Sequence[Hashable]) -> None:
        self._episodes.release(slots)

    def predict(self, obs_batch: list[dict[str, Any]], slots: Sequence[Hashable] | None = None) -> ActionChunk:
        episodes = self._episodes.rows(obs_batch, slots)
        actions = np.stack([self._act(obs, ep) for obs, ep in zip(obs_batch, episodes)])
        return ActionChunk(actions=actions[:, None, :], space=self.action_space)

    def _act(self, obs: dict[str, Any], ep: _Episode) -> np.ndarray:
        """One ``select_action`` as ``lerobot_eval.py`` rollout makes it (lines 164-178), in this episode's state."""
        torch = self._torch
        inputs = build_inputs(obs, self.cfg.mapping(), self.cameras, self.input_features)
        batch: dict[str, Any] = {
            k: torch.from_numpy(v).unsqueeze(0) for k, v in inputs.items() if isinstance(v, np.ndarray)
        }
        batch["task"] = [inputs["task"]]
        saved = torch.get_rng_state()
        torch.set_rng_state(ep.rng)
        if ep.cuda_rng is not None:
            saved_cuda = torch.cuda.get_rng_state()
            torch.cuda.set_rng_state(ep.cuda_rng)
        try:
            batch = self.preprocessor(batch)
            with torch.inference_mode():
                action = ep.view.select_action(batch)
            action = self.postprocessor(action)
        finally:
            ep.rng = torch.get_rng_state()
            torch.set_rng_state(saved)
            if ep.cuda_rng is not None:
                ep.cuda_rng = torch.cuda.get_rng_state()
                torch.cuda.set_rng_state(saved_cuda)
        return np.asarray(action.detach().to("cpu").float().numpy(), dtype=np.float64).reshape(-1)

    def describe(self) -> dict[str, Any]:
        import lerobot

        return {
            "name": self.name,
            "path": self.cfg.path,
            "policy_type": self.config.type,
            "n_action_steps": getattr(self.config, "n_action_steps", None),
            "chunk_size": getattr(self.config, "chunk_size", getattr(self.config, "horizon", None)),
            "n_obs_steps": getattr(self.config, "n_obs_steps", None),
            "input_features": {k: list(v.shape) for k, v in self.input_features.items()},
            "cameras": self.cameras,
            "state": list(self.cfg.state),
            "resize": self.cfg.resize,
            "image_orientation": self.image_orientation,
            "device": self.device,
            "lerobot": lerobot.__version__,
        }

    def close(self) -> None:
        self._episodes = SlotStates(self._new_episode)


LeRobotPolicy.__signature__ = model_signature(LeRobotConfig)  # type: ignore[attr-defined]
