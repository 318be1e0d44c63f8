"""OpenVLA oracle: the real :class:`~vla_eval.policies.openvla.OpenVlaPolicy` whose network emits the
expert's action as the 7 action tokens OpenVLA would.

Per step the privileged expert's action (LIBERO's native space) is re-expressed in the
space the checkpoint emits (:data:`MODEL_SPACE`: OpenVLA's gripper ``open_01``, axis-angle,
normalised units -- fixed by the training data, not read from the adapter's config), normalised
with the checkpoint's dataset statistics (``2 (a - q01) / (q99 - q01) - 1`` where ``mask``;
the gripper is not normalised), clipped
to [-1, 1] and binned to token ids exactly as OpenVLA's ``ActionTokenizer`` does
(``vocab_size - digitize(a, linspace(-1, 1, 256))``).  Those ids are returned by the
substituted ``generate``; the adapter's own code then cuts the new tokens, de-tokenises,
unnormalises, binarises the gripper, and the harness converts the chunk to the env's space.

The oracle also checks the result: the adapter's decoded action, converted by the harness's
:func:`~vla_eval.actions.convert.to_env_actions`, must equal the expert's action (clipped to the
statistics' range) within one bin.  A larger difference is counted as
``oracle_action_mismatch`` -- a *convert* failure.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vla_eval.actions import ConversionOptions, to_env_actions
from vla_eval.actions.space import LIBERO_DELTA_EEF, ActionChunk, ActionSpace
from vla_eval.conformance.experts import BackendExpert
from vla_eval.policies.openvla import N_BINS, OpenVlaPolicy, normalized_to_tokens

MODEL_SPACE = ActionSpace(
    kind="delta_eef", dim=7, rotation="axis_angle", position_units="normalized", gripper="open_01"
)
"""What an OpenVLA LIBERO checkpoint emits, fixed by its training data, not by the adapter's config: LIBERO's
normalised delta EEF with the RLDS gripper convention 0 = close, 1 = open (openvla
experiments/robot/robot_utils.py: normalize_gripper_action maps [0, 1] to [-1, 1], invert_gripper_action
flips it to LIBERO's -1 open / +1 close).  A config that declares another convention decodes wrongly,
and the oracle sees it."""


def normalize(actions: np.ndarray, q01: np.ndarray, q99: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """OpenVLA's dataset normalisation (the inverse of the adapter's ``unnormalize``), clipped to [-1, 1]."""
    span = np.where(q99 - q01 == 0, 1.0, q99 - q01)
    n = np.where(mask, 2.0 * (actions - q01) / span - 1.0, actions)
    return np.clip(n, -1.0, 1.0)


class OpenVlaOracle(OpenVlaPolicy):
    """The OpenVLA adapter whose model answers with the expert's action tokens (module docstring)."""

    name = "openvla_oracle"
    needs_privileged = True

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.expert = BackendExpert()
        self._tokens: np.ndarray | None = None
        self.model.generate = self._oracle_generate  # type: ignore[method-assign]

    def reset(self, instructions, seeds=None, slots=None) -> None:
        super().reset(instructions, seeds, slots=slots)
        self.expert.reset(instructions, seeds, slots=slots)

    def release(self, slots) -> None:
        super().release(slots)
        self.expert.release(slots)

    def _stats(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        q01, q99 = np.asarray(self.stats.q01, dtype=np.float64), np.asarray(self.stats.q99, dtype=np.float64)
        mask = np.asarray(self.stats.mask if self.stats.mask is not None else [True] * len(q01), dtype=bool)
        return q01, q99, mask

    def predict(self, obs_batch: list[dict[str, Any]], slots=None) -> ActionChunk:
        expert = self.expert.actions(obs_batch, slots)  # (B, 7) LIBERO native
        native = to_env_actions(expert, LIBERO_DELTA_EEF, MODEL_SPACE, ConversionOptions(clip=False))
        q01, q99, mask = self._stats()
        self._tokens = normalized_to_tokens(normalize(native, q01, q99, mask), self.vocab_size)
        chunk = super().predict(obs_batch, slots)
        # what the harness will execute vs what the expert meant (within the statistics' range)
        executed = to_env_actions(chunk.actions[:, 0], chunk.space, LIBERO_DELTA_EEF)
        meant = to_env_actions(
            np.clip(native, np.where(mask, q01, -np.inf), np.where(mask, q99, np.inf)), MODEL_SPACE, LIBERO_DELTA_EEF
        )
        if self.cfg.binarize_gripper:
            meant[:, -1] = np.where(meant[:, -1] > 0, 1.0, -1.0)
        bin_native = np.where(mask, (q99 - q01) / (N_BINS - 1), 2.0 / (N_BINS - 1))
        bin_env = np.abs(
            to_env_actions(bin_native[None], MODEL_SPACE, LIBERO_DELTA_EEF, ConversionOptions(clip=False))
            - to_env_actions(np.zeros((1, len(q01))), MODEL_SPACE, LIBERO_DELTA_EEF, ConversionOptions(clip=False))
        )[0]
        tol = 1.5 * bin_env[:6] + 1e-6
        for b, ex in enumerate(chunk.extras):
            err = np.abs(executed[b] - meant[b])
            bad = bool(np.any(err[:6] > tol) or err[6] > 1e-6)
            ex["oracle_action_mismatch"] = int(bad)
            if bad:
                ex["oracle_stage"] = "convert"
                ex["oracle_error"] = f"executed {executed[b].round(3).tolist()} vs expert {meant[b].round(3).tolist()}"
        return chunk

    def _oracle_generate(self, input_ids=None, attention_mask=None, pixel_values=None, max_new_tokens=None, **kwargs):
        torch = self._torch
        ids = input_ids.cpu()
        if self._tokens is None or len(self._tokens) != ids.shape[0]:
            raise RuntimeError("oracle generate called without the expert's tokens for this batch")
        if pixel_values is None or pixel_values.shape[0] != ids.shape[0]:
            raise RuntimeError("oracle generate: one preprocessed image per row expected (preprocess)")
        if self.image_token_id is not None:
            n = (ids == self.image_token_id).sum(dim=1)
            expected = self._n_image_tokens(pixel_values)
            if bool((n != expected).any()):
                raise RuntimeError(
                    f"oracle generate: {n.tolist()} image tokens per row, the image has {expected} (preprocess)"
                )
        new = torch.as_tensor(self._tokens[:, : int(max_new_tokens or self._tokens.shape[1])], dtype=ids.dtype)
        self._tokens = None
        return torch.cat([ids, new], dim=1)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["oracle"] = (
            "expert actions -> q01/q99 normalisation -> action token ids (vla_eval.conformance.openvla_oracle)"
        )
        return d
