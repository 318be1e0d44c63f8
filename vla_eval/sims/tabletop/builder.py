"""Compose the MJCF of one scene: base robot + table file, plus the scene's objects and fixtures.

Composition is plain ``xml.etree`` text surgery so the result can be dumped and inspected
(``build_xml(spec)``). The base file's ``home`` keyframe is lifted out and returned
separately, because its qpos length no longer matches once objects add joints.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np

from vla_eval.geometry import yaw_to_quat
from vla_eval.sims.tabletop.scene import SceneError, SceneSpec, envs_dir

BASE_FILE = "tabletop_base.xml"
ARM_JOINTS = tuple(f"joint{i}" for i in range(1, 8))
FINGER_JOINTS = ("finger_joint1", "finger_joint2")


@dataclass(frozen=True)
class BuiltScene:
    xml: str
    home_qpos: np.ndarray
    """Robot part of qpos (7 arm + 2 fingers) from the base file's ``home`` key."""
    home_ctrl: np.ndarray


def _fmt(values) -> str:
    return " ".join(f"{float(v):.6g}" for v in values)


def _object_body(obj) -> ET.Element:
    body = ET.Element("body", name=obj.name, pos=_fmt(obj.pos))
    if obj.free:
        ET.SubElement(body, "freejoint", name=f"{obj.name}_joint")
    geom = ET.SubElement(
        body,
        "geom",
        name=obj.name,
        type=obj.shape,
        size=_fmt(obj.size),
        rgba=_fmt(obj.rgba),
        mass=f"{obj.mass:.6g}",
        friction=_fmt(obj.friction),
        condim="4" if obj.free else "3",
    )
    if not obj.collide:
        geom.set("contype", "0")
        geom.set("conaffinity", "0")
    ET.SubElement(body, "site", name=obj.name, size="0.005", rgba="0 0 0 0", group="4")
    return body


def _fixture_parts(fixture) -> tuple[ET.Element, list[ET.Element]]:
    """The fixture's top-level body (renamed and posed) and its other top-level sections."""
    path = envs_dir() / "assets" / fixture.file
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise SceneError(f"fixture {fixture.name!r}: field 'file': cannot load {path}: {exc}") from None
    bodies = root.find("worldbody").findall("body") if root.find("worldbody") is not None else []
    if len(bodies) != 1:
        raise SceneError(f"fixture {fixture.name!r}: {path} must hold exactly one top-level <body> in <worldbody>")
    body = bodies[0]
    body.set("name", fixture.name)
    body.set("pos", _fmt(fixture.pos))
    body.set("quat", _fmt(yaw_to_quat(fixture.yaw)))
    others = [child for child in root if child.tag not in ("worldbody",)]
    return body, others


def build_scene(spec: SceneSpec, image_size: tuple[int, int] = (128, 128)) -> BuiltScene:
    root = ET.parse(envs_dir() / "assets" / BASE_FILE).getroot()
    keyframe = root.find("keyframe")
    key = keyframe.find("key[@name='home']")
    home_qpos = np.array(key.get("qpos").split(), dtype=float)
    home_ctrl = np.array(key.get("ctrl").split(), dtype=float)
    root.remove(keyframe)

    glob = root.find("visual/global")
    glob.set("offwidth", str(max(int(glob.get("offwidth", 640)), int(image_size[1]))))
    glob.set("offheight", str(max(int(glob.get("offheight", 480)), int(image_size[0]))))

    worldbody = root.find("worldbody")
    for obj in spec.objects:
        worldbody.append(_object_body(obj))
    for fixture in spec.fixtures:
        body, sections = _fixture_parts(fixture)
        worldbody.append(body)
        for section in sections:
            existing = root.find(section.tag)
            if existing is None:
                root.append(section)
            else:
                existing.extend(list(section))
    return BuiltScene(ET.tostring(root, encoding="unicode"), home_qpos, home_ctrl)


def build_xml(spec: SceneSpec) -> str:
    return build_scene(spec).xml
