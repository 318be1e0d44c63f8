"""First frames of the SimplerEnv-robot visual-matching tasks beside SimplerEnv's overlay photo,
and the cost of a step and of a composite frame (``python -m vla_eval.sims.simpler.real2sim.pictures``).

Each PNG is ``[our first frame | SimplerEnv's photo]`` at half SimplerEnv's render size (Bridge 640x480,
Google robot 640x512), for a
person to check the alignment (table edge, robot base, object placement on the table); where
the pack has a photo of the real robot's first frame (the stack task), it is the third panel.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

REAL_FIRST_FRAME = {"bridge_stack_green_on_yellow": "real_inpainting/bridge/stack_cube_1st_frame.png"}
"""Real-robot first frames in the asset pack (same table and camera, not inpainted)."""


def first_frames(out_dir: Path, tasks: list[str] | None = None, config_id: int = 0, scale: float = 0.5) -> list[Path]:
    from PIL import Image

    from vla_eval.sims.simpler.real2sim.google_env import GOOGLE_REAL_TASKS, GoogleRealEnv
    from vla_eval.sims.simpler.real2sim.widowx_env import REAL_TASKS, BridgeRealEnv

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for task in tasks or sorted(REAL_TASKS) + sorted(GOOGLE_REAL_TASKS):
        env = GoogleRealEnv(task, cameras=()) if task in GOOGLE_REAL_TASKS else BridgeRealEnv(task, cameras=())
        try:
            env.reset(seed=0, options={"config_id": config_id})
            ours = env.render_native()
            photo = env._photo
        finally:
            env.close()
        panels = [ours, photo]
        real = env.assets / "data" / REAL_FIRST_FRAME.get(task, "-")
        if real.is_file():  # a photo of the real robot's first frame: gripper position and size to compare
            with Image.open(real) as im:
                panels.append(np.asarray(im.convert("RGB").resize((ours.shape[1], ours.shape[0]))))
        pair = np.concatenate(panels, axis=1)
        img = Image.fromarray(pair)
        if scale != 1.0:
            img = img.resize((int(pair.shape[1] * scale), int(pair.shape[0] * scale)), Image.Resampling.LANCZOS)
        path = out_dir / f"{task}_config{config_id}.png"
        img.save(path, optimize=True)
        paths.append(path)
    return paths


def compare_reference(
    reference: Path, out: Path, task: str = "google_pick_coke_can_horizontal", config_id: int | None = None
) -> dict[str, float]:
    """``[our first frame | a SimplerEnv-rendered frame | the photo]`` and how well they agree.

    ``reference`` is a frame SimplerEnv itself rendered over the same photo (e.g. SimplerEnv's
    ``images/example_visualization/google_robot_coke_can_visual_matching.png``, not in the asset pack). Both frames
    are composites over one photo, so their foreground is where they differ from it; the robot is the foreground
    right of column 450 (the can stands mid-view). ``config_id`` None picks the grid cell whose can lies nearest the
    reference's red can pixels.
    """
    from PIL import Image

    from vla_eval.sims.simpler.real2sim.google_env import GoogleRealEnv
    from vla_eval.sims.simpler.real2sim.overlay import foreground_mask

    with Image.open(reference) as im:
        ref = np.asarray(im.convert("RGB"))
    env = GoogleRealEnv(task, cameras=())
    try:
        if ref.shape[:2] != (env.render_wh[1], env.render_wh[0]):
            raise ValueError(
                f"{reference}: {ref.shape[1]}x{ref.shape[0]}, "
                f"expected SimplerEnv's {env.render_wh[0]}x{env.render_wh[1]}"
            )
        photo = env._photo.astype(int)
        fg_ref = np.abs(ref.astype(int) - photo).max(axis=2) > 40
        r = ref.astype(int)
        red = fg_ref & (r[..., 0] > 140) & (r[..., 1] < 90) & (r[..., 2] < 90)
        want = np.argwhere(red).mean(axis=0)

        def masks(cid):
            env.reset(seed=0, options={"config_id": cid})
            _, seg_r = env._renderers()
            seg_r.update_scene(env.data, camera=env._cam, scene_option=env._opt)
            seg = seg_r.render()
            return foreground_mask(seg, env._robot_geoms), foreground_mask(seg, env._obj_geoms["coke_can"])

        if config_id is None:
            dist = {
                c: float(np.linalg.norm(np.argwhere(masks(c)[1]).mean(axis=0) - want))
                for c in range(len(env.task.configs))
            }
            config_id = min(dist, key=dist.get)
        robot, can = masks(config_id)
        ours = env.render_native()
        right = np.arange(ref.shape[1])[None, :] > 450
        a, b = robot & right, fg_ref & right
        can_at = np.argwhere(can).mean(axis=0)
        stats = {
            "config_id": int(config_id),
            "robot_iou": round(float((a & b).sum() / max((a | b).sum(), 1)), 3),
            "robot_px_ours": int(a.sum()),
            "robot_px_simplerenv": int(b.sum()),
            "can_centroid_offset_px": round(float(np.linalg.norm(can_at - want)), 1),
        }
        pair = np.concatenate([ours, ref, env._photo], axis=1)
    finally:
        env.close()
    Image.fromarray(pair).resize((pair.shape[1] // 2, pair.shape[0] // 2), Image.Resampling.LANCZOS).save(
        out, optimize=True
    )
    return stats


def speed(
    task: str = "bridge_put_carrot_on_plate", steps: int = 30, image_size=(256, 256), render_scale: float = 1.0
) -> dict[str, float]:
    """Milliseconds: physics + control per step; native render + segmentation + composite; resize."""
    from vla_eval.sims.simpler.real2sim.google_env import GOOGLE_REAL_TASKS, GoogleRealEnv
    from vla_eval.sims.simpler.real2sim.overlay import resize_rgb
    from vla_eval.sims.simpler.real2sim.widowx_env import BridgeRealEnv

    cls = GoogleRealEnv if task in GOOGLE_REAL_TASKS else BridgeRealEnv
    env = cls(task, cameras=(), render_scale=render_scale)
    try:
        env.reset(seed=0, options={"config_id": 0})
        action = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0])
        t = time.perf_counter()
        for _ in range(steps):
            env.step(action)
        step_ms = (time.perf_counter() - t) / steps * 1e3
        env.render_native()  # warm up the GL contexts
        t = time.perf_counter()
        for _ in range(steps):
            frame = env.render_native()
        frame_ms = (time.perf_counter() - t) / steps * 1e3
        t = time.perf_counter()
        for _ in range(steps):
            resize_rgb(frame, *image_size)
        resize_ms = (time.perf_counter() - t) / steps * 1e3
    finally:
        env.close()
    w, h = env.render_wh
    return {
        "step_ms_no_camera": round(step_ms, 2),
        f"composite_{w}x{h}_ms": round(frame_ms, 2),
        f"resize_to_{image_size[0]}x{image_size[1]}_ms": round(resize_ms, 2),
        "step_with_frame_ms": round(step_ms + frame_ms + resize_ms, 2),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("docs/simpler_vm"))
    p.add_argument("--config", type=int, default=0)
    p.add_argument("--speed", action="store_true", help="also print per-step and per-frame cost")
    p.add_argument(
        "--simplerenv-frame", type=Path, help="a frame SimplerEnv rendered for the coke-can task, to compare with"
    )
    args = p.parse_args(argv)
    for path in first_frames(args.out, config_id=args.config):
        print(path)
    if args.simplerenv_frame:
        out = args.out / "google_pick_coke_can_horizontal_vs_simplerenv.png"
        print(out, json.dumps(compare_reference(args.simplerenv_frame, out)))
    if args.speed:
        for task in ("bridge_put_carrot_on_plate", "google_pick_coke_can_standing"):
            print(task, json.dumps(speed(task), indent=1))
            print(task, json.dumps(speed(task, render_scale=0.5), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
