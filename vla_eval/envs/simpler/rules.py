"""SimplerEnv success-rule geometry shared by every embodiment of a task (one definition).

The Panda-look env (:mod:`vla_eval.envs.simpler.env`) and the SimplerEnv-robot env
(:mod:`vla_eval.envs.simpler_real.bridge`) measure positions, extents and contacts in their
own scenes and pass them here, so the thresholds live in one place.
"""

from __future__ import annotations

import numpy as np

ON_TOP_XY_MARGIN = 0.003
"""put_on_in_scene.py PutOnInSceneEnv.evaluate: ``xy_flag = |offset_xy| <= |tgt_half_xy| + 0.003``."""


def on_top(p_src, p_tgt, src_half, tgt_half, z_offset: float) -> bool:
    """SimplerEnv's bounding-box 'source on target' test (before the contact check)."""
    off = np.asarray(p_src, float) - np.asarray(p_tgt, float)
    xy_ok = float(np.linalg.norm(off[:2])) <= float(np.linalg.norm(np.asarray(tgt_half, float)[:2])) + ON_TOP_XY_MARGIN
    z_ok = off[2] > 0 and off[2] - float(tgt_half[2]) - float(src_half[2]) <= float(z_offset)
    return bool(xy_ok and z_ok)
