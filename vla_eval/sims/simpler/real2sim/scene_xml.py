"""MJCF pieces every SimplerEnv-robot scene builds the same way (:mod:`.bridge`, :mod:`.google_env`).

SimplerEnv's object models as free bodies (:func:`object_mjcf`, :func:`scene_objects`), position drives
(:func:`position_drives`) and the scene file around a robot (:func:`scene_mjcf`): physics options,
the offscreen buffer at the camera's size, a headlight, a table box standing in for SimplerEnv's stage
mesh (not in the asset pack; the photo hides it in the image; in geom group 4, which the camera does not draw, so
that whatever the render draws is foreground: robot or object). Each robot's builder passes its own
numbers, which cite their SimplerEnv sources where they are defined.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from vla_eval.sims.simpler.real2sim.meshes import collision_parts, visual_parts


def _fmt(v) -> str:
    return " ".join(f"{float(x):.9g}" for x in v)


def widest_section(parts: list[Path], scale: float, bins: int = 12) -> np.ndarray:
    """Object-frame xy of the collision shape's widest cross-section along its long axis.

    Squeezing a convex hull where its sides slant pushes it out of the hand (MuJoCo's soft
    contacts let it creep out; PhysX's do not): the expert grasps where the sides are parallel.
    """
    verts = []
    for path in parts:
        for line in path.read_text().splitlines():
            if line.startswith("v "):
                verts.append([float(x) for x in line.split()[1:4]])
    v = np.asarray(verts) * scale
    ext = v.max(axis=0) - v.min(axis=0)
    long_i = 0 if ext[0] >= ext[1] else 1
    short_i = 1 - long_i
    edges = np.linspace(v[:, long_i].min(), v[:, long_i].max(), bins + 1)
    widths = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = v[(v[:, long_i] >= lo) & (v[:, long_i] <= hi)]
        if len(sel) >= 3:
            widths.append(((lo + hi) / 2, float(sel[:, short_i].max() - sel[:, short_i].min())))
    out = np.zeros(2)
    out[short_i] = float((v[:, short_i].max() + v[:, short_i].min()) / 2)
    if len(widths) < bins // 2:  # a coarse mesh (a cube): vertices only at the ends, use the middle
        out[long_i] = float((edges[0] + edges[-1]) / 2)
        return out
    best = max(widths, key=lambda cw: cw[1])[0]
    out[long_i] = best
    return out


def object_mjcf(
    assets: Path,
    model_json: str,
    db: dict,
    name: str,
    model_id: str,
    facts: dict[str, Any],
    friction: float,
    damping: float = 0.0,
    density: float | None = None,
    visual_rgba: tuple[float, float, float, float] | None = None,
    hidden: bool = False,
    fixed_pos: tuple[float, float, float] | None = None,
) -> tuple[list[str], str]:
    """One SimplerEnv object model as MJCF assets and a free body named ``name``: visual meshes (group 2, no
    collision) from the converted ``textured.*``, collision hulls (group 3) from ``collision.obj``, at the
    ``info_*.json`` scale and density (``density`` overrides it, as SimplerEnv's per-task density tables do).
    ``visual_rgba``: the model's visual mesh is missing, draw its collision hulls in this colour (a labelled
    substitute). ``hidden``: no visual geoms (SimplerEnv's ``rgb_always_overlay_objects``: the photo shows them);
    ``fixed_pos``: a static body there instead of a free one (SimplerEnv's ``lock_motion()``). Records the scaled
    bbox, model id and grasp point in ``facts``."""
    info = db.get(model_id)
    if info is None:
        raise KeyError(f"{model_json} has no model {model_id!r}")
    scale = float((info.get("scales") or [1.0])[0])
    density = float(info.get("density", 1000)) if density is None else float(density)
    facts.setdefault("bbox", {})[name] = (np.array(info["bbox"]["max"]) - np.array(info["bbox"]["min"])) * scale
    facts.setdefault("model", {})[name] = model_id
    model_dir = assets / "data" / "custom" / "models" / model_id
    asset_xml, geoms = [], []
    hulls = collision_parts(model_dir)
    for i, path in enumerate(hulls):
        asset_xml.append(f'<mesh name="{name}_col{i}" file="{path}" scale="{scale} {scale} {scale}" inertia="convex"/>')
    if hidden:
        pass
    elif visual_rgba is not None:  # the substitute look: the collision hulls themselves, drawn in one colour
        geoms += [
            f'<geom type="mesh" mesh="{name}_col{i}" rgba="{_fmt(visual_rgba)}" group="2" contype="0" '
            'conaffinity="0" density="0"/>'
            for i in range(len(hulls))
        ]
    else:
        for i, part in enumerate(visual_parts(model_dir)):
            mesh = f"{name}_vis{i}"
            asset_xml.append(f'<mesh name="{mesh}" file="{part.obj}" scale="{scale} {scale} {scale}"/>')
            if part.texture is not None:
                asset_xml.append(f'<texture name="{mesh}_tex" type="2d" file="{part.texture}"/>')
                asset_xml.append(f'<material name="{mesh}_mat" texture="{mesh}_tex" rgba="{_fmt(part.rgba)}"/>')
            else:
                asset_xml.append(f'<material name="{mesh}_mat" rgba="{_fmt(part.rgba)}" emission="{part.emission}"/>')
            geoms.append(
                f'<geom type="mesh" mesh="{mesh}" material="{mesh}_mat" group="2" '
                'contype="0" conaffinity="0" density="0"/>'
            )
    for i in range(len(hulls)):
        geoms.append(
            f'<geom name="{name}_col{i}" type="mesh" mesh="{name}_col{i}" group="3" density="{density}" '
            f'friction="{friction} 0.005 0.0001" contype="1" conaffinity="3" rgba="0 0 0 0"/>'
        )
    facts.setdefault("grasp", {})[name] = widest_section(hulls, scale)
    if fixed_pos is not None:
        return asset_xml, f'<body name="{name}" pos="{_fmt(fixed_pos)}">{"".join(geoms)}</body>'
    joint = (
        f'<joint name="{name}_free" type="free" damping="{damping}"/>'
        if damping
        else f'<freejoint name="{name}_free"/>'
    )
    return asset_xml, f'<body name="{name}" pos="0 0 2">{joint}{"".join(geoms)}</body>'


def scene_objects(assets: Path, task: Any, real: Any, friction: float) -> tuple[list[str], list[str], dict[str, Any]]:
    """The task's objects (``real.models`` of ``real.model_json``) as MJCF assets and bodies, and the facts the env
    needs (scaled bboxes, model ids, grasp points). Optional staging fields of ``real``: ``extra_objects`` (free
    bodies the shared task does not name, e.g. SimplerEnv's invisible target plane), ``fixed`` (name -> static
    position), ``hidden`` (drawn by the photo only), ``densities``, ``visual_substitutes``."""
    db = json.loads((assets / "data" / "custom" / real.model_json).read_text())
    asset_xml: list[str] = []
    objects_xml = []
    facts: dict[str, Any] = {"bbox": {}, "model": {}}
    densities = getattr(real, "densities", None) or {}
    substitutes = getattr(real, "visual_substitutes", None) or {}
    hidden = set(getattr(real, "hidden", None) or ())
    fixed = getattr(real, "fixed", None) or {}
    free = [o.name for o in task.objects] + list(getattr(real, "extra_objects", None) or ())
    for name in free + list(fixed):
        model_id = real.models[name]
        assets_i, body_i = object_mjcf(
            assets,
            real.model_json,
            db,
            name,
            model_id,
            facts,
            friction,
            density=densities.get(name),
            visual_rgba=substitutes.get(model_id),
            hidden=name in hidden,
            fixed_pos=fixed.get(name),
        )
        asset_xml += assets_i
        objects_xml.append(body_i)
    return asset_xml, objects_xml, facts


def position_drives(joints, stiffness, damping, force_limit, ctrlrange: str | None = None) -> list[str]:
    """One ``<position>`` drive per joint; a scalar gain or force limit applies to every joint."""
    n = len(joints)
    per_joint = [v if isinstance(v, (list, tuple)) else (v,) * n for v in (stiffness, damping, force_limit)]
    extra = f' ctrlrange="{ctrlrange}"' if ctrlrange is not None else ""
    return [
        f'<position name="act_{j}" joint="{j}" kp="{kp}" kv="{kv}" forcerange="{-f} {f}" forcelimited="true"{extra}/>'
        for j, kp, kv, f in zip(joints, *per_joint)
    ]


def scene_mjcf(
    model_name: str,
    sim_hz: int,
    camera_size: tuple[int, int],
    asset_xml: list[str],
    robot_body: str,
    objects_xml: list[str],
    actuators: list[str],
    table_pos: str,
    table_size: str,
    table_friction: float,
    floor: bool = False,
    compiler_extra: str = "",
    option_extra: str = "",
    table: bool = True,
    contact_xml: str = "",
) -> str:
    """The scene file: robot body, object bodies and drives inside the shared options, lights and table box
    (``table`` False: none, as SimplerEnv's ``dummy_drawer`` scene has no collision but the floor)."""
    floor_xml = (
        '\n    <geom name="floor" type="plane" size="5 5 0.1" rgba="0.3 0.25 0.2 1" '
        'contype="1" conaffinity="3" group="4"/>'
        if floor
        else ""
    )
    table_xml = (
        f'<geom name="table" type="box" pos="{table_pos}" size="{table_size}" rgba="0.55 0.5 0.45 1" group="4" '
        f'contype="1" conaffinity="3" friction="{table_friction} 0.005 0.0001"/>'
        if table
        else ""
    )
    return f"""<mujoco model="{model_name}">
  <compiler angle="radian" autolimits="true"{compiler_extra}/>
  <option timestep="{1.0 / sim_hz}" integrator="implicitfast" cone="pyramidal"{option_extra}>\
<flag multiccd="enable"/></option>
  <visual><global offwidth="{camera_size[0]}" offheight="{camera_size[1]}"/><quality shadowsize="0"/>
    <headlight ambient="0.45 0.45 0.45" diffuse="0.5 0.5 0.5" specular="0 0 0"/></visual>
  <default><geom solref="0.004 1" solimp="0.95 0.99 0.001"/></default>
  <asset>{"".join(asset_xml)}</asset>
  <worldbody>
    <light name="sun" directional="true" dir="0 0 -1" pos="0 0 3" diffuse="0.3 0.3 0.3" castshadow="false"/>{floor_xml}
    {table_xml}
    {robot_body}
    {"".join(objects_xml)}
  </worldbody>
  <actuator>{"".join(actuators)}</actuator>{f"<contact>{contact_xml}</contact>" if contact_xml else ""}
</mujoco>"""
