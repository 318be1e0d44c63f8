"""URDF -> MJCF conversion for SimplerEnv's robots (a small, explicit converter).

MuJoCo can compile a URDF itself, but it fuses fixed-joint links (the end-effector frame
``ee_gripper_link`` would vanish), drops visual geoms and knows no mimic joints. This
converter keeps every link as a body (fixed joints become joint-less child bodies), keeps
the visual meshes (group 2, no collisions) apart from the collision meshes (group 3),
turns ``<mimic>`` into a joint equality, and draws each visual mesh as its ``.mtl`` says: with
the ``map_Kd`` texture where the OBJ has texture coordinates (the Google robot's arm, whose
four URDF colourings differ only in their texture atlas ``meta_diffuse.png``, as SAPIEN draws
them), else in one colour (``Kd``, or the mean of the ``map_Kd`` image: the WidowX OBJs carry
no texture coordinates). Meshes MuJoCo cannot read (the Google robot's ``.glb``) are converted
to OBJ geometry on first use.

The forward kinematics of the result are tested against an independent numpy evaluation
of the URDF's joint chain and against MuJoCo's own URDF compiler
(tests/sims/simpler/real2sim/test_robots.py).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vla_eval.errors import ConfigError
from vla_eval.geometry import euler_to_mat, euler_to_quat


def _floats(text: str | None, n: int, default: float = 0.0) -> tuple[float, ...]:
    if text is None:
        return (default,) * n
    vals = tuple(float(v) for v in text.split())
    if len(vals) != n:
        raise ConfigError(f"expected {n} numbers, got {text!r}")
    return vals


def _origin(el: ET.Element | None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if el is None:
        return (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)
    return _floats(el.get("xyz"), 3), _floats(el.get("rpy"), 3)


def _fmt(vals) -> str:
    return " ".join(f"{v:.10g}" for v in vals)


def mtl_rgba(obj_path: Path) -> tuple[float, float, float, float]:
    """The colour an OBJ's material shows: the mean of its ``map_Kd`` image if any, else ``Kd``."""
    mtl = obj_path.with_suffix(".mtl")
    if not mtl.is_file():
        return (0.5, 0.5, 0.5, 1.0)
    kd, tex = (0.8, 0.8, 0.8), None
    for line in mtl.read_text(errors="replace").splitlines():
        parts = line.split()
        if parts[:1] == ["Kd"]:
            kd = tuple(float(v) for v in parts[1:4])
        elif parts[:1] == ["map_Kd"]:
            tex = mtl.parent / " ".join(parts[1:])
    if tex is not None and tex.is_file():
        from PIL import Image

        with Image.open(tex) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0
        kd = tuple(float(v) for v in arr.reshape(-1, 3).mean(axis=0))
    return (*kd, 1.0)


def mtl_texture(obj_path: Path) -> Path | None:
    """The image an OBJ's material maps onto it (``map_Kd``), or None when there is none or the OBJ has no texture
    coordinates to map it with."""
    mtl = obj_path.with_suffix(".mtl")
    if not mtl.is_file():
        return None
    tex = None
    for line in mtl.read_text(errors="replace").splitlines():
        parts = line.split()
        if parts[:1] == ["map_Kd"]:
            tex = mtl.parent / " ".join(parts[1:])
    if tex is None or not tex.is_file():
        return None
    with obj_path.open("rb") as f:
        has_uv = any(line.startswith(b"vt ") for line in f)
    return tex if has_uv else None


@dataclass
class MjcfParts:
    """The pieces of a converted robot, to be placed into a scene's MJCF."""

    assets: list[str] = field(default_factory=list)
    body: str = ""  # the root link's <body> with everything below it
    equalities: list[str] = field(default_factory=list)
    joints: list[str] = field(default_factory=list)  # movable joints in URDF order
    joint_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)


def srgb_from_linear(c: float) -> float:
    """One linear colour channel as the sRGB value a display shows (IEC 61966-2-1). SAPIEN treats URDF material
    colours as linear and writes sRGB images; MuJoCo's renderer writes the rgba it is given."""
    c = min(max(float(c), 0.0), 1.0)
    return 12.92 * c if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055


