"""First frames of the SimplerEnv-robot visual-matching tasks beside SimplerEnv's overlay photo,
and the cost of a step and of a composite frame (``python -m vla_eval.envs.simpler_real.pictures``).

Each PNG is ``[our first frame | SimplerEnv's photo]`` at half SimplerEnv's 640x480, for a
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

    from vla_eval.envs.simpler_real.bridge import REAL_TASKS, BridgeRealEnv

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for task in tasks or sorted(REAL_TASKS):
        env = BridgeRealEnv(task, cameras=())
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


def speed(task: str = "bridge_put_carrot_on_plate", steps: int = 30, image_size=(256, 256), render_scale: float = 1.0) -> dict[str, float]:
    """Milliseconds: physics + control per step; native render + segmentation + composite; resize."""
    from vla_eval.envs.simpler_real.bridge import BridgeRealEnv
    from vla_eval.envs.simpler_real.overlay import resize_rgb

    env = BridgeRealEnv(task, cameras=(), render_scale=render_scale)
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
    return {"step_ms_no_camera": round(step_ms, 2), f"composite_{w}x{h}_ms": round(frame_ms, 2),
            f"resize_to_{image_size[0]}x{image_size[1]}_ms": round(resize_ms, 2),
            "step_with_frame_ms": round(step_ms + frame_ms + resize_ms, 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("docs/simpler_vm"))
    p.add_argument("--config", type=int, default=0)
    p.add_argument("--speed", action="store_true", help="also print per-step and per-frame cost")
    args = p.parse_args(argv)
    for path in first_frames(args.out, config_id=args.config):
        print(path)
    if args.speed:
        print(json.dumps(speed(), indent=1))
        print(json.dumps(speed(render_scale=0.5), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
