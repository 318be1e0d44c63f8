"""SimplerEnv-style Google-robot and Bridge task families rebuilt in MuJoCo (see docs/simpler.md).

Importing this package registers one gymnasium id per task and engine:

* ``vla_eval/SimplerGooglePickCokeCanStanding-v0``: this project's Panda look (generic ``vla_eval/Simpler-v0``,
  pass ``task=...``);
* ``vla_eval/SimplerGooglePickCokeCanStanding-Real-v0``: the MuJoCo port on SimplerEnv's robots, objects and photos
  (needs ``vla-eval assets fetch simpler``);
* ``vla_eval/SimplerGooglePickCokeCanStanding-Sapien-v0``: SimplerEnv's own engine (the staged tasks; needs its
  interpreter, docs/simpler.md).

The last two take ``urdf_version`` (a Google-robot colouring), ``image_size`` (default: SimplerEnv's full camera
frame) and ``cameras``.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry  # noqa: E402

import vla_eval.sims  # noqa: F401  (rendering env vars before MuJoCo's renderer loads)

ENTRY_POINT = "vla_eval.sims.simpler.env:SimplerEnv"
ASSET_VERSION = "2"
"""Bumped whenever task geometry, grids, looks or success rules change (recorded with every run)."""


def task_env_id(task: str) -> str:
    """``google_pick_coke_can_standing`` -> ``vla_eval/SimplerGooglePickCokeCanStanding-v0``."""
    return "vla_eval/Simpler" + "".join(part.capitalize() for part in task.split("_")) + "-v0"


ENGINE_ENTRY_POINTS = {
    "Real": "vla_eval.sims.simpler.real2sim.backend:make_port_env",
    "Sapien": "vla_eval.sims.simpler.sapien.env:SapienSimplerEnv",
}


def engine_env_id(task: str, engine: str) -> str:
    """``google_pick_coke_can_standing``, ``Sapien`` -> ``vla_eval/SimplerGooglePickCokeCanStanding-Sapien-v0``."""
    return task_env_id(task).removesuffix("-v0") + f"-{engine}-v0"


def register_envs() -> list[str]:
    from vla_eval.sims.simpler.sapien.tasks import SAPIEN_TASKS
    from vla_eval.sims.simpler.tasks import TASKS

    ids = ["vla_eval/Simpler-v0"]
    if ids[0] not in registry:
        register(id=ids[0], entry_point=ENTRY_POINT)
    for name, task in TASKS.items():
        env_id = task_env_id(name)
        ids.append(env_id)
        if env_id not in registry:
            register(id=env_id, entry_point=ENTRY_POINT, kwargs={"task": name}, max_episode_steps=task.max_steps)
        for engine, entry in ENGINE_ENTRY_POINTS.items():
            if engine == "Sapien" and name not in SAPIEN_TASKS:
                continue
            env_id = engine_env_id(name, engine)
            ids.append(env_id)
            if env_id not in registry:
                register(id=env_id, entry_point=entry, kwargs={"task": name}, max_episode_steps=task.max_steps)
    return ids


register_envs()
