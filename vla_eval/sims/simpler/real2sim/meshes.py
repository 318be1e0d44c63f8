"""SimplerEnv's object models (``.dae`` / ``.glb``) as OBJ + PNG files MuJoCo can load.

MuJoCo reads OBJ and STL only. Each visual model is converted once with trimesh (pycollada
for COLLADA) into one OBJ per sub-mesh (scene-graph transforms applied, texture
coordinates kept) and its base-colour texture as a PNG (down-sized to at most
``MAX_TEXTURE`` pixels a side: SimplerEnv's 4096x4096 towel and spoon textures would cost
50 MB each and show no more detail at 640x480). Results are cached under
``cache_root()/simpler-meshes/<model>-<hash>/``; the hash covers the source file and this
converter's version, so a changed input is never served stale.

Collision shapes come from ``collision.obj`` split into its sub-objects and their connected pieces (MuJoCo
collides with each mesh's convex hull, as SAPIEN does with ``add_multiple_collisions_from_file``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vla_eval.errors import ConfigError

CONVERTER_VERSION = 5
MAX_TEXTURE = 1024


def cache_root() -> Path:
    env = os.environ.get("VLA_EVAL_CACHE")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vla-eval"


@dataclass(frozen=True)
class VisualPart:
    obj: Path
    texture: Path | None
    rgba: tuple[float, float, float, float]
    emission: float = 0.0  # MuJoCo material emission: 1 = the colour is shown unlit ("baked" models)


def _write_obj(path: Path, vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray | None) -> None:
    lines = [f"v {x:.7g} {y:.7g} {z:.7g}" for x, y, z in vertices]
    if uv is not None:
        lines += [f"vt {u:.7g} {v:.7g}" for u, v in uv]
        lines += [f"f {a + 1}/{a + 1} {b + 1}/{b + 1} {c + 1}/{c + 1}" for a, b, c in faces]
    else:
        lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    path.write_text("\n".join(lines) + "\n")


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def visual_parts(model_dir: Path) -> list[VisualPart]:
    """The converted visual sub-meshes of one object model (converting on first use)."""
    src = next(
        (model_dir / n for n in ("textured.obj", "textured.dae", "textured.glb") if (model_dir / n).is_file()), None
    )
    if src is None:
        raise ConfigError(f"{model_dir}: no textured.obj / textured.dae / textured.glb visual model")
    out_dir = cache_root() / "simpler-meshes" / f"{model_dir.name}-{_file_hash(src)}-v{CONVERTER_VERSION}"
    index = out_dir / "parts.json"
    if index.is_file():
        return [
            VisualPart(
                Path(p["obj"]),
                Path(p["texture"]) if p["texture"] else None,
                tuple(p["rgba"]),
                float(p.get("emission", 0.0)),
            )
            for p in json.loads(index.read_text())
        ]
    import trimesh
    from PIL import Image

    scene = trimesh.load(src, force="scene")
    tmp = out_dir.with_name(out_dir.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    parts = []
    for i, mesh in enumerate(scene.dump()):
        if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
            continue
        visual = mesh.visual
        uv, tex_path, rgba, emission = None, None, (0.6, 0.6, 0.6, 1.0), 0.0
        mat = getattr(visual, "material", None)
        if mat is not None:
            factor = getattr(mat, "baseColorFactor", None)
            if factor is None:
                factor = getattr(mat, "main_color", None)
            if factor is not None:
                rgba = tuple(float(c) / 255.0 for c in np.asarray(factor, dtype=np.float64)[:4])
            glow = getattr(mat, "emissiveFactor", None)
            if glow is not None and max(rgba[:3]) < 1e-3 and float(np.max(glow)) > 0:
                # SimplerEnv's baked cubes: black diffuse, the baked colour as COLLADA emission (SAPIEN shows it unlit)
                rgba, emission = (*(float(c) for c in glow[:3]), 1.0), 1.0
            image = getattr(mat, "baseColorTexture", None) or getattr(mat, "image", None)
            glow_tex = getattr(mat, "emissiveTexture", None)
            if image is None and glow_tex is not None and max(rgba[:3]) < 1e-3:
                # SimplerEnv's baked cans (baked_*_v2 textured.glb): black base colour, the baked look as emissive
                # texture; used as the colour texture under this scene's near-unit lighting (SAPIEN shows it unlit)
                image = glow_tex
            if image is not None and getattr(visual, "uv", None) is not None:
                image = image.convert("RGB")
                if max(image.size) > MAX_TEXTURE:
                    image = image.resize((MAX_TEXTURE, MAX_TEXTURE), Image.Resampling.LANCZOS)
                tex_path = tmp / f"part{i}.png"
                image.save(tex_path)
                uv = np.asarray(visual.uv, dtype=np.float64)
                rgba = (1.0, 1.0, 1.0, 1.0)
        elif hasattr(visual, "main_color"):
            rgba = tuple(float(c) / 255.0 for c in visual.main_color[:4])
        obj = tmp / f"part{i}.obj"
        _write_obj(obj, np.asarray(mesh.vertices), np.asarray(mesh.faces), uv)
        parts.append(
            {
                "obj": str(out_dir / obj.name),
                "texture": str(out_dir / tex_path.name) if tex_path else None,
                "rgba": list(rgba),
                "emission": emission,
            }
        )
    (tmp / "parts.json").write_text(json.dumps(parts, indent=1))
    try:
        os.replace(tmp, out_dir)
    except OSError:  # another process finished first: use its copy
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return visual_parts(model_dir)


def obj_objects(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each ``o`` object of an OBJ file as (vertices, triangles), vertices renumbered per object."""
    verts: list[list[float]] = []
    objects: list[list[list[int]]] = [[]]
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("v "):
            verts.append([float(x) for x in line.split()[1:4]])
        elif line.startswith("o ") and objects[-1]:
            objects.append([])
        elif line.startswith("f "):
            idx = [int(tok.split("/")[0]) for tok in line.split()[1:]]
            idx = [i - 1 if i > 0 else len(verts) + i for i in idx]
            objects[-1] += [[idx[0], idx[k], idx[k + 1]] for k in range(1, len(idx) - 1)]
    v = np.asarray(verts, dtype=float)
    out = []
    for faces in objects:
        if not faces:
            continue
        f = np.asarray(faces, dtype=np.int64)
        used, inverse = np.unique(f, return_inverse=True)
        out.append((v[used], inverse.reshape(f.shape)))
    return out


