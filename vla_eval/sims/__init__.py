"""Gymnasium envs shipped with vla-eval, registered under the ``vla_eval/`` namespace.

The rendering environment variables are set here, before anything imports MuJoCo's
renderer: headless EGL, and a single llvmpipe thread so parallel workers do not
oversubscribe the CPU (both overridable from the shell).
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("LP_NUM_THREADS", "1")

from gymnasium.envs.registration import register, registry  # noqa: E402

NAMESPACE = "vla_eval"
ENTRY_POINT = "vla_eval.sims.tabletop.env:TabletopEnv"


def scene_env_id(scene: str) -> str:
    """``pick_place_cube`` -> ``vla_eval/PickPlaceCube-v0``."""
    return f"{NAMESPACE}/{''.join(part.capitalize() for part in scene.split('_'))}-v0"


def _register_all() -> None:
    from vla_eval.sims.tabletop.scene import list_scenes

    if f"{NAMESPACE}/Tabletop-v0" not in registry:
        register(id=f"{NAMESPACE}/Tabletop-v0", entry_point=ENTRY_POINT)
    for scene in list_scenes():
        env_id = scene_env_id(scene)
        if env_id not in registry:
            register(id=env_id, entry_point=ENTRY_POINT, kwargs={"scene": scene})


def registered_env_ids() -> list[str]:
    """Every gymnasium id this package registered (the generic one plus one per scene file)."""
    _register_all()
    return sorted(k for k in registry if k.startswith(f"{NAMESPACE}/"))


_register_all()

import vla_eval.sims.libero  # noqa: E402,F401  (registers vla_eval/LIBERO-v0; LIBERO itself loads lazily)
