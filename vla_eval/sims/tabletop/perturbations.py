"""Out-of-domain perturbations of a tabletop task, each a dict ``{type: ..., <params>}``.

They act at three moments: on the scene spec before the model is built
(``object_layout``, ``distractors``), on the compiled model once (``lighting``,
``camera_pose``, ``table_color``), and per episode (``image_noise`` on observations,
``language`` on the instruction), always from the reset seed so splits stay paired with
in-domain episodes of the same seed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

import mujoco
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from vla_eval.sims.tabletop.scene import ObjectSpec, SceneSpec

Range = tuple[float, float]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Lighting(_Strict):
    """Scale every light's diffuse and ambient colour (and the headlight) by ``scale``."""

    type: Literal["lighting"]
    scale: float = Field(gt=0, le=5)


class LayoutOverride(_Strict):
    """New offset ranges for one object (replacing the scene's), then ``shift`` added to its nominal xy."""

    x: Range | None = None
    y: Range | None = None
    yaw: Range | None = None
    shift: tuple[float, float] = (0.0, 0.0)


class ObjectLayout(_Strict):
    """Place objects (or fixtures, by name) where training never did: per-item range overrides and/or shifts."""

    type: Literal["object_layout"]
    objects: dict[str, LayoutOverride] = Field(min_length=1)


class CameraPose(_Strict):
    """Translate a camera by ``pos_delta`` metres (world frame, orientation kept) and widen/narrow its fovy."""

    type: Literal["camera_pose"]
    camera: Literal["agentview"] = "agentview"
    pos_delta: tuple[float, float, float] = (0.0, 0.0, 0.0)
    fovy_delta: float = Field(0.0, ge=-30, le=30)


class TableColor(_Strict):
    type: Literal["table_color"]
    rgba: tuple[float, float, float, float]

    @model_validator(mode="after")
    def _unit(self) -> "TableColor":
        if not all(0.0 <= c <= 1.0 for c in self.rgba):
            raise ValueError(f"rgba components must lie in [0, 1], got {list(self.rgba)}")
        return self


class Distractors(_Strict):
    """Add ``count`` small free objects (shape/colour drawn once from ``seed``) at random free spots each episode."""

    type: Literal["distractors"]
    count: int = Field(2, ge=1, le=8)
    seed: int = 0


class ImageNoise(_Strict):
    """Additive gaussian pixel noise, std in 0-255 pixel units, seeded per reset."""

    type: Literal["image_noise"]
    std: float = Field(gt=0, le=128)


class Language(_Strict):
    """Replace the instruction by one of the scene's paraphrases: ``index`` if given, else drawn from the reset seed."""

    type: Literal["language"]
    index: int | None = Field(None, ge=0)


TabletopPerturbation = Annotated[
    Union[Lighting, ObjectLayout, CameraPose, TableColor, Distractors, ImageNoise, Language],
    Field(discriminator="type"),
]
_LIST = TypeAdapter(list[TabletopPerturbation])

DISTRACTOR_AREA = {"pos": (0.5, 0.0), "x": (-0.2, 0.15), "y": (-0.3, 0.3)}


def validate_perturbations(items: list[Any] | None) -> list[BaseModel]:
    """Validate a list of perturbation dicts; ``ValueError`` names the offending entry and field."""
    items = [i.model_dump() if isinstance(i, BaseModel) else i for i in (items or [])]
    try:
        return _LIST.validate_python(items)
    except ValidationError as exc:
        msgs = []
        for err in exc.errors():
            loc = list(err["loc"])
            if len(loc) >= 2 and isinstance(loc[1], str) and loc[1] in _TAGS:
                loc.pop(1)
            msgs.append(f"field '{'.'.join(str(p) for p in loc)}': {err['msg']}")
        raise ValueError("invalid perturbation: " + "; ".join(msgs)) from None


_TAGS = {"lighting", "object_layout", "camera_pose", "table_color", "distractors", "image_noise", "language"}


