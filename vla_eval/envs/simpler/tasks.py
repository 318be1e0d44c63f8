"""SimplerEnv-style task families rebuilt with primitive geoms on the tabletop arm.

Each :class:`SimplerTask` names its family (``google``: 3 Hz, overhead camera; ``bridge``:
5 Hz, over-the-shoulder camera), its objects and fixtures (reusing the tabletop
``ObjectSpec`` / ``FixtureSpec``), a success rule with SimplerEnv's semantics, the step
limit SimplerEnv uses, and a deterministic grid of initial configurations. Episode *i*
uses configuration ``i % len(configs)`` (the backend passes ``config_id``), so a suite's
episodes walk the grid exactly as SimplerEnv's evaluation scripts do.

Success rules (``success["type"]``), evaluated every control step by the env:

* ``lift`` (pick coke can): the object is held by both fingers for >= 5 consecutive steps
  and raised > 2 cm above its settled height (SimplerEnv's ``lifted_object_significantly``).
* ``near`` (move near): SimplerEnv's AND of ``all_obj_keep_height``, ``moved_correct_obj``
  (source moved > 3 cm and more than any other), ``near_tgt_obj`` (xy distance < half
  bbox-diagonals of both + 5 cm) and ``is_closest_to_tgt``.
* ``drawer_open`` / ``drawer_close``: the drawer joint >= 0.15 m / <= 0.05 m.
* ``in_drawer`` (place apple into top drawer): the object's centre lies inside the drawer box
  (drawer frame) and it is not held.
* ``on_top`` (Bridge put-on / stack / put-in): xy offset within the target's half extents
  + 3 mm, 0 < dz - (half heights) <= 2 cm, and the two are in contact (SimplerEnv's
  ``src_on_target``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from vla_eval.envs.tabletop.scene import FixtureSpec, ObjectSpec

Family = Literal["google", "bridge"]
CONTROL_HZ: dict[str, int] = {"google": 3, "bridge": 5}

IDENTITY = (1.0, 0.0, 0.0, 0.0)
_S = math.sqrt(0.5)
AXIS_Y = (_S, _S, 0.0, 0.0)
"""Cylinder lying down with its axis along world y (SimplerEnv 'horizontal', lr_switch)."""
AXIS_X = (_S, 0.0, _S, 0.0)
"""Cylinder lying down with its axis along world x (SimplerEnv 'vertical', laid_vertically)."""


def yaw_quat(yaw: float) -> tuple[float, float, float, float]:
    return (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))


@dataclass(frozen=True)
class Pose:
    xy: tuple[float, float]
    z: float
    quat: tuple[float, float, float, float] = IDENTITY


@dataclass(frozen=True)
class Config:
    """One initial configuration: item poses (objects and fixtures), joint positions, optional task override."""

    poses: dict[str, Pose]
    joints: dict[str, float] = field(default_factory=dict)
    instruction: str | None = None
    success: dict[str, Any] | None = None


@dataclass(frozen=True)
class SimplerTask:
    name: str
    family: Family
    instruction: str
    objects: tuple[ObjectSpec, ...]
    success: dict[str, Any]
    max_steps: int
    configs: tuple[Config, ...]
    fixtures: tuple[FixtureSpec, ...] = ()
    fixture_sizes: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    """Half extents of fixtures used as targets (basket inner area; z = floor top above the body origin)."""
    robot_init: tuple[float, float, float] | None = None
    """End-effector start position (gripper down) solved by IK at reset; None = the arm's home pose.
    Cabinet tasks start tucked back and up, clear of an open drawer (as the Google robot does)."""
    keepout: tuple[tuple[float, float, float, float], ...] = ()
    """xy boxes (x0, x1, y0, y1) relative to the first fixture where distractors may not go."""
    description: str = ""

    @property
    def control_hz(self) -> int:
        return CONTROL_HZ[self.family]

    def config(self, index: int) -> Config:
        return self.configs[int(index) % len(self.configs)]


# ------------------------------------------------------------------ objects
def _obj(name, shape, size, rgba, mass=0.05, free=True, friction=(1.0, 0.005, 0.0001)) -> ObjectSpec:
    z = {"box": size[-1], "cylinder": size[-1], "sphere": size[0]}[shape]
    return ObjectSpec(name=name, shape=shape, size=size, rgba=rgba, mass=mass, free=free, friction=friction,
                      pos=(0.5, 0.0, z))


COKE = _obj("coke_can", "cylinder", (0.033, 0.061), (0.78, 0.08, 0.1, 1.0), mass=0.06)
APPLE = _obj("apple", "sphere", (0.032,), (0.35, 0.7, 0.2, 1.0), mass=0.05, friction=(1.0, 0.01, 0.002))
SPONGE = _obj("sponge", "box", (0.035, 0.025, 0.02), (0.15, 0.35, 0.85, 1.0), mass=0.03)
NAMES = {"coke_can": "coke can", "apple": "apple", "sponge": "blue sponge"}

# ----------------------------------------------------------------- google
COKE_GRID = [(x, y) for x in np.linspace(0.42, 0.62, 5).round(3) for y in np.linspace(-0.2, 0.2, 5).round(3)]


def _coke_task(orientation: str, quat, z) -> SimplerTask:
    configs = tuple(Config(poses={"coke_can": Pose((float(x), float(y)), z, quat)}) for x, y in COKE_GRID)
    return SimplerTask(
        name=f"google_pick_coke_can_{orientation}", family="google", instruction="pick coke can",
        objects=(COKE,), success={"type": "lift", "object": "coke_can"}, max_steps=80, configs=configs,
        description=f"grasp and lift a coke can lying {orientation} ({len(configs)} positions, 5x5 grid)",
    )


def _move_near_configs() -> tuple[Config, ...]:
    layouts = [
        [(0.44, -0.16), (0.44, 0.16), (0.62, 0.0)],
        [(0.62, -0.16), (0.62, 0.16), (0.44, 0.0)],
    ]
    names = ["coke_can", "apple", "sponge"]
    pairs = [(s, t) for s in names for t in names if s != t]
    configs = []
    for layout in layouts:
        for k, (src, tgt) in enumerate(pairs):
            rot = k % 3
            poses = {}
            for j, name in enumerate(names):
                xy = layout[(j + rot) % 3]
                obj = {"coke_can": COKE, "apple": APPLE, "sponge": SPONGE}[name]
                poses[name] = Pose(xy, obj.half_height, IDENTITY)
            configs.append(Config(
                poses=poses, instruction=f"move {NAMES[src]} near {NAMES[tgt]}",
                success={"type": "near", "object": src, "target": tgt, "others": [n for n in names if n not in (src, tgt)]},
            ))
    return tuple(configs)


CABINET = FixtureSpec(name="cabinet", file="../simpler/cabinet3.xml", pos=(0.82, 0.0, 0.0), radius=0.3)
CABINET_GRID = [(x, y) for x in (0.78, 0.82, 0.86) for y in (-0.08, 0.0, 0.08)]
CABINET_KEEPOUT = ((-0.5, 0.15, -0.26, 0.26),)
ROBOT_TUCKED = (0.32, 0.0, 0.5)


def _drawer_task(level: str, action: str) -> SimplerTask:
    joint = f"{level}_drawer_slide"
    start = 0.0 if action == "open" else 0.2
    configs = tuple(Config(poses={"cabinet": Pose((x, y), 0.0)}, joints={joint: start}) for x, y in CABINET_GRID)
    return SimplerTask(
        name=f"google_{action}_{level}_drawer", family="google", instruction=f"{action} {level} drawer",
        objects=(), fixtures=(CABINET,), success={"type": f"drawer_{action}", "drawer": level, "joint": joint},
        max_steps=113, configs=configs, keepout=CABINET_KEEPOUT, robot_init=ROBOT_TUCKED,
        description=f"{action} the {level} drawer of a three-drawer cabinet (9 cabinet placements)",
    )


def _apple_drawer_task() -> SimplerTask:
    """SimplerEnv starts the apple on the cabinet top; this arm cannot reach over a 42 cm cabinet
    with a top-down grasp, so the apple starts on the table beside the cabinet (3 x 3 grid)."""
    apple = APPLE
    configs = []
    for x in (0.40, 0.46, 0.52):
        for y in (-0.34, -0.29, 0.31):
            configs.append(Config(poses={"cabinet": Pose((0.82, 0.0), 0.0),
                                         "apple": Pose((x, y), apple.size[0] + 0.001)}))
    return SimplerTask(
        name="google_place_apple_in_closed_top_drawer", family="google",
        instruction="open top drawer; place apple into top drawer",
        objects=(apple,), fixtures=(CABINET,),
        success={"type": "in_drawer", "object": "apple", "drawer": "top", "joint": "top_drawer_slide"},
        max_steps=200, configs=tuple(configs), keepout=CABINET_KEEPOUT, robot_init=ROBOT_TUCKED,
        description="open the closed top drawer, then move the apple from the table into it (9 apple positions)",
    )


# ----------------------------------------------------------------- bridge
SPOON = _obj("spoon", "box", (0.055, 0.011, 0.01), (0.78, 0.8, 0.82, 1.0), mass=0.03)
TOWEL = _obj("towel", "box", (0.075, 0.075, 0.004), (0.25, 0.45, 0.8, 1.0), mass=0.1, free=False)
CARROT = _obj("carrot", "box", (0.05, 0.013, 0.013), (0.95, 0.45, 0.08, 1.0), mass=0.03)
PLATE = _obj("plate", "cylinder", (0.08, 0.006), (0.93, 0.93, 0.95, 1.0), mass=0.2, free=False)
GREEN = _obj("green_cube", "box", (0.02, 0.02, 0.02), (0.15, 0.7, 0.2, 1.0), mass=0.04)
YELLOW = _obj("yellow_cube", "box", (0.025, 0.025, 0.025), (0.95, 0.85, 0.1, 1.0), mass=0.3)
EGGPLANT = _obj("eggplant", "box", (0.045, 0.02, 0.02), (0.38, 0.12, 0.45, 1.0), mass=0.04)
BASKET = FixtureSpec(name="basket", file="../simpler/basket.xml", pos=(0.5, 0.15, 0.0), radius=0.15)


def _bridge_configs(src, tgt, n_yaw=3, tgt_z: float | None = None) -> tuple[Config, ...]:
    """24 configurations: 4 source spots x 2 target spots (opposite side) x 3 source yaws."""
    configs = []
    for sx, sy in [(0.44, -0.14), (0.56, -0.14), (0.44, 0.14), (0.56, 0.14)]:
        for tx in (0.46, 0.56):
            for yaw in np.linspace(0.0, math.pi / 2, n_yaw):
                tz = tgt.half_height if tgt_z is None and hasattr(tgt, "half_height") else (tgt_z or 0.0)
                configs.append(Config(poses={
                    src.name: Pose((sx, sy), src.half_height, yaw_quat(float(yaw))),
                    tgt.name: Pose((tx, -sy), tz),
                }))
    return tuple(configs)


def _bridge_task(name, instruction, src, tgt, max_steps=60, fixtures=(), fixture_sizes=None, desc="") -> SimplerTask:
    return SimplerTask(
        name=f"bridge_{name}", family="bridge", instruction=instruction,
        objects=(src,) if fixtures else (src, tgt), fixtures=fixtures, fixture_sizes=fixture_sizes or {},
        success={"type": "on_top", "object": src.name, "target": tgt.name}, max_steps=max_steps,
        configs=_bridge_configs(src, tgt), description=desc,
    )


TASKS: dict[str, SimplerTask] = {t.name: t for t in [
    _coke_task("horizontal", AXIS_Y, COKE.size[0]),
    _coke_task("vertical", AXIS_X, COKE.size[0]),
    _coke_task("standing", IDENTITY, COKE.size[1]),
    SimplerTask(
        name="google_move_near", family="google", instruction="move coke can near apple",
        objects=(COKE, APPLE, SPONGE), success={"type": "near", "object": "coke_can", "target": "apple",
                                                "others": ["sponge"]},
        max_steps=80, configs=_move_near_configs(),
        description="move one of three objects next to another (2 triangle layouts x 6 source/target pairs)",
    ),
    *[_drawer_task(level, action) for action in ("open", "close") for level in ("top", "middle", "bottom")],
    _apple_drawer_task(),
    _bridge_task("put_spoon_on_towel", "put the spoon on the towel", SPOON, TOWEL, desc="spoon onto a flat towel"),
    _bridge_task("put_carrot_on_plate", "put carrot on plate", CARROT, PLATE, desc="carrot onto a plate"),
    _bridge_task("stack_green_on_yellow", "stack the green block on the yellow block", GREEN, YELLOW,
                 desc="stack a 4 cm green cube on a 5 cm yellow cube"),
    _bridge_task("put_eggplant_in_basket", "put eggplant into yellow basket", EGGPLANT,
                 FixtureSpec(name="basket", file="../simpler/basket.xml", pos=(0.5, 0.15, 0.0), radius=0.15),
                 max_steps=120, fixtures=(BASKET,), fixture_sizes={"basket": (0.075, 0.1, 0.01)},
                 desc="eggplant into an open basket (120 steps, as SimplerEnv)"),
]}

GOOGLE_TASKS = [n for n, t in TASKS.items() if t.family == "google"]
BRIDGE_TASKS = [n for n, t in TASKS.items() if t.family == "bridge"]


def get_task(name: str) -> SimplerTask:
    from vla_eval.errors import UnknownNameError

    if name not in TASKS:
        raise UnknownNameError("simpler task", name, sorted(TASKS))
    return TASKS[name]
