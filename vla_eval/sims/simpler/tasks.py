"""SimplerEnv-style task families rebuilt with primitive geoms on the tabletop arm.

Each :class:`SimplerTask` names its family (``google``: 3 Hz, overhead camera; ``bridge``:
5 Hz, over-the-shoulder camera), its objects and fixtures (reusing the tabletop
``ObjectSpec`` / ``FixtureSpec``), a success rule, the step limit SimplerEnv uses, and a
grid of initial configurations with as many entries as SimplerEnv's scripts run per
variant (coke can 25 per orientation, move near 60, each drawer 9, apple 27, Bridge 24).
Episode *i* of a split uses configuration *i* (the backend passes ``config_id``); a suite
asking for more episodes than a grid holds is rejected, so no configuration runs twice.

The rules themselves (``success["type"]``: ``lift``, ``near``, ``drawer_open``,
``drawer_close``, ``in_drawer``, ``on_top``) are evaluated in :mod:`vla_eval.sims.simpler.env`;
docs/simpler.md lists each threshold next to SimplerEnv's source line, and
tests/sims/simpler/test_simpler_rules.py checks each threshold from both sides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from vla_eval.geometry import yaw_to_quat
from vla_eval.sims.tabletop.scene import FixtureSpec, ObjectSpec

Family = Literal["google", "bridge"]
CONTROL_HZ: dict[str, int] = {"google": 3, "bridge": 5}

IDENTITY = (1.0, 0.0, 0.0, 0.0)
_S = math.sqrt(0.5)
AXIS_Y = (_S, _S, 0.0, 0.0)
"""Cylinder lying down with its axis along world y (SimplerEnv 'horizontal', lr_switch)."""
AXIS_X = (_S, 0.0, _S, 0.0)
"""Cylinder lying down with its axis along world x (SimplerEnv 'vertical', laid_vertically)."""


def yaw_quat(yaw: float) -> tuple[float, float, float, float]:
    """:func:`~vla_eval.geometry.yaw_to_quat` as a tuple of floats: a :class:`Pose` is frozen and compared by value."""
    w, x, y, z = yaw_to_quat(yaw).tolist()
    return (w, x, y, z)


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
        if not 0 <= int(index) < len(self.configs):
            raise IndexError(
                f"task {self.name!r} has {len(self.configs)} configurations; config_id {index} is out of range"
            )
        return self.configs[int(index)]


# ------------------------------------------------------------------ objects
def _obj(name, shape, size, rgba, mass=0.05, free=True, friction=(1.0, 0.005, 0.0001)) -> ObjectSpec:
    z = {"box": size[-1], "cylinder": size[-1], "sphere": size[0]}[shape]
    return ObjectSpec(
        name=name, shape=shape, size=size, rgba=rgba, mass=mass, free=free, friction=friction, pos=(0.5, 0.0, z)
    )


COKE = _obj("coke_can", "cylinder", (0.033, 0.061), (0.78, 0.08, 0.1, 1.0), mass=0.06)
APPLE = _obj("apple", "sphere", (0.032,), (0.35, 0.7, 0.2, 1.0), mass=0.05, friction=(1.0, 0.01, 0.002))
SPONGE = _obj("sponge", "box", (0.035, 0.025, 0.02), (0.85, 0.8, 0.2, 1.0), mass=0.03)

# ----------------------------------------------------------------- google
COKE_GRID = [(x, y) for x in np.linspace(0.42, 0.62, 5).round(3) for y in np.linspace(-0.2, 0.2, 5).round(3)]


def _coke_task(orientation: str, quat, z) -> SimplerTask:
    configs = tuple(Config(poses={"coke_can": Pose((float(x), float(y)), z, quat)}) for x, y in COKE_GRID)
    return SimplerTask(
        name=f"google_pick_coke_can_{orientation}",
        family="google",
        instruction="pick coke can",
        objects=(COKE,),
        success={"type": "lift", "object": "coke_can"},
        max_steps=80,
        configs=configs,
        description=f"grasp and lift a coke can lying {orientation} ({len(configs)} positions, 5x5 grid)",
    )


# SimplerEnv move_near_in_scene.py MoveNearGoogleInSceneEnv: 5 triplets x 6 (source, target) pairs x 2 layouts.
BOTTLE = _obj("blue_plastic_bottle", "box", (0.075, 0.028, 0.028), (0.2, 0.45, 0.85, 1.0), mass=0.05)
"""Lying down, as SimplerEnv's bottle; a box rather than a cylinder so it cannot roll away once set down."""
PEPSI = _obj("pepsi_can", "cylinder", (0.033, 0.061), (0.1, 0.2, 0.6, 1.0), mass=0.06)
SEVENUP = _obj("sevenup_can", "cylinder", (0.033, 0.061), (0.2, 0.65, 0.25, 1.0), mass=0.06)
REDBULL = _obj("redbull_can", "cylinder", (0.033, 0.061), (0.7, 0.72, 0.8, 1.0), mass=0.06)
ORANGE = _obj("orange", "sphere", (0.035,), (0.98, 0.55, 0.1, 1.0), mass=0.05, friction=(1.0, 0.01, 0.002))
MOVE_NEAR_OBJECTS = (BOTTLE, PEPSI, ORANGE, SEVENUP, APPLE, SPONGE, COKE, REDBULL)
MOVE_NEAR_NAMES = {
    "blue_plastic_bottle": "blue plastic bottle",
    "pepsi_can": "pepsi can",
    "orange": "orange",
    "sevenup_can": "7up can",
    "apple": "apple",
    "sponge": "sponge",
    "coke_can": "coke can",
    "redbull_can": "redbull can",
}
MOVE_NEAR_TRIPLETS = (
    ("blue_plastic_bottle", "pepsi_can", "orange"),
    ("sevenup_can", "apple", "sponge"),
    ("coke_can", "redbull_can", "apple"),
    ("sponge", "blue_plastic_bottle", "sevenup_can"),
    ("orange", "pepsi_can", "redbull_can"),
)
MOVE_NEAR_PAIRS = tuple((i, j) for i in range(3) for j in range(3) if i != j)
MOVE_NEAR_LAYOUTS = (
    # SimplerEnv's two triangles ([-0.33, 0.04], [-0.33, 0.34], [-0.13, 0.19]) and
    # ([-0.13, 0.04], [-0.33, 0.19], [-0.13, 0.34]) in its scene frame (robot at (0.35, 0.21), facing -x),
    # expressed as (forward, left) of this arm's base, forward scaled by 0.9 onto its reach.
    ((0.62, 0.17), (0.62, -0.13), (0.44, 0.02)),
    ((0.44, 0.17), (0.62, 0.02), (0.44, -0.13)),
)


