"""``backend: simpler_sapien``: SimplerEnv visual matching on SimplerEnv's own engine (SAPIEN PhysX, its controllers
and ``evaluate()``), with the MuJoCo port's posed scene drawing the frames on a machine without Vulkan.

A backend of its own rather than an ``engine:`` option of ``simpler_real``: that backend's options are being moved
to a pydantic model, and a separate name keeps the two engines' runs apart in the results store and reports while
the parity numbers are young. The tasks, grids, episode order, splits (URDF colourings) and options are
``simpler_real``'s; only the tasks of :data:`~vla_eval.sims.simpler.sapien.tasks.SAPIEN_TASKS` are staged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vla_eval.errors import ConfigError
from vla_eval.sims.simpler.real2sim.backend import SimplerRealBackend

if TYPE_CHECKING:
    from vla_eval.spec import SuiteSpec

IMAGE_SOURCE = "mujoco_posed"
"""Recorded with every run: frames are the MuJoCo port's scene posed from SAPIEN's state (SAPIEN's cameras need a
Vulkan device)."""


class SimplerSapienBackend(SimplerRealBackend):
    name = "simpler_sapien"
    expert = "simpler_scripted"  # SapienSimplerEnv.privileged_state: the port's fields, filled from SAPIEN's state

    def task_names(self) -> list[str]:
        from vla_eval.sims.simpler.sapien.tasks import SAPIEN_TASKS

        return sorted(SAPIEN_TASKS)

    def check_ready(self, spec: SuiteSpec) -> None:
        """The engine's interpreter and SimplerEnv's assets must be there (each error names its install step)."""
        from vla_eval.sims.simpler.sapien.engine import asset_dir, find_python

        find_python()
        super().check_ready(spec)
        asset_dir()

    def make_env(self, spec: SuiteSpec, task: str, split: str, cameras: list[str], depth: bool = False):
        from vla_eval.sims.simpler.sapien.env import SapienSimplerEnv
        from vla_eval.sims.simpler.sapien.tasks import sapien_task

        if depth:
            raise ConfigError("backend simpler_sapien renders no depth")
        version = self.urdf_version(split) if sapien_task(task).urdf_versions else ""
        return SapienSimplerEnv(
            task,
            cameras=tuple(cameras),
            image_size=tuple(spec.image_size),
            urdf_version=version,
            render_scale=self.options(spec).render_scale,
        )

    def versions(self) -> dict[str, str]:
        from vla_eval.assets import SIMPLER

        return {
            **super().versions(),
            "simpler_engine": "sapien==2.2.2 (physics only, SimplerEnv's own venv)",
            "mani_skill2_real2sim": f"{SIMPLER.upstream_repo}@{SIMPLER.commit}",
            "simpler_images": IMAGE_SOURCE,
        }
