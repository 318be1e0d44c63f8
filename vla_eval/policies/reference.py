"""The reference policy: a small CNN trained by behaviour cloning on the scripted expert's demos.

It is the one learned, image-based policy that runs here without downloads, so tables show
numbers between 0 and 100, out-of-domain splits move, the CI gate has a real checkpoint to
guard, and a change in how the simulator draws shows up as a change in success (the canary,
:mod:`vla_eval.canary`). Two checkpoints ship with the package (``early`` and ``final``);
``training/train_reference.py`` rebuilds them (``docs/reference_policy.md``).

Loading reads safetensors weights and a JSON side file, never pickle. Inference is
deterministic: no sampling, fixed thread count, the same preprocessing code as training.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from vla_eval.actions.space import LIBERO_DELTA_EEF, ActionChunk
from vla_eval.adapter import Policy
from vla_eval.errors import ConfigError

CHECKPOINT_DIR = Path(__file__).resolve().parent / "reference_ckpt"
NAMED_CHECKPOINTS = ("early", "final")


def resolve_checkpoint(checkpoint: str | Path) -> tuple[Path, Path]:
    """``early`` / ``final`` (shipped) or a path to a ``.safetensors`` file with its ``.json`` beside it.

    Both must be regular files: ``is_file`` is also true of ``/proc`` entries, whose reads fail or never end.
    """
    if not isinstance(checkpoint, (str, Path)):
        raise ConfigError(f"reference policy: checkpoint {checkpoint!r}: expected 'early', 'final' or a path")
    text = str(checkpoint)
    weights = CHECKPOINT_DIR / f"{text}.safetensors" if text in NAMED_CHECKPOINTS else Path(text).expanduser()
    if weights.is_dir():
        weights = weights / "final.safetensors"
    if weights.suffix != ".safetensors":
        raise ConfigError(
            f"reference policy: checkpoint {text!r}: expected 'early', 'final' or a path to a .safetensors file"
        )
    meta = weights.with_suffix(".json")
    for path in (weights, meta):
        if not path.is_file():
            raise ConfigError(f"reference policy: checkpoint {text!r}: file {path} does not exist")
        if str(path.resolve()).startswith(("/proc/", "/sys/", "/dev/")):
            raise ConfigError(f"reference policy: checkpoint {text!r}: {path} is not a weights file")
    return weights, meta


class ReferencePolicy(Policy):
    name = "reference"
    action_space = LIBERO_DELTA_EEF
    needs_images = True
    deterministic = True

    @classmethod
    def checkpoint_location(cls, args: dict[str, Any]) -> str | None:
        """The weights file itself: a wrong form (``/tmp``, ``/proc/self/mem``) is refused here, before the
        run fingerprints it, instead of hashing whatever folder or special file was named."""
        return str(resolve_checkpoint(args.get("checkpoint") or "final")[0])

    @classmethod
    def resolve_args(cls, args: dict[str, Any], source: str) -> dict[str, Any]:
        """Checks the checkpoint's form when the policy is resolved, before any run folder exists."""
        try:
            resolve_checkpoint(args.get("checkpoint") or "final")
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        return args

    def __init__(self, checkpoint: str = "final", execute_steps: int | None = None, threads: int = 1):
        import torch
        from safetensors.torch import load_file

        from vla_eval.policies.reference_model import NetConfig, Normalizer, ReferenceNet

        self.weights_path, meta_path = resolve_checkpoint(checkpoint)
        try:
            self.meta = json.loads(meta_path.read_text())
            self.cfg = NetConfig.from_dict(self.meta["net"])
            self.norm = Normalizer(**self.meta["normalizer"])
            self.cameras_needed = tuple(self.cfg.cameras)
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"reference policy: {meta_path}: malformed checkpoint metadata ({type(exc).__name__}: {exc})"
            ) from exc
        self.checkpoint = str(checkpoint)
        self.execute_steps = int(execute_steps) if execute_steps else self.cfg.chunk
        if not 1 <= self.execute_steps <= self.cfg.chunk:
            raise ConfigError(
                f"reference policy: execute_steps={execute_steps}: expected 1..{self.cfg.chunk} (the chunk length)"
            )
        torch.set_num_threads(int(threads))
        self.net = ReferenceNet(self.cfg)
        try:
            self.net.load_state_dict(load_file(str(self.weights_path)))
        except RuntimeError as exc:
            raise ConfigError(
                f"reference policy: {self.weights_path} does not match the network in {meta_path}: {exc}"
            ) from exc
        self.net.eval()
        self.weights_sha = hashlib.sha256(self.weights_path.read_bytes()).hexdigest()[:16]
        self._instructions: list[str] = []

    def reset(self, instructions: list[str], seeds: list[int] | None = None) -> None:
        self._instructions = list(instructions)

    def inputs(self, obs_batch: list[dict[str, Any]]):
        """The network's three inputs for a batch of env observations (also used by the tests)."""
        from vla_eval.policies.reference_model import downsample, image_tensor, instruction_vector, proprio_vector

        images = []
        for cam in self.cfg.cameras:
            try:
                frames = np.stack([np.asarray(o["images"][cam]) for o in obs_batch])
            except KeyError as exc:
                raise ValueError(
                    f"reference policy needs camera {cam!r} in obs['images'] (cameras {list(self.cfg.cameras)})"
                ) from exc
            images.append(downsample(frames, self.cfg.image_size))
        state = {
            k: np.stack([np.asarray(o["state"][k], dtype=np.float32) for o in obs_batch])
            for k in ("eef_pos", "eef_quat", "gripper_qpos")
        }
        proprio = self.norm.proprio(proprio_vector(state["eef_pos"], state["eef_quat"], state["gripper_qpos"]))
        texts = [str(o.get("instruction", "")) for o in obs_batch]
        return image_tensor(np.stack(images, axis=1)), proprio, instruction_vector(texts, self.cfg.vocab)

    def predict(self, obs_batch: list[dict[str, Any]]) -> ActionChunk:
        import torch

        images, proprio, task = self.inputs(obs_batch)
        with torch.inference_mode():
            out = self.net(images, torch.from_numpy(proprio), torch.from_numpy(task)).numpy()
        actions = np.clip(self.norm.unaction(out[:, : self.execute_steps]), -1.0, 1.0)
        return ActionChunk(actions=actions.astype(np.float64), space=LIBERO_DELTA_EEF)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "checkpoint": self.checkpoint,
            "weights": str(self.weights_path),
            "weights_sha256_16": self.weights_sha,
            "step": self.meta.get("step"),
            "execute_steps": self.execute_steps,
            "training_seed": self.meta.get("training", {}).get("seed"),
        }
