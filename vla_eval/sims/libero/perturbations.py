"""Out-of-domain perturbations for LIBERO (after LIBERO-Plus / LIBERO-PRO).

A split in a suite file declares a list of perturbations, each a mapping with a ``type``
and its parameters, e.g.::

    splits:
      - name: camera_shift
        out_of_domain: true
        perturbations:
          - {type: camera, camera: agentview, dpos: [0.0, 0.05, 0.0], drot_deg: [0, 0, 5], dfovy_deg: 5}

Validation (:func:`validate_perturbations`) needs no LIBERO install; application lives in
:mod:`vla_eval.sims.libero.env`. Model-level perturbations (camera, lighting, table texture)
are applied once when the env is built; episode-level ones (robot / object initial state,
image noise, paraphrase) are drawn from the episode seed at every ``reset``, so episode *i*
of a split is reproducible and paired with episode *i* in-domain.
"""

from __future__ import annotations

from typing import Any

CAMERAS = ("agentview", "wrist")

# type -> {param: (kind, default)}; kind is "float", "vec3", "int", "str", "str_or_list", "variant"
SCHEMA: dict[str, dict[str, tuple[str, Any]]] = {
    "camera": {
        "camera": ("str", "agentview"),
        "dpos": ("vec3", [0.0, 0.0, 0.0]),  # metres, world frame
        "drot_deg": ("vec3", [0.0, 0.0, 0.0]),  # roll/pitch/yaw about the camera's own x/y/z axes
        "dfovy_deg": ("float", 0.0),
    },
    "lighting": {
        "diffuse_scale": ("float", 1.0),  # multiplies every light's (and the headlight's) diffuse colour
        "ambient": ("float", None),  # replaces the headlight ambient (0..1) if given
        "tint": ("vec3", [1.0, 1.0, 1.0]),  # per-channel multiplier on diffuse colour
        "dpos": ("vec3", [0.0, 0.0, 0.0]),  # moves every scene light (metres)
    },
    "table_texture": {
        "pattern": ("str", "checker"),  # checker | stripes | solid | noise
        "color_a": ("vec3", [0.55, 0.35, 0.2]),
        "color_b": ("vec3", [0.9, 0.9, 0.85]),
        "cells": ("int", 8),  # pattern period across the texture
    },
    "robot_init": {
        "joint_std_rad": ("float", 0.05),  # Gaussian on each of the 7 arm joints, clipped to joint range
    },
    "object_init": {
        "max_shift_m": ("float", 0.03),  # uniform in a disc of this radius, per movable object
        "objects": ("str_or_list", "all"),  # "all" or a list of object names
    },
    "paraphrase": {
        "variant": ("variant", "seeded"),  # an index into the task's paraphrase list, or "seeded"
    },
    "libero_pro": {
        # an official LIBERO-PRO suite (e.g. libero_spatial_lan): its BDDL, init states and instruction
        "suite": ("str", None),
    },
    "image_noise": {
        "std": ("float", 8.0),  # Gaussian, in uint8 intensity units
        "salt_pepper": ("float", 0.0),  # fraction of pixels set to 0 or 255
    },
}
PATTERNS = ("checker", "stripes", "solid", "noise")


def validate_perturbations(perturbations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check types and parameters; return the list with defaults filled in. Raises ValueError."""
    out = []
    seen: set[str] = set()
    for i, p in enumerate(perturbations):
        if not isinstance(p, dict) or "type" not in p:
            raise ValueError(f"item {i}: expected a mapping with a 'type' key, got {p!r}")
        kind = p["type"]
        if kind not in SCHEMA:
            raise ValueError(f"item {i}: unknown perturbation type {kind!r}, expected one of {sorted(SCHEMA)}")
        if kind in seen and kind != "camera":
            raise ValueError(f"item {i}: perturbation type {kind!r} given twice")
        seen.add(kind)
        schema = SCHEMA[kind]
        unknown = sorted(set(p) - set(schema) - {"type"})
        if unknown:
            raise ValueError(f"item {i} ({kind}): unknown parameter(s) {unknown}, expected {sorted(schema)}")
        full: dict[str, Any] = {"type": kind}
        for name, (ptype, default) in schema.items():
            value = p.get(name, default)
            full[name] = _check(kind, i, name, ptype, value)
        if kind == "camera" and full["camera"] not in CAMERAS:
            raise ValueError(f"item {i} (camera): camera must be one of {list(CAMERAS)}, got {full['camera']!r}")
        if kind == "table_texture" and full["pattern"] not in PATTERNS:
            raise ValueError(
                f"item {i} (table_texture): pattern must be one of {list(PATTERNS)}, got {full['pattern']!r}"
            )
        if kind == "table_texture" and full["cells"] < 1:
            raise ValueError(f"item {i} (table_texture): cells must be >= 1")
        for name in ("joint_std_rad", "max_shift_m", "std", "salt_pepper", "diffuse_scale"):
            if name in full and full[name] is not None and full[name] < 0:
                raise ValueError(f"item {i} ({kind}): {name} must be >= 0, got {full[name]}")
        if kind == "image_noise" and full["salt_pepper"] > 1:
            raise ValueError(f"item {i} (image_noise): salt_pepper is a fraction in [0, 1]")
        out.append(full)
    return out


def _check(kind: str, i: int, name: str, ptype: str, value: Any) -> Any:
    where = f"item {i} ({kind}): parameter {name!r}"
    if ptype == "float":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where} must be a number, got {value!r}")
        return float(value)
    if ptype == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where} must be an integer, got {value!r}")
        return value
    if ptype == "vec3":
        if (
            not isinstance(value, (list, tuple))
            or len(value) != 3
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        ):
            raise ValueError(f"{where} must be a list of 3 numbers, got {value!r}")
        return [float(v) for v in value]
    if ptype == "str":
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a string, got {value!r}")
        return value
    if ptype == "str_or_list":
        if value == "all":
            return "all"
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{where} must be 'all' or a non-empty list of object names, got {value!r}")
        return list(value)
    if ptype == "variant":
        if value == "seeded" or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            return value
        raise ValueError(f"{where} must be 'seeded' or a non-negative integer, got {value!r}")
    raise AssertionError(ptype)


def make_texture(pattern: str, color_a, color_b, cells: int, height: int, width: int, rng=None):
    """An RGB uint8 texture image (height x width x 3) for the table/floor material."""
    import numpy as np

    a = (np.clip(np.asarray(color_a), 0, 1) * 255).astype(np.uint8)
    b = (np.clip(np.asarray(color_b), 0, 1) * 255).astype(np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    if pattern == "solid":
        mask = np.zeros((height, width), bool)
    elif pattern == "stripes":
        mask = ((xx * cells) // max(width, 1)) % 2 == 1
    elif pattern == "noise":
        rng = rng or np.random.default_rng(0)
        coarse = rng.random((cells, cells)) > 0.5
        mask = coarse[(yy * cells) // max(height, 1), (xx * cells) // max(width, 1)]
    else:  # checker
        mask = (((yy * cells) // max(height, 1)) + ((xx * cells) // max(width, 1))) % 2 == 1
    img = np.where(mask[..., None], b, a)
    return np.ascontiguousarray(img, dtype=np.uint8)
