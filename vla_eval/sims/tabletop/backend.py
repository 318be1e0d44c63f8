"""The built-in MuJoCo tabletop scenes as a suite backend (the embedded default)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vla_eval.backends import Backend
from vla_eval.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    from vla_eval.spec import SuiteSpec

KNOWN_CAMERAS = ("agentview", "wrist")


class TabletopBackend(Backend):
    name = "tabletop"
    expert = "scripted"

    def task_names(self) -> list[str]:
        from vla_eval.sims.tabletop.scene import list_scenes

        return sorted(list_scenes())

    def validate_suite(self, spec: "SuiteSpec", source: str) -> None:
        from vla_eval.sims.tabletop.perturbations import apply_to_scene, validate_perturbations
        from vla_eval.sims.tabletop.scene import load_scene

        self.options(spec, source)  # tabletop takes none: a stray key is a typo, not a silent no-op
        known = self.task_names()
        for i, task in enumerate(spec.tasks):
            if task.name not in known:
                raise ConfigError(f"{source}: field 'tasks.{i}': {UnknownNameError('task', task.name, known)}")
        for cam in spec.cameras:
            if cam not in KNOWN_CAMERAS:
                raise ConfigError(
                    f"{source}: field 'cameras': unknown camera {cam!r}, expected one of {list(KNOWN_CAMERAS)}"
                )
        for i, split in enumerate(spec.splits):
            for task in spec.tasks:
                field = (
                    "perturbations" if task.name not in split.task_perturbations else f"task_perturbations.{task.name}"
                )
                try:
                    apply_to_scene(load_scene(task.name), validate_perturbations(split.perturbations_for(task.name)))
                except ValueError as exc:
                    raise ConfigError(
                        f"{source}: field 'splits.{i}.{field}' (split {split.name!r}, task {task.name!r}): {exc}"
                    ) from exc
        if len(spec.settle_action) != 7:
            raise ConfigError(f"{source}: field 'settle_action': expected 7 numbers, got {len(spec.settle_action)}")

    def make_env(self, spec: "SuiteSpec", task: str, split: str, cameras: list[str], depth: bool = False):
        from vla_eval.sims.tabletop.env import TabletopEnv

        return TabletopEnv(
            scene=task,
            cameras=tuple(cameras),
            image_size=tuple(spec.image_size),
            depth=depth,
            perturbations=spec.split(split).perturbations_for(task),
        )

    def versions(self) -> dict[str, str]:
        import mujoco

        return {"mujoco": mujoco.__version__}