def connected_pieces(verts: np.ndarray, faces: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """One mesh split as SAPIEN 2 splits each mesh of a collision file before taking convex hulls
    (``MeshManager::loadMeshGroup``: assimp's ``JoinIdenticalVertices`` merges corners at the same position, then
    ``splitMesh`` takes the components connected through shared vertices). SimplerEnv's spoon is one OBJ object of
    four such pieces: one hull over all of it weighed 80 g with its centre of mass 1.2 cm off, where
    SAPIEN's four hulls weigh 43 g."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    points, joined = np.unique(verts, axis=0, return_inverse=True)
    tri = joined.reshape(-1)[faces]
    a = np.concatenate([tri[:, 0], tri[:, 1], tri[:, 2]])
    b = np.concatenate([tri[:, 1], tri[:, 2], tri[:, 0]])
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(len(points), len(points)))
    n, label = connected_components(graph, directed=False)
    pieces = []
    for k in range(n):
        mine = tri[label[tri[:, 0]] == k]
        if len(mine) == 0:
            continue
        used, inverse = np.unique(mine, return_inverse=True)
        pieces.append((points[used], inverse.reshape(mine.shape)))
    return pieces


def collision_pieces(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """The convex pieces SAPIEN makes of a ``collision.obj`` (``add_multiple_collisions_from_file``): every ``o``
    object (SimplerEnv's convex decompositions: the sink's 82 pieces leave its basin open; one hull over the file
    filled it and rounded off the apple's 14 pieces), and within it every connected piece (:func:`connected_pieces`)."""
    return [piece for verts, faces in obj_objects(path) for piece in connected_pieces(verts, faces)]


def _cached_parts(out_dir: Path, build) -> list[Path]:
    """The mesh files listed in ``out_dir/parts.json``; on a miss ``build(tmp)`` writes them into a private folder and
    returns their final paths, and the folder is moved into place whole (a process that lost the race drops its
    copy and reads the winner's)."""
    index = out_dir / "parts.json"
    if not index.is_file():
        tmp = out_dir.with_name(out_dir.name + f".tmp{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / "parts.json").write_text(json.dumps(build(tmp)))
        try:
            os.replace(tmp, out_dir)
        except OSError:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return [Path(p) for p in json.loads(index.read_text())]


def _write_pieces(pieces, tmp: Path, out_dir: Path, letter: str) -> list[str]:
    paths = []
    for i, (verts, faces) in enumerate(pieces):
        _write_obj(tmp / f"{letter}{i}.obj", verts, faces, None)
        paths.append(str(out_dir / f"{letter}{i}.obj"))
    return paths


def collision_parts(model_dir: Path) -> list[Path]:
    """``collision.obj`` split into one OBJ per convex piece (:func:`collision_pieces`)."""
    src = model_dir / "collision.obj"
    if not src.is_file():
        raise ConfigError(f"{model_dir}: collision.obj is missing")
    out_dir = cache_root() / "simpler-meshes" / f"{model_dir.name}-collision-{_file_hash(src)}-v{CONVERTER_VERSION}"
    return _cached_parts(out_dir, lambda tmp: _write_pieces(collision_pieces(src), tmp, out_dir, "c"))


def mesh_file_pieces(path: Path) -> list[Path]:
    """A robot link's collision mesh file as SAPIEN loads it with ``load_multiple_collisions_from_file`` (ManiSkill2
    sets it for every robot, ``agents/base_agent.py`` L88): one cached OBJ per convex piece, each ``o`` object and
    within it each vertex-connected piece (:func:`connected_pieces`), for OBJ, STL and glTF files alike. A file of one
    piece is listed as itself (read by MuJoCo directly, or converted by :func:`mujoco_mesh_file`)."""
    out_dir = cache_root() / "simpler-meshes" / f"{path.stem}-pieces-{_file_hash(path)}-v{CONVERTER_VERSION}"

    def build(tmp: Path) -> list[str]:
        if path.suffix.lower() == ".obj":
            pieces = collision_pieces(path)
        else:
            import trimesh

            mesh = trimesh.load(path, force="mesh")
            pieces = connected_pieces(np.asarray(mesh.vertices, dtype=float), np.asarray(mesh.faces, dtype=np.int64))
        if len(pieces) <= 1:
            return [str(mujoco_mesh_file(path))]
        return _write_pieces(pieces, tmp, out_dir, "p")

    return _cached_parts(out_dir, build)


def mujoco_mesh_file(path: Path) -> Path:
    """``path`` itself if MuJoCo reads it (OBJ, STL), else its geometry as a cached OBJ
    (e.g. the Google robot's ``.glb``)."""
    if path.suffix.lower() in (".obj", ".stl", ".msh"):
        return path
    out_dir = cache_root() / "simpler-meshes" / f"{path.stem}-{_file_hash(path)}-v{CONVERTER_VERSION}"
    out = out_dir / "mesh.obj"
    if out.is_file():
        return out
    import trimesh

    mesh = trimesh.load(path, force="mesh")
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f"mesh.obj.tmp{os.getpid()}"
    _write_obj(tmp, np.asarray(mesh.vertices), np.asarray(mesh.faces), None)
    os.replace(tmp, out)
    return out
