"""The two SimplerEnv protocols' visual knobs: looks (visual matching vs simulated base) and variants.

Nothing is downloaded: every image is generated here with numpy from a fixed seed and
written straight into the compiled model's texture memory (``model.tex_data``) before the
renderer uploads it, so a "reference image" is bit-identical on every machine.

*Look* (``look`` argument of the env, chosen by the suite's ``backend_options``):

* ``visual_matching``: the family's reference image on a backdrop behind the table (the
  stand-in for SimplerEnv's real-image overlay), table texture and robot colours matched
  to that reference (light grey/white Google robot, dark WidowX-like Bridge arm).
* ``simulated``: the variant-aggregation base scene: a plain studio backdrop, the default
  table texture and the base arm colours.

*Variants* (perturbation dicts in a split, on top of the look; the tabletop ones are reused):

* ``{type: table_texture, texture: wood_dark | marble}``: a different table-top texture.
* ``{type: background, image: kitchen | office}``: a different backdrop image.
* ``{type: robot_colors, urdf: ...}``: the arm's colours for one of SimplerEnv's four Google-robot
  URDF colourings that visual matching averages over (``None``, ``recolor_tabletop_visual_matching_1``,
  ``recolor_tabletop_visual_matching_2``, ``recolor_cabinet_visual_matching_1``). These recolour
  *this* arm, not a Google robot: the split set is SimplerEnv's, the colours are ours.
* ``{type: cabinet_station, station: mk_station2 | mk_station3}``: the cabinet's colours
  (SimplerEnv's two alternative cabinet stations in drawer variant aggregation).
* ``{type: no_distractor}``: move near without its third object (SimplerEnv ``no_distractor=True``).
* ``{type: distractors, count, seed}`` (tabletop): extra free objects off the task's items.
* ``{type: lighting, scale}`` (tabletop): every light and the headlight scaled.
* ``{type: camera_pose, pos_delta, fovy_delta}`` (tabletop): the main camera moved.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

LOOKS = ("visual_matching", "simulated")
BACKGROUNDS = ("reference_google", "reference_bridge", "studio", "kitchen", "office")
TABLE_TEXTURES = ("reference_google", "reference_bridge", "sim", "wood_dark", "marble")
BG_SIZE = (192, 256)  # texture height, width
TABLE_SIZE = (128, 128)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TableTexture(_Strict):
    type: Literal["table_texture"]
    texture: Literal["wood_dark", "marble"]


class Background(_Strict):
    type: Literal["background"]
    image: Literal["kitchen", "office"]


URDF_COLORINGS = (
    "None",
    "recolor_tabletop_visual_matching_1",
    "recolor_tabletop_visual_matching_2",
    "recolor_cabinet_visual_matching_1",
)
"""SimplerEnv scripts/*_visual_matching.sh ``urdf_version_arr``."""


class RobotColors(_Strict):
    type: Literal["robot_colors"]
    urdf: Literal[
        "None",
        "recolor_tabletop_visual_matching_1",
        "recolor_tabletop_visual_matching_2",
        "recolor_cabinet_visual_matching_1",
    ]


class CabinetStation(_Strict):
    type: Literal["cabinet_station"]
    station: Literal["mk_station2", "mk_station3"]


class NoDistractor(_Strict):
    type: Literal["no_distractor"]


SimplerVariant = Annotated[
    Union[TableTexture, Background, RobotColors, CabinetStation, NoDistractor], Field(discriminator="type")
]
_LIST = TypeAdapter(list[SimplerVariant])
OWN_TYPES = {"table_texture", "background", "robot_colors", "cabinet_station", "no_distractor"}

URDF_RGBA = {
    "None": ((0.9, 0.9, 0.88, 1.0), (0.25, 0.25, 0.27, 1.0)),
    "recolor_tabletop_visual_matching_1": ((0.8, 0.8, 0.76, 1.0), (0.34, 0.33, 0.32, 1.0)),
    "recolor_tabletop_visual_matching_2": ((0.96, 0.95, 0.93, 1.0), (0.16, 0.16, 0.18, 1.0)),
    "recolor_cabinet_visual_matching_1": ((0.72, 0.74, 0.78, 1.0), (0.3, 0.32, 0.36, 1.0)),
}
"""(main, accent) arm colours per URDF colouring: four distinct light-grey schemes, our own values."""

CABINET_RGBA = {"mk_station": None, "mk_station2": (0.55, 0.4, 0.28, 1.0), "mk_station3": (0.25, 0.3, 0.38, 1.0)}


def split_variants(items: list[dict[str, Any]] | None) -> tuple[list[BaseModel], list[dict[str, Any]]]:
    """(this module's validated variants, the rest for the tabletop perturbation validator)."""
    own, rest = [], []
    for item in items or []:
        data = item.model_dump() if isinstance(item, BaseModel) else dict(item)
        (own if data.get("type") in OWN_TYPES else rest).append(data)
    try:
        return _LIST.validate_python(own), rest
    except ValidationError as exc:
        msgs = [f"field '{'.'.join(str(p) for p in e['loc'])}': {e['msg']}" for e in exc.errors()]
        raise ValueError("invalid simpler variant: " + "; ".join(msgs)) from None


# ------------------------------------------------------------------ cameras
def look_at_xyaxes(pos, target) -> str:
    """MuJoCo ``xyaxes`` for a camera at ``pos`` looking at ``target`` with world z up."""
    pos, target = np.asarray(pos, float), np.asarray(target, float)
    fwd = target - pos
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, fwd)
    return " ".join(f"{v:.5f}" for v in (*right, *up))


FAMILY_VIEW: dict[str, dict[str, Any]] = {
    # Google robot: head camera above the base, beside the arm, looking down the table.
    "google": {
        "camera_pos": (-0.05, -0.3, 0.9),
        "camera_target": (0.58, 0.02, 0.05),
        "fovy": 48,
        "backdrop_pos": (1.0, 0.0, 0.25),
        "backdrop_xyaxes": "0 -1 0 0 0 1",
        "backdrop_size": (1.4, 1.0),
    },
    # Bridge: third-person camera across the table, looking back at the robot.
    "bridge": {
        "camera_pos": (1.05, 0.32, 0.62),
        "camera_target": (0.4, 0.0, 0.02),
        "fovy": 55,
        "backdrop_pos": (-0.45, 0.0, 0.25),
        "backdrop_xyaxes": "0 1 0 0 0 1",
        "backdrop_size": (1.6, 1.0),
    },
}

ROBOT_RGBA = {
    "google": ((0.9, 0.9, 0.88, 1.0), (0.25, 0.25, 0.27, 1.0)),
    "bridge": ((0.14, 0.14, 0.15, 1.0), (0.32, 0.32, 0.34, 1.0)),
    "simulated": ((0.92, 0.92, 0.9, 1.0), (0.2, 0.2, 0.2, 1.0)),
}
"""(main link colour, accent colour) per look; accent goes on the originally dark links."""


# ----------------------------------------------------------------- images
def _grad(h, w, top, bottom) -> np.ndarray:
    t = np.linspace(0.0, 1.0, h)[:, None, None]
    return np.broadcast_to((1 - t) * np.asarray(top, float) + t * np.asarray(bottom, float), (h, w, 3)).copy()


def _rect(img, r0, r1, c0, c1, rgb) -> None:
    h, w = img.shape[:2]
    img[int(r0 * h) : int(r1 * h), int(c0 * w) : int(c1 * w)] = rgb


def background_image(name: str, size: tuple[int, int] = BG_SIZE) -> np.ndarray:
    """A procedurally generated backdrop (HxWx3 uint8, row 0 = top), deterministic per name."""
    h, w = size
    rng = np.random.default_rng(abs(hash_name(name)))
    if name == "reference_google":  # office kitchen: light wall, counter, window, dark cabinets
        img = _grad(h, w, (205, 200, 188), (170, 165, 155))
        _rect(img, 0.08, 0.45, 0.1, 0.42, (150, 180, 205))
        _rect(img, 0.08, 0.45, 0.255, 0.265, (220, 220, 220))
        _rect(img, 0.12, 0.52, 0.58, 0.92, (92, 84, 78))
        _rect(img, 0.55, 1.0, 0.0, 1.0, (120, 118, 112))
        _rect(img, 0.6, 0.95, 0.62, 0.8, (60, 60, 64))
    elif name == "reference_bridge":  # toy kitchen: wooden cabinet, tiles
        img = _grad(h, w, (188, 170, 140), (150, 128, 98))
        for c in np.arange(0.0, 1.0, 0.125):
            _rect(img, 0.0, 0.5, c, c + 0.006, (120, 104, 80))
        _rect(img, 0.5, 1.0, 0.05, 0.55, (210, 205, 198))
        _rect(img, 0.55, 0.95, 0.1, 0.5, (180, 176, 170))
        _rect(img, 0.2, 0.45, 0.62, 0.9, (70, 90, 60))
    elif name == "studio":  # plain simulated backdrop of the variant-aggregation base scene
        img = _grad(h, w, (150, 152, 158), (110, 112, 118))
    elif name == "kitchen":
        img = _grad(h, w, (225, 215, 190), (190, 170, 130))
        for r in np.arange(0.0, 1.0, 0.1):
            _rect(img, r, r + 0.01, 0.0, 1.0, (160, 150, 130))
        _rect(img, 0.1, 0.5, 0.15, 0.35, (140, 60, 40))
        _rect(img, 0.1, 0.5, 0.65, 0.85, (140, 60, 40))
    elif name == "office":
        img = _grad(h, w, (110, 140, 175), (60, 80, 110))
        _rect(img, 0.15, 0.55, 0.2, 0.8, (235, 235, 230))
        _rect(img, 0.6, 1.0, 0.0, 1.0, (70, 60, 55))
    else:
        raise ValueError(f"unknown background {name!r}; known: {list(BACKGROUNDS)}")
    img += rng.normal(0.0, 4.0, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def table_image(name: str, size: tuple[int, int] = TABLE_SIZE) -> np.ndarray:
    h, w = size
    rng = np.random.default_rng(abs(hash_name(name)))
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    if name == "reference_google":  # light grey laminate
        img = np.full((h, w, 3), (172, 168, 160), float) + rng.normal(0, 3, (h, w, 1))
    elif name == "reference_bridge":  # light wood
        grain = np.sin(40 * yy + 3 * np.sin(6 * xx)) * 10
        img = np.stack([196 + grain, 160 + grain, 118 + grain * 0.8], -1)
    elif name == "sim":
        img = np.full((h, w, 3), (158, 128, 97), float) + rng.normal(0, 2, (h, w, 1))
    elif name == "wood_dark":
        grain = np.sin(55 * xx + 4 * np.sin(5 * yy)) * 14
        img = np.stack([95 + grain, 62 + grain * 0.8, 40 + grain * 0.6], -1)
    elif name == "marble":
        vein = np.abs(np.sin(12 * (xx + yy) + 3 * np.sin(9 * xx))) ** 0.3
        img = np.stack([235 - 60 * (1 - vein)] * 3, -1) + rng.normal(0, 3, (h, w, 1))
    else:
        raise ValueError(f"unknown table texture {name!r}; known: {list(TABLE_TEXTURES)}")
    return np.clip(img, 0, 255).astype(np.uint8)


def hash_name(name: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def resolve_look(family: str, look: str, variants: list[BaseModel]) -> dict[str, Any]:
    """Backdrop image, table texture and robot colours for a family / look / variant list."""
    if look not in LOOKS:
        raise ValueError(f"unknown look {look!r}; expected one of {list(LOOKS)}")
    if look == "visual_matching":
        out = {"background": f"reference_{family}", "table": f"reference_{family}", "robot": family}
    else:
        out = {"background": "studio", "table": "sim", "robot": "simulated"}
    out["cabinet"] = "mk_station"
    for v in variants:
        if isinstance(v, TableTexture):
            out["table"] = v.texture
        elif isinstance(v, Background):
            out["background"] = v.image
        elif isinstance(v, RobotColors):
            out["robot"] = f"urdf:{v.urdf}"
        elif isinstance(v, CabinetStation):
            out["cabinet"] = v.station
    return out


def robot_rgba(key: str):
    return URDF_RGBA[key.split(":", 1)[1]] if key.startswith("urdf:") else ROBOT_RGBA[key]
