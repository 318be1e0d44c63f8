"""VLA-R1 oracle: the real :class:`~vla_eval.policies.vla_r1.VlaR1Policy`, with only the network's
``generate`` replaced by the text a perfect VLA-R1 would write.

Per query the oracle takes the expert's key points (:mod:`vla_eval.conformance.keypoints`:
the end-effector and the grasp point for the pick query, the release point for the place
query), projects them with the camera parameters *of the observation the adapter received*
(after the harness's orientation conversion) into the source image, maps them through the
adapter's own preprocessing (:meth:`ImagePreprocess.from_source_coords`) into the image
the model is shown, and writes them as VLA-R1 text::

    <think>...</think><output>[[x1, y1], [x2, y2]]</output>           (trajectory)
    <think>...</think><output>{"x": .., "y": .., "width": .., "height": ..}</output>  (affordance)

That text is encoded with the checkpoint's real tokenizer and handed back as the generated
ids, so everything else -- image processor, chat template, ``<|image_pad|>`` expansion, the
end-of-turn cut, detokenisation, the parser, the depth lift and the planner bridge -- is the
adapter's own code.  Before answering, the substituted ``generate`` checks what it was given
(one image per row, ``<|image_pad|>`` count = ``grid_thw.prod() / merge_size**2``): a
mismatch is a *preprocess* failure, recorded in the extras as ``oracle_stage``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from vla_eval.conformance.keypoints import pick_place
from vla_eval.policies.planner_bridge import CameraModel
from vla_eval.policies.vla_r1 import IMAGE_PAD, VlaR1Policy

TRAINED_VIEW = "upright"
"""The view VLA-R1 must be shown: its fine-tuning images are ordinary (upright) camera images, as
policies/vla_r1.yaml states (issue 10, defect 2); the dataset is GigaAI-Research/vla_r1 (VLA-R1 README)."""


class OracleRefusal(Exception):
    """The oracle cannot phrase an answer for this row (task not pick/place, key point off-image)."""


class ViewError(Exception):
    """The image the model is shown is not in the orientation its checkpoint expects."""


def format_trajectory(points: np.ndarray) -> str:
    body = ", ".join(f"[{x:.4f}, {y:.4f}]" for x, y in np.asarray(points).reshape(-1, 2))
    return f"<think>The gripper moves from its position to the target.</think><output>[{body}]</output>"


def format_affordance(centre: np.ndarray, size: tuple[float, float] = (0.04, 0.04)) -> str:
    x, y = (float(v) for v in np.asarray(centre).reshape(2))
    box = {"x": round(x, 4), "y": round(y, 4), "width": size[0], "height": size[1]}
    return f"<think>The affordance region is on the target.</think><output>{json.dumps(box)}</output>"


class VlaR1Oracle(VlaR1Policy):
    """The VLA-R1 adapter whose model answers with the expert's key points (see the module docstring)."""

    name = "vla_r1_oracle"
    needs_privileged = True

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._pending: list[tuple[dict[str, Any], str]] = []
        self._notes: list[dict[str, Any]] = []
        self._real_generate = self.model.generate
        self.model.generate = self._oracle_generate  # type: ignore[method-assign]

    # The base class picks which rows query the model; remember their observations and stages.
    def _query(self, ask, obs_batch, extras):
        self._pending = [(obs_batch[i], self._states[i].stage) for i in ask]
        self._notes = [{} for _ in ask]
        super()._query(ask, obs_batch, extras)
        for k, i in enumerate(ask):
            extras[i].update(self._notes[k])

    def _text_for(self, obs: dict[str, Any], stage: str, model_hw: tuple[int, int]) -> str:
        kp = pick_place(obs)
        if kp is None:
            raise OracleRefusal("task is not a pick-and-place: no key points")
        cam_name = self.settings.bridge.camera
        img = np.asarray(obs["images"][cam_name])
        cam = CameraModel.from_params(
            obs["camera_params"][cam_name], img.shape[:2], self.settings.bridge.camera_convention
        )
        eef = np.asarray(obs["state"]["eef_pos"], dtype=np.float64)
        world = np.stack([eef, kp.grasp]) if stage == "pick" else np.stack([eef, kp.place])
        uv, z = cam.project(world)
        if not np.all(z[1:] > 0):
            raise OracleRefusal(f"{stage} key point is behind the camera")
        self._check_view(cam, kp.grasp if stage == "pick" else kp.place)
        src_norm = cam.pixels_to_normalized(uv)
        shown = self.settings.image.from_source_coords(src_norm, img.shape[:2])  # normalised on the model's image
        if np.any(shown[-1] < 0) or np.any(shown[-1] > 1):
            raise OracleRefusal(
                f"{stage} key point {shown[-1].round(3).tolist()} is outside the image the model is shown"
            )
        shown = np.clip(shown, 0.0, 1.0)
        if self.settings.coords == "pixels":
            shown = shown * np.array([model_hw[1], model_hw[0]], dtype=np.float64)
        if self.settings.prompt == "affordance":
            return format_affordance(shown[-1])
        return format_trajectory(shown)

    def _check_view(self, cam: CameraModel, point: np.ndarray) -> None:
        """The image the model is shown must be the view VLA-R1 was trained on: upright.

        VLA-R1 was fine-tuned on upright camera images (:data:`TRAINED_VIEW`), a fact about the
        checkpoint, not something the adapter's config can change.  With the camera parameters the
        harness converted together with the image, world "up" at the key point must run up the image
        (row index decreasing) and the camera's right axis to the right (column index increasing),
        after the adapter's optional extra ``flip_180``; otherwise the env's
        declared origin, the harness conversion or the adapter's declared ``image_orientation`` is
        wrong -- a *preprocess* failure, whatever the bridge then makes of it.
        """
        right = cam.extrinsics[:3, 0]  # the camera's +x axis in the world (right in the true view, both conventions)
        uv, _ = cam.project(np.stack([point, point + np.array([0.0, 0.0, 0.1]), point + 0.1 * right]))
        dv, du = float(uv[1, 1] - uv[0, 1]), float(uv[2, 0] - uv[0, 0])
        flip = bool(self.settings.image.flip_180)
        rows_ok, cols_ok = (dv < 0) != flip, (du > 0) != flip
        if not (rows_ok and cols_ok):
            what = " and ".join(w for w, ok in (("upside down", rows_ok), ("mirrored left-right", cols_ok)) if not ok)
            raise ViewError(
                f"the image the model is shown is {what} (adapter declares image_orientation="
                f"{self.image_orientation!r}, flip_180={flip}); VLA-R1 was trained on {TRAINED_VIEW} images"
            )

    def _oracle_generate(self, input_ids=None, attention_mask=None, pixel_values=None, image_grid_thw=None, **kwargs):
        torch = self._torch
        ids = input_ids.cpu()
        grids = image_grid_thw.cpu()
        if len(grids) != ids.shape[0] or len(self._pending) != ids.shape[0]:
            raise RuntimeError(
                f"oracle generate: {ids.shape[0]} rows, {len(grids)} images, {len(self._pending)} queries"
            )
        pad_id = self.tokenizer.convert_tokens_to_ids(IMAGE_PAD)
        patch = int(getattr(self.image_processor, "patch_size", 14))
        answers = []
        for k, (obs, stage) in enumerate(self._pending):
            n_pad = int((ids[k] == pad_id).sum())
            expected = int(grids[k].prod()) // self.merge_size**2
            model_hw = (int(grids[k][1]) * patch, int(grids[k][2]) * patch)
            if n_pad != expected:
                self._notes[k] = {
                    "oracle_stage": "preprocess",
                    "oracle_error": f"{n_pad} image tokens in the prompt, the image has {expected}",
                }
                answers.append("")
                continue
            try:
                text = self._text_for(obs, stage, model_hw)
            except OracleRefusal as exc:
                self._notes[k] = {"oracle_stage": "oracle", "oracle_error": str(exc)}
                text = ""
            except ViewError as exc:
                self._notes[k] = {"oracle_stage": "preprocess", "oracle_error": str(exc)}
                text = ""
            self._notes[k].setdefault("oracle_text", text)
            answers.append(text)
        eos = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        new = [self.tokenizer(t, add_special_tokens=False)["input_ids"] + [eos] for t in answers]
        width = max(len(r) for r in new)
        new = [r + [self.tokenizer.pad_token_id] * (width - len(r)) for r in new]
        return torch.cat([ids, torch.tensor(new, dtype=ids.dtype)], dim=1)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["oracle"] = "expert key points -> VLA-R1 text through the real tokenizer (vla_eval.conformance.vla_r1_oracle)"
        return d
