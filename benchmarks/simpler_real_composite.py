"""Cost of one SimplerEnv visual-matching frame on SimplerEnv's robots: the one-pass composite (colour pass, the
mask from its depth buffer) against the two-pass one (colour + segmentation, SimplerEnv's actor mask), same scene,
same process, at SimplerEnv's camera size and at half of it. Prints milliseconds per frame and the ratio.

    python benchmarks/simpler_real_composite.py [--frames 30]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _time(fn, frames: int) -> float:
    fn()  # warm up the GL context
    t = time.perf_counter()
    for _ in range(frames):
        fn()
    return (time.perf_counter() - t) / frames * 1e3


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=30)
    args = p.parse_args(argv)
    from vla_eval.sims.simpler.real2sim.google_env import GoogleRealEnv
    from vla_eval.sims.simpler.real2sim.overlay import composite
    from vla_eval.sims.simpler.real2sim.widowx_env import BridgeRealEnv

    for cls, task in ((BridgeRealEnv, "bridge_put_carrot_on_plate"), (GoogleRealEnv, "google_move_near")):
        for scale in (1.0, 0.5):
            env = cls(task, cameras=(), render_scale=scale)
            try:
                env.reset(seed=0, options={"config_id": 0})
                rgb_r, seg_r = env._renderers()

                def two_pass():
                    rgb_r.update_scene(env.data, camera=env._cam, scene_option=env._opt)
                    rgb = rgb_r.render()
                    seg_r.update_scene(env.data, camera=env._cam, scene_option=env._opt)
                    return composite(rgb, seg_r.render(), env._photo, env._foreground)

                one = _time(env.render_native, args.frames)
                two = _time(two_pass, args.frames)
                agree = float(np.mean(np.all(env.render_native() == two_pass(), axis=2)))
            finally:
                env.close()
            w, h = env.render_wh
            print(
                f"{task} {w}x{h}: one pass {one:.1f} ms, two passes {two:.1f} ms, ratio {two / one:.2f}x; "
                f"pixels identical {100 * agree:.2f}%"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
