"""SimplerEnv visual matching on SimplerEnv's own robots, objects, cameras and real photos (MuJoCo, CPU).

Suite files pick it with ``backend: simpler_real``. The tasks are the SimplerEnv-style tasks
of :mod:`vla_eval.sims.simpler.tasks` (same names, grids, step limits and rules; episode *i*
uses configuration *i*), staged with the asset pack that ``vla-eval assets fetch simpler``
installs (:mod:`vla_eval.assets`). The protocol is visual matching, the gripper SimplerEnv's
(Bridge: absolute; Google robot: relative). Google-robot splits named after one of SimplerEnv's URDF
colourings (``recolor_tabletop_visual_matching_1`` ...) load that URDF. Options::

    backend_options:
      render_scale: 1.0   # < 1: render below SimplerEnv's 640x480 before resizing (faster on a CPU; an extension)
      task_groups: {}     # group name -> tasks, averaged together as SimplerEnv's calc_metrics reports them
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from vla_eval.backends import Backend, BackendOptions, ProtocolTable
from vla_eval.errors import ConfigError
from vla_eval.sims.simpler.backend import (
    TaskGroups,
    config_reset_options,
    protocol_tables,
    validate_task_groups,
    validate_tasks,
)

if TYPE_CHECKING:
    from vla_eval.spec import SuiteSpec


class SimplerRealOptions(BackendOptions):
    """``backend_options`` of a ``simpler_real`` suite (see the module docstring)."""

    render_scale: float = 1.0
    task_groups: TaskGroups = Field(default_factory=dict)

    @field_validator("render_scale", mode="before")
    @classmethod
    def _scale(cls, value: Any) -> float:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.1 <= float(value) <= 1.0:
            raise ValueError(f"expected a number in [0.1, 1.0], got {value!r}")
        return float(value)


class SimplerRealBackend(Backend[SimplerRealOptions]):
    name = "simpler_real"
    expert = "simpler_scripted"
    options_model = SimplerRealOptions

    def task_names(self) -> list[str]:
        from vla_eval.sims.simpler.real2sim.google_env import GOOGLE_REAL_TASKS
        from vla_eval.sims.simpler.real2sim.widowx_env import REAL_TASKS

        return sorted(REAL_TASKS) + sorted(GOOGLE_REAL_TASKS)

    @staticmethod
    def urdf_version(split: str) -> str:
        """Google-robot splits named after SimplerEnv's URDF colourings use that URDF; any other split the plain one."""
        from vla_eval.sims.simpler.real2sim.google_robot import URDF_VERSIONS

        return split if split in URDF_VERSIONS else ""

    def validate_suite(self, spec: "SuiteSpec", source: str) -> None:
        validate_task_groups(self.options(spec, source).task_groups, spec, source)
        validate_tasks(spec, source, "simpler_real task", self.task_names())
        if list(spec.cameras) != ["agentview"]:
            raise ConfigError(
                f"{source}: field 'cameras': the visual-matching scene has one camera, ['agentview'], "
                f"got {list(spec.cameras)}"
            )
        for i, split in enumerate(spec.splits):
            for task in spec.tasks:
                if split.perturbations_for(task.name):
                    raise ConfigError(
                        f"{source}: field 'splits.{i}' (split {split.name!r}): "
                        "backend simpler_real has no perturbations"
                    )
        if len(spec.settle_action) != 7:
            raise ConfigError(f"{source}: field 'settle_action': expected 7 numbers, got {len(spec.settle_action)}")

    def check_ready(self, spec: "SuiteSpec") -> None:
        """Before any worker starts: the asset pack must be installed (the error names the command)."""
        from vla_eval.assets import SIMPLER, require_pack

        require_pack(SIMPLER)

    def make_env(self, spec: "SuiteSpec", task: str, split: str, cameras: list[str], depth: bool = False):
        if depth:
            raise ConfigError("backend simpler_real renders no depth")
        return make_port_env(
            task,
            cameras=tuple(cameras),
            image_size=tuple(spec.image_size),
            render_scale=self.options(spec).render_scale,
            urdf_version=self.urdf_version(split),
        )

    def episode_reset_options(self, spec: "SuiteSpec", task: str, episode_index: int) -> dict[str, Any] | None:
        return config_reset_options(task, episode_index)

    def protocol_tables(self, spec: "SuiteSpec", summary: Any) -> list[ProtocolTable]:
        return protocol_tables(spec, summary)

    def protocol_summary(self, spec: "SuiteSpec", summary: Any) -> str | None:
        """SimplerEnv's calc_metrics aggregate (per task group, then per task), as for the Panda-look suites."""
        from vla_eval.sims.simpler.protocol import protocol_markdown

        return protocol_markdown(summary, spec.model_dump(mode="json"))

    def versions(self) -> dict[str, str]:
        import mujoco

        from vla_eval.assets import SIMPLER

        return {"mujoco": mujoco.__version__, "simpler_real2sim": f"{SIMPLER.upstream_repo}@{SIMPLER.commit}"}


def make_port_env(
    task: str,
    cameras: tuple[str, ...] = ("agentview",),
    image_size: tuple[int, int] | None = None,
    render_scale: float = 1.0,
    urdf_version: str = "",
):
    """One task of the MuJoCo port (gymnasium id ``vla_eval/Simpler<Task>-Real-v0``); ``image_size`` ``None`` is
    SimplerEnv's full camera frame (640x512 Google, 640x480 WidowX)."""
    from vla_eval.sims.simpler.real2sim.google_env import GOOGLE_REAL_TASKS, GoogleRealEnv
    from vla_eval.sims.simpler.real2sim.widowx_env import BridgeRealEnv

    google = task in GOOGLE_REAL_TASKS
    size = tuple(image_size) if image_size is not None else ((512, 640) if google else (480, 640))
    if google:
        return GoogleRealEnv(
            task=task, cameras=tuple(cameras), image_size=size, render_scale=render_scale, urdf_version=urdf_version
        )
    if urdf_version:
        raise ValueError(f"urdf_version {urdf_version!r}: task {task!r} has one robot URDF")
    return BridgeRealEnv(task=task, cameras=tuple(cameras), image_size=size, render_scale=render_scale)