def apply_to_scene(scene: SceneSpec, perturbations: list[BaseModel]) -> SceneSpec:
    """Scene-level perturbations: layout overrides and distractor objects."""
    objects, fixtures = list(scene.objects), list(scene.fixtures)
    for p in perturbations:
        if isinstance(p, ObjectLayout):
            known = {o.name for o in objects} | {f.name for f in fixtures}
            for name in p.objects:
                if name not in known:
                    raise ValueError(
                        f"object_layout: field 'objects.{name}': scene {scene.name!r} has no such object or fixture; "
                        f"known: {sorted(known)}"
                    )
            objects = [_relayout(o, p.objects.get(o.name), "yaw") for o in objects]
            fixtures = [_relayout(f, p.objects.get(f.name), "yaw_range") for f in fixtures]
        elif isinstance(p, Distractors):
            rng = np.random.default_rng(p.seed)
            for k in range(p.count):
                shape = ["box", "cylinder", "sphere"][rng.integers(3)]
                half = float(rng.uniform(0.015, 0.025))
                size = {"box": (half, half, half), "cylinder": (half, half), "sphere": (half,)}[shape]
                rgba = (*rng.uniform(0.15, 0.95, size=3).round(3).tolist(), 1.0)
                objects.append(
                    ObjectSpec(
                        name=f"distractor_{k}",
                        shape=shape,
                        size=size,
                        rgba=rgba,
                        mass=0.05,
                        pos=(*DISTRACTOR_AREA["pos"], half),
                        x=DISTRACTOR_AREA["x"],
                        y=DISTRACTOR_AREA["y"],
                        yaw=(-3.14, 3.14),
                    )
                )
        elif isinstance(p, Language):
            _check_paraphrases(scene, p)
    return scene.model_copy(update={"objects": tuple(objects), "fixtures": tuple(fixtures)})


def _check_paraphrases(scene: SceneSpec, p: Language) -> None:
    if not scene.paraphrases:
        raise ValueError(f"language: scene {scene.name!r} declares no paraphrases")
    if p.index is not None and p.index >= len(scene.paraphrases):
        raise ValueError(f"language: field 'index': {p.index} out of range for {len(scene.paraphrases)} paraphrases")


def _relayout(item, override: LayoutOverride | None, yaw_field: str):
    if override is None:
        return item
    update: dict[str, Any] = {"pos": (item.pos[0] + override.shift[0], item.pos[1] + override.shift[1], item.pos[2])}
    for key, target in (("x", "x"), ("y", "y"), ("yaw", yaw_field)):
        if getattr(override, key) is not None:
            update[target] = getattr(override, key)
    return item.model_copy(update=update)


def apply_to_model(model: mujoco.MjModel, perturbations: list[BaseModel]) -> None:
    """Model-level perturbations, applied once after compilation."""
    for p in perturbations:
        if isinstance(p, Lighting):
            model.light_diffuse[:] = np.clip(model.light_diffuse * p.scale, 0, 1)
            model.light_ambient[:] = np.clip(model.light_ambient * p.scale, 0, 1)
            model.vis.headlight.diffuse[:] = np.clip(np.asarray(model.vis.headlight.diffuse) * p.scale, 0, 1)
            model.vis.headlight.ambient[:] = np.clip(np.asarray(model.vis.headlight.ambient) * p.scale, 0, 1)
        elif isinstance(p, CameraPose):
            cam = model.camera(p.camera).id
            model.cam_pos[cam] += np.asarray(p.pos_delta)
            model.cam_pos0[cam] = model.cam_pos[cam]
            model.cam_fovy[cam] = float(np.clip(model.cam_fovy[cam] + p.fovy_delta, 5, 150))
        elif isinstance(p, TableColor):
            model.geom_rgba[model.geom("table_top").id] = p.rgba


def language_template(scene: SceneSpec, perturbations: list[BaseModel], rng: np.random.Generator) -> str | None:
    """The paraphrase template this episode uses, or None to keep the scene's instruction."""
    for p in perturbations:
        if isinstance(p, Language):
            _check_paraphrases(scene, p)
            if p.index is not None:
                return scene.paraphrases[p.index]
            return scene.paraphrases[int(rng.integers(len(scene.paraphrases)))]
    return None


def noise_std(perturbations: list[BaseModel]) -> float:
    return float(sum(p.std for p in perturbations if isinstance(p, ImageNoise)))
