"""Scene files: what a tabletop task is made of, declared in YAML and validated here.

A scene names its objects (primitive shapes with a nominal pose and randomisation
ranges), its fixtures (MJCF fragments from ``envs/assets``), the instruction template and
the success predicate. Everything a user can get wrong is caught by pydantic with
``extra="forbid"`` and reported as ``<file>: field '<dotted.path>': <message>``.
"""

from __future__ import annotations

import os
import string
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vla_eval.errors import ConfigError, UnknownNameError
from vla_eval.yaml_io import load_text

Range = tuple[float, float]
Vec3 = tuple[float, float, float]
RGBA = tuple[float, float, float, float]

INSTRUCTION_CHARSET = string.ascii_letters + string.digits + string.punctuation + " "


def envs_dir() -> Path:
    """The data folder holding ``assets/`` and ``scenes/``; ``VLA_EVAL_ENVS_DIR`` overrides it."""
    override = os.environ.get("VLA_EVAL_ENVS_DIR")
    if override:
        return Path(override).resolve()
    from vla_eval import paths

    return paths.builtin_dir("envs")


class SceneError(ConfigError, ValueError):
    """A scene file is invalid; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_range(value: Range) -> Range:
    if value[0] > value[1]:
        raise ValueError(f"range lower bound {value[0]} exceeds upper bound {value[1]}")
    return value


class ObjectSpec(_Strict):
    """A primitive-shaped object. ``size`` uses MuJoCo half-sizes: box (3), cylinder [radius, half-height],
    sphere [radius].

    ``x``/``y``/``yaw`` are offsets sampled uniformly and added to ``pos`` (and to yaw 0)
    at every reset. ``free`` objects get a free joint; others are welded to the table but
    still re-placed each reset. ``collide: false`` makes a visual-only marker.
    """

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    shape: Literal["box", "cylinder", "sphere"]
    size: tuple[float, ...]
    rgba: RGBA = (0.6, 0.6, 0.6, 1.0)
    mass: float = Field(0.1, gt=0)
    free: bool = True
    collide: bool = True
    friction: Vec3 = (1.0, 0.005, 0.0001)
    pos: Vec3
    x: Range = (0.0, 0.0)
    y: Range = (0.0, 0.0)
    yaw: Range = (0.0, 0.0)

    _ranges = field_validator("x", "y", "yaw")(_check_range)

    @model_validator(mode="after")
    def _size_matches_shape(self) -> "ObjectSpec":
        expected = {"box": 3, "cylinder": 2, "sphere": 1}[self.shape]
        if len(self.size) != expected or any(s <= 0 for s in self.size):
            raise ValueError(f"size of a {self.shape} needs {expected} positive half-sizes, got {list(self.size)}")
        return self

    @property
    def footprint(self) -> float:
        """Radius of the object's footprint on the table (for separation checks)."""
        if self.shape == "box":
            return float((self.size[0] ** 2 + self.size[1] ** 2) ** 0.5)
        return float(self.size[0])

    @property
    def half_height(self) -> float:
        return float({"box": self.size[-1], "cylinder": self.size[-1], "sphere": self.size[0]}[self.shape])


class FixtureSpec(_Strict):
    """An MJCF fragment (``envs/assets/<file>``) whose single top-level body is renamed ``name`` and posed here."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    file: str
    pos: Vec3
    yaw: float = 0.0
    x: Range = (0.0, 0.0)
    y: Range = (0.0, 0.0)
    yaw_range: Range = (0.0, 0.0)
    radius: float = Field(0.15, gt=0, description="footprint radius used for separation from other items")

    _ranges = field_validator("x", "y", "yaw_range")(_check_range)


class OnTop(_Strict):
    """``object`` rests on ``support``: in contact, above it, centre inside its footprint."""

    type: Literal["on_top"]
    object: str
    support: str


class InRegion(_Strict):
    """``object``'s centre is within ``radius`` (xy) of the ``region`` object's centre, on the table."""

    type: Literal["in_region"]
    object: str
    region: str
    radius: float = Field(0.05, gt=0)


class JointAtLeast(_Strict):
    """Articulation ``joint`` (e.g. a drawer slide) has position >= ``value``."""

    type: Literal["joint_at_least"]
    joint: str
    value: float


SuccessSpec = Annotated[Union[OnTop, InRegion, JointAtLeast], Field(discriminator="type")]


class SceneSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    description: str = ""
    instruction: str
    instruction_vars: dict[str, str] = Field(default_factory=dict)
    paraphrases: tuple[str, ...] = ()
    objects: tuple[ObjectSpec, ...] = ()
    fixtures: tuple[FixtureSpec, ...] = ()
    min_separation: float = Field(0.1, ge=0)
    success: SuccessSpec

    @field_validator("instruction", "paraphrases")
    @classmethod
    def _printable(cls, value):
        for text in [value] if isinstance(value, str) else value:
            bad = sorted({c for c in text if c not in INSTRUCTION_CHARSET})
            if bad:
                raise ValueError(f"instruction text {text!r} has unsupported characters {bad}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "SceneSpec":
        for i, template in enumerate((self.instruction, *self.paraphrases)):
            try:
                template.format(**self.instruction_vars)
            except (KeyError, IndexError, ValueError) as exc:
                where = "instruction" if i == 0 else f"paraphrases.{i - 1}"
                raise ValueError(f"{where}: template {template!r} cannot be filled from instruction_vars ({exc!r})")
        names = [o.name for o in self.objects] + [f.name for f in self.fixtures]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate object/fixture names {dupes}")
        objects = {o.name for o in self.objects}
        refs = {"on_top": ("object", "support"), "in_region": ("object", "region")}.get(self.success.type, ())
        for field in refs:
            ref = getattr(self.success, field)
            if ref not in objects:
                raise ValueError(f"success.{field}: {ref!r} is not one of the scene's objects {sorted(objects)}")
        return self

    def render_instruction(self, template: str | None = None) -> str:
        return (template or self.instruction).format(**self.instruction_vars)

    def object(self, name: str) -> ObjectSpec:
        return next(o for o in self.objects if o.name == name)


def _format_validation_error(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"{source}: field '{loc}': {err['msg']}")
    return "\n".join(lines)


def parse_scene(data: object, source: str = "<scene>") -> SceneSpec:
    """Validate an already-loaded mapping; ``source`` names it in errors."""
    if not isinstance(data, dict):
        raise SceneError(f"{source}: expected a mapping at top level, got {type(data).__name__}")
    try:
        return SceneSpec.model_validate(data)
    except ValidationError as exc:
        raise SceneError(_format_validation_error(exc, source)) from None


def list_scenes() -> list[str]:
    """Names of the scene files in ``envs_dir()/scenes``."""
    return sorted(p.stem for p in (envs_dir() / "scenes").glob("*.yaml"))


def scene_path(name_or_path: str | Path) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return candidate
    path = envs_dir() / "scenes" / f"{name_or_path}.yaml"
    if not path.exists():
        raise UnknownNameError("scene", str(name_or_path), list_scenes())
    return path


def load_scene(scene: "str | Path | SceneSpec") -> SceneSpec:
    """A built-in scene by name, a YAML path, or an already-built spec."""
    if isinstance(scene, SceneSpec):
        return scene
    path = scene_path(scene)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SceneError(f"{path}: cannot read scene file: {exc}") from None
    except UnicodeDecodeError as exc:
        raise SceneError(f"{path}: not a text (UTF-8) YAML file: {exc.reason} at byte {exc.start}") from None
    try:
        data = load_text(text, str(path))
    except ConfigError as exc:
        raise SceneError(str(exc)) from None
    return parse_scene(data, str(path))