def _move_near_configs() -> tuple[Config, ...]:
    """Episode id -> (triplet, pair, layout) decoded exactly as SimplerEnv's ``reset`` does."""
    objs = {o.name: o for o in MOVE_NEAR_OBJECTS}
    configs = []
    n_pairs, n_layouts = len(MOVE_NEAR_PAIRS), len(MOVE_NEAR_LAYOUTS)
    for episode in range(len(MOVE_NEAR_TRIPLETS) * n_pairs * n_layouts):
        triplet = MOVE_NEAR_TRIPLETS[episode // (n_pairs * n_layouts)]
        src_i, tgt_i = MOVE_NEAR_PAIRS[episode % n_pairs]
        layout = MOVE_NEAR_LAYOUTS[(episode % (n_pairs * n_layouts)) // n_pairs]
        poses = {}
        for name, xy in zip(triplet, layout):
            o = objs[name]
            poses[name] = Pose(xy, o.half_height, yaw_quat(math.pi / 2) if o.shape == "box" else IDENTITY)
        src, tgt = triplet[src_i], triplet[tgt_i]
        configs.append(
            Config(
                poses=poses,
                instruction=f"move {MOVE_NEAR_NAMES[src]} near {MOVE_NEAR_NAMES[tgt]}",
                success={
                    "type": "near",
                    "object": src,
                    "target": tgt,
                    "others": [n for n in triplet if n not in (src, tgt)],
                },
            )
        )
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
        name=f"google_{action}_{level}_drawer",
        family="google",
        instruction=f"{action} {level} drawer",
        objects=(),
        fixtures=(CABINET,),
        success={"type": f"drawer_{action}", "drawer": level, "joint": joint},
        max_steps=113,
        configs=configs,
        keepout=CABINET_KEEPOUT,
        robot_init=ROBOT_TUCKED,
        description=f"{action} the {level} drawer of a three-drawer cabinet (9 cabinet placements)",
    )


APPLE_CABINET_Y = (-0.06, 0.0, 0.06)
"""Three cabinet placements (SimplerEnv: 3 robot poses A0 / B0 / C0 relative to the cabinet)."""


def _apple_drawer_task() -> SimplerTask:
    """SimplerEnv starts the apple on the cabinet top; this arm cannot reach over a 42 cm cabinet
    with a top-down grasp, so the apple starts on the table beside the cabinet: 3 cabinet
    placements x a 3 x 3 apple grid = 27 configurations, SimplerEnv's count per robot colouring."""
    apple = APPLE
    configs = []
    for cy in APPLE_CABINET_Y:
        for x in (0.40, 0.46, 0.52):
            for y in (-0.34, -0.29, 0.31):
                configs.append(
                    Config(poses={"cabinet": Pose((0.82, cy), 0.0), "apple": Pose((x, y + cy), apple.size[0] + 0.001)})
                )
    return SimplerTask(
        name="google_place_apple_in_closed_top_drawer",
        family="google",
        instruction="open top drawer",
        objects=(apple,),
        fixtures=(CABINET,),
        success={
            "type": "in_drawer",
            "object": "apple",
            "drawer": "top",
            "joint": "top_drawer_slide",
            "second_instruction": "place apple into top drawer",
            "switch_step": 100,
        },
        max_steps=200,
        configs=tuple(configs),
        keepout=CABINET_KEEPOUT,
        robot_init=ROBOT_TUCKED,
        description="open the closed top drawer, then place the apple from the table into it (27 configurations)",
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


BRIDGE_CENTRE = (0.50, 0.0)
"""SimplerEnv's Bridge ``xy_center`` (-0.16, 0.00) (robot at (0.147, 0.028), facing -x) on this arm's table:
an offset (dx, dy) from SimplerEnv's centre becomes (0.50 - dx, -dy)."""


def _corners(half: float) -> list[tuple[float, float]]:
    grid = [(-1, -1), (-1, 1), (1, -1), (1, 1)]  # SimplerEnv: [[0,0],[0,1],[1,0],[1,1]] * 2 - 1
    return [(BRIDGE_CENTRE[0] - gx * half, BRIDGE_CENTRE[1] - gy * half) for gx, gy in grid]


def _z(obj) -> float:
    return obj.half_height


def _pair_configs(src, tgt, halves, yaws) -> tuple[Config, ...]:
    """SimplerEnv put_on_in_scene.py: ordered (source, target) corner pairs x source yaws; episode id
    decodes as xy = id // len(yaws), yaw = id % len(yaws)."""
    configs = []
    for half in halves:
        pts = _corners(half)
        for i, ps in enumerate(pts):
            for j, pt in enumerate(pts):
                if i == j:
                    continue
                for yaw in yaws:
                    configs.append(
                        Config(poses={src.name: Pose(ps, _z(src), yaw_quat(yaw)), tgt.name: Pose(pt, _z(tgt))})
                    )
    return tuple(configs)


EGGPLANT_CENTRE = (0.48, -0.15)
BASKET_XY = (0.50, 0.06)
"""SimplerEnv PutEggplantInBasketScene: eggplant on a 2 x 4 grid (half spans 1 cm x 1.5 cm) around
(-0.105, 0.206), target (-0.125, 0.025), robot at (0.127, 0.06): the eggplant starts ~18 cm beside the basket."""


def _eggplant_configs(src) -> tuple[Config, ...]:
    configs = []
    for dx in np.linspace(-0.01, 0.01, 2):
        for dy in np.linspace(-0.015, 0.015, 4):
            for yaw in (0.0, math.pi / 4, -math.pi / 4):
                xy = (float(EGGPLANT_CENTRE[0] + dx), float(EGGPLANT_CENTRE[1] + dy))
                configs.append(
                    Config(poses={src.name: Pose(xy, _z(src), yaw_quat(yaw)), "basket": Pose(BASKET_XY, 0.0)})
                )
    return tuple(configs)


def _bridge_task(
    name,
    instruction,
    src,
    tgt,
    configs,
    max_steps=60,
    fixtures=(),
    fixture_sizes=None,
    desc="",
    z_offset=0.02,
    clear=True,
) -> SimplerTask:
    return SimplerTask(
        name=f"bridge_{name}",
        family="bridge",
        instruction=instruction,
        objects=(src,) if fixtures else (src, tgt),
        fixtures=fixtures,
        fixture_sizes=fixture_sizes or {},
        success={"type": "on_top", "object": src.name, "target": tgt.name, "z_offset": z_offset, "clear": clear},
        max_steps=max_steps,
        configs=configs,
        description=desc,
    )


TASKS: dict[str, SimplerTask] = {
    t.name: t
    for t in [
        _coke_task("horizontal", AXIS_Y, COKE.size[0]),
        _coke_task("vertical", AXIS_X, COKE.size[0]),
        _coke_task("standing", IDENTITY, COKE.size[1]),
        SimplerTask(
            name="google_move_near",
            family="google",
            instruction="move coke can near apple",
            objects=MOVE_NEAR_OBJECTS,
            success={"type": "near", "object": "coke_can", "target": "apple", "others": ["redbull_can"]},
            max_steps=80,
            configs=_move_near_configs(),
            description="move one of three objects near another "
            "(5 object triplets x 6 source/target pairs x 2 layouts = 60)",
        ),
        *[_drawer_task(level, action) for action in ("open", "close") for level in ("top", "middle", "bottom")],
        _apple_drawer_task(),
        _bridge_task(
            "put_spoon_on_towel",
            "put the spoon on the towel",
            SPOON,
            TOWEL,
            _pair_configs(SPOON, TOWEL, (0.075,), (0.0, math.pi / 2)),
            clear=False,
            desc="spoon onto a flat towel (12 corner pairs x 2 yaws)",
        ),
        _bridge_task(
            "put_carrot_on_plate",
            "put carrot on plate",
            CARROT,
            PLATE,
            _pair_configs(CARROT, PLATE, (0.075,), (math.pi, -math.pi / 2)),
            desc="carrot onto a plate (12 corner pairs x 2 yaws)",
        ),
        _bridge_task(
            "stack_green_on_yellow",
            "stack the green block on the yellow block",
            GREEN,
            YELLOW,
            _pair_configs(GREEN, YELLOW, (0.05, 0.1), (0.0,)),
            desc="stack a 4 cm green cube on a 5 cm yellow cube (2 square sizes x 12 corner pairs)",
        ),
        _bridge_task(
            "put_eggplant_in_basket",
            "put eggplant into yellow basket",
            EGGPLANT,
            BASKET,
            _eggplant_configs(EGGPLANT),
            max_steps=120,
            fixtures=(BASKET,),
            fixture_sizes={"basket": (0.075, 0.1, 0.01)},
            z_offset=0.06,
            clear=False,
            desc="eggplant into an open basket (8 positions x 3 yaws, 120 steps)",
        ),
    ]
}

GOOGLE_TASKS = [n for n, t in TASKS.items() if t.family == "google"]
BRIDGE_TASKS = [n for n, t in TASKS.items() if t.family == "bridge"]


def get_task(name: str) -> SimplerTask:
    from vla_eval.errors import UnknownNameError

    if name not in TASKS:
        raise UnknownNameError("simpler task", name, sorted(TASKS))
    return TASKS[name]