def urdf_to_mjcf_parts(
    urdf_path: Path,
    prefix: str = "",
    root_pos=(0.0, 0.0, 0.0),
    root_quat=(1.0, 0.0, 0.0, 0.0),
    rgba_override: dict[str, tuple[float, float, float, float]] | None = None,
    joint_attrs: str = "",
    massless_visuals: bool = False,
    linear_colors: bool = False,
    name_collisions: bool = False,
    split_collisions: bool = False,
) -> MjcfParts:
    """Convert ``urdf_path`` into MJCF fragments; names get ``prefix`` (meshes, bodies, joints).

    Mesh files are referenced by absolute path, so the result compiles from any folder. A primitive visual takes
    its URDF ``<material>`` colour (named at the root or inline; ``linear_colors``: converted from linear to sRGB).
    ``joint_attrs`` is added to every movable joint (e.g. SimplerEnv's cabinet joint friction and damping).
    ``massless_visuals``: visual geoms add no mass (links without ``<inertial>`` then weigh what their collision
    shapes do at the default density, as in SAPIEN); off by default, as the robots' links all declare inertials.
    ``name_collisions``: a named ``<collision>`` becomes the geom ``<prefix><link>/<name>`` (a success rule may
    test contacts with one shape, as SimplerEnv's drawer-floor test does).
    ``split_collisions``: a collision mesh file becomes one geom per convex piece, as SAPIEN's URDF loader makes them
    with ``load_multiple_collisions_from_file`` (ManiSkill2's robots, :func:`meshes.mesh_file_pieces`); otherwise MuJoCo
    takes one convex hull over the whole file.
    """
    urdf_path = Path(urdf_path)
    try:
        root = ET.parse(urdf_path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise ConfigError(f"{urdf_path}: cannot read URDF: {exc}") from exc
    links = {lk.get("name"): lk for lk in root.findall("link")}
    children: dict[str, list[ET.Element]] = {}
    child_names = set()
    for j in root.findall("joint"):
        parent, child = j.find("parent").get("link"), j.find("child").get("link")
        children.setdefault(parent, []).append(j)
        child_names.add(child)
    roots = [n for n in links if n not in child_names]
    if len(roots) != 1:
        raise ConfigError(f"{urdf_path}: expected one root link, found {roots}")
    parts = MjcfParts()
    meshes: dict[str, str] = {}
    materials: dict[Path, str] = {}
    rgba_override = rgba_override or {}

    def material_rgba(el: ET.Element | None) -> tuple[float, ...] | None:
        if el is None:
            return None
        color = el.find("color")
        if color is None:
            color = named_colors.get(el.get("name", ""))
        if color is None:
            return None
        rgba = _floats(color.get("rgba"), 4)
        return tuple(srgb_from_linear(c) for c in rgba[:3]) + (rgba[3],) if linear_colors else rgba

    named_colors = {m.get("name"): m.find("color") for m in root.findall("material") if m.find("color") is not None}

    def mesh_assets(filename: str, scale, pieces: bool = False) -> list[str]:
        path = (urdf_path.parent / filename.replace("package://", "")).resolve()
        if not path.is_file():
            raise ConfigError(f"{urdf_path}: mesh {filename!r} not found at {path}")
        from vla_eval.sims.simpler.real2sim.meshes import mesh_file_pieces, mujoco_mesh_file

        # .glb / .dae: converted (geometry only) and cached
        files = mesh_file_pieces(path) if pieces else [mujoco_mesh_file(path)]
        names = []
        for file in files:
            key = f"{file}|{_fmt(scale)}"
            if key not in meshes:
                name = f"{prefix}mesh{len(meshes)}_{file.stem}"
                meshes[key] = name
                parts.assets.append(f'<mesh name="{name}" file="{file}" scale="{_fmt(scale)}"/>')
            names.append(meshes[key])
        return names

    def texture_material(tex: Path) -> str:
        if tex not in materials:
            name = f"{prefix}mat{len(materials)}_{tex.stem}"
            materials[tex] = name
            parts.assets.append(f'<texture name="{name}" type="2d" file="{tex.resolve()}"/>')
            parts.assets.append(f'<material name="{name}" texture="{name}"/>')
        return materials[tex]

    def geoms(link: ET.Element) -> list[str]:
        out = []
        for kind in ("visual", "collision"):
            for el in link.findall(kind):
                xyz, rpy = _origin(el.find("origin"))
                g = el.find("geometry")
                m, box, cyl, sph = g.find("mesh"), g.find("box"), g.find("cylinder"), g.find("sphere")
                attrs = f'pos="{_fmt(xyz)}" quat="{_fmt(euler_to_quat(rpy, "sxyz"))}"'
                shapes: list[str] = []
                if m is not None:
                    scale = _floats(m.get("scale"), 3, 1.0)
                    split = split_collisions and kind == "collision"
                    shapes = [f'type="mesh" mesh="{n}"' for n in mesh_assets(m.get("filename"), scale, split)]
                    shape = shapes[0]
                    src = (urdf_path.parent / m.get("filename")).resolve()
                elif box is not None:
                    shape = f'type="box" size="{_fmt(np.array(_floats(box.get("size"), 3)) / 2)}"'
                    src = None
                elif cyl is not None:
                    shape = (
                        f'type="cylinder" size="{float(cyl.get("radius")):.10g} {float(cyl.get("length")) / 2:.10g}"'
                    )
                    src = None
                elif sph is not None:
                    shape = f'type="sphere" size="{float(sph.get("radius")):.10g}"'
                    src = None
                else:
                    continue
                textured = kind == "visual" and src is not None and src.suffix == ".obj"
                tex = mtl_texture(src) if textured and link.get("name") not in rgba_override else None
                if tex is not None:
                    mass = ' density="0"' if massless_visuals else ""
                    out.append(
                        f'<geom {shape} {attrs} group="2" contype="0" conaffinity="0"{mass} '
                        f'material="{texture_material(tex)}"/>'
                    )
                elif kind == "visual":
                    rgba = (
                        rgba_override.get(link.get("name"))
                        or (mtl_rgba(src) if src is not None and src.suffix == ".obj" else None)
                        or (material_rgba(el.find("material")) if src is None else None)
                        or (0.5, 0.5, 0.5, 1)
                    )
                    mass = ' density="0"' if massless_visuals else ""
                    out.append(
                        f'<geom {shape} {attrs} group="2" contype="0" conaffinity="0"{mass} rgba="{_fmt(rgba)}"/>'
                    )
                else:
                    base = f"{prefix}{link.get('name')}/{el.get('name')}" if name_collisions and el.get("name") else ""
                    pieces = shapes or [shape]
                    for n, piece in enumerate(pieces):
                        label = f"{base}#{n}" if base and len(pieces) > 1 else base
                        name = f' name="{label}"' if label else ""
                        out.append(f'<geom{name} {piece} {attrs} group="3" rgba="0.5 0.5 0.5 0"/>')
        return out

    def inertial(link: ET.Element) -> str:
        el = link.find("inertial")
        if el is None:
            return ""
        xyz, rpy = _origin(el.find("origin"))
        mass = float(el.find("mass").get("value"))
        i = el.find("inertia")
        ixx, iyy, izz, ixy, ixz, iyz = (float(i.get(k, 0)) for k in ("ixx", "iyy", "izz", "ixy", "ixz", "iyz"))
        inertia = np.array([[ixx, ixy, ixz], [ixy, iyy, iyz], [ixz, iyz, izz]])
        rot = euler_to_mat(rpy, "sxyz")
        full = rot @ inertia @ rot.T  # MuJoCo takes one of quat / fullinertia: express it in the link frame
        vals, vecs = np.linalg.eigh(full)
        if vals.min() <= 0:  # the Google robot's finger nails: an inertia no body can have; keep its axes, floor it
            full = vecs @ np.diag(np.maximum(np.abs(vals), 1e-9)) @ vecs.T
        return (
            f'<inertial pos="{_fmt(xyz)}" mass="{mass:.10g}" '
            f'fullinertia="{_fmt((full[0, 0], full[1, 1], full[2, 2], full[0, 1], full[0, 2], full[1, 2]))}"/>'
        )

    def body(name: str, joint: ET.Element | None, depth: int) -> str:
        link = links[name]
        if joint is None:
            pos, quat = root_pos, root_quat
        else:
            xyz, rpy = _origin(joint.find("origin"))
            pos, quat = xyz, euler_to_quat(rpy, "sxyz")
        lines = [f'<body name="{prefix}{name}" pos="{_fmt(pos)}" quat="{_fmt(quat)}">', inertial(link)]
        if joint is not None and joint.get("type") in ("revolute", "prismatic", "continuous"):
            jname = joint.get("name")
            axis = _floats(joint.find("axis").get("xyz") if joint.find("axis") is not None else "1 0 0", 3)
            jtype = "slide" if joint.get("type") == "prismatic" else "hinge"
            lim = joint.find("limit")
            rng = ""
            if joint.get("type") != "continuous" and lim is not None:
                lo, hi = float(lim.get("lower", 0)), float(lim.get("upper", 0))
                rng = f' limited="true" range="{lo:.10g} {hi:.10g}"'
                parts.joint_ranges[jname] = (lo, hi)
            extra = f" {joint_attrs}" if joint_attrs else ""
            lines.append(f'<joint name="{prefix}{jname}" type="{jtype}" axis="{_fmt(axis)}"{rng}{extra}/>')
            parts.joints.append(jname)
            mimic = joint.find("mimic")
            if mimic is not None:
                mult, off = float(mimic.get("multiplier", 1)), float(mimic.get("offset", 0))
                parts.equalities.append(
                    f'<joint joint1="{prefix}{jname}" joint2="{prefix}{mimic.get("joint")}" '
                    f'polycoef="{off:.10g} {mult:.10g} 0 0 0"/>'
                )
        elif joint is not None and joint.get("type") != "fixed":
            raise ConfigError(f"{urdf_path}: joint {joint.get('name')!r} has unsupported type {joint.get('type')!r}")
        lines += geoms(link)
        for j in children.get(name, []):
            lines.append(body(j.find("child").get("link"), j, depth + 1))
        lines.append("</body>")
        return "\n".join(x for x in lines if x)

    parts.body = body(roots[0], None, 0)
    return parts


def standalone_mjcf(parts: MjcfParts, name: str = "robot") -> str:
    """A model with only the robot (fixed base), for kinematics checks."""
    return (
        f'<mujoco model="{name}"><compiler angle="radian" balanceinertia="true"/><asset>{"".join(parts.assets)}</asset>'
        f"<worldbody>{parts.body}</worldbody><equality>{''.join(parts.equalities)}</equality></mujoco>"
    )
