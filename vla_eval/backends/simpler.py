"""SimplerEnv-style Google-robot and Bridge tasks (rebuilt in MuJoCo) as a suite backend.

Suite files pick it with ``backend: simpler``::

    backend: simpler
    backend_options:
      protocol: visual_matching        # visual_matching (reference look) | variant_aggregation (simulated base look)
      gripper: absolute                # absolute | relative (sticky delta gripper, SimplerEnv's Google robot)
      exclude_from_aggregate: []       # variant-aggregation splits reported but not averaged (camera shifts)

Episode *i* of a task uses the task's initial configuration ``i % len(configs)`` (passed to
``reset`` as ``config_id``), so episode counts walk SimplerEnv-style grids deterministically.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vla_eval.backends import Backend
from vla_eval.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    from vla_eval.spec import SuiteSpec

KNOWN_CAMERAS = ("agentview", "wrist")
PROTOCOL_LOOK = {"visual_matching": "visual_matching", "variant_aggregation": "simulated"}
OPTION_DEFAULTS: dict[str, Any] = {"protocol": "visual_matching", "gripper": "absolute", "exclude_from_aggregate": []}


def backend_options(spec: "SuiteSpec") -> dict[str, Any]:
    return {**OPTION_DEFAULTS, **spec.backend_options}


class SimplerBackend(Backend):
    name = "simpler"

    def task_names(self) -> list[str]:
        from vla_eval.envs.simpler.tasks import TASKS

        return sorted(TASKS)

    def validate_suite(self, spec: "SuiteSpec", source: str) -> None:
        from vla_eval.envs.simpler.env import GRIPPER_MODES
        from vla_eval.envs.simpler.looks import split_variants
        from vla_eval.envs.tabletop.perturbations import validate_perturbations

        opts = spec.backend_options
        unknown = sorted(set(opts) - set(OPTION_DEFAULTS))
        if unknown:
            raise ConfigError(f"{source}: field 'backend_options': unknown option(s) {unknown}, expected {sorted(OPTION_DEFAULTS)}")
        opts = backend_options(spec)
        if opts["protocol"] not in PROTOCOL_LOOK:
            raise ConfigError(f"{source}: field 'backend_options.protocol': expected one of {list(PROTOCOL_LOOK)}, got {opts['protocol']!r}")
        if opts["gripper"] not in GRIPPER_MODES:
            raise ConfigError(f"{source}: field 'backend_options.gripper': expected one of {list(GRIPPER_MODES)}, got {opts['gripper']!r}")
        splits = [s.name for s in spec.splits]
        bad = sorted(set(opts["exclude_from_aggregate"]) - set(splits))
        if bad:
            raise ConfigError(f"{source}: field 'backend_options.exclude_from_aggregate': {bad} are not splits of this suite {splits}")
        known = self.task_names()
        for i, task in enumerate(spec.tasks):
            if task.name not in known:
                raise ConfigError(f"{source}: field 'tasks.{i}': {UnknownNameError('simpler task', task.name, known)}")
        for cam in spec.cameras:
            if cam not in KNOWN_CAMERAS:
                raise ConfigError(f"{source}: field 'cameras': unknown camera {cam!r}, expected one of {list(KNOWN_CAMERAS)}")
        for i, split in enumerate(spec.splits):
            for task in spec.tasks:
                field = "perturbations" if task.name not in split.task_perturbations else f"task_perturbations.{task.name}"
                try:
                    _, rest = split_variants(split.perturbations_for(task.name))
                    for p in validate_perturbations(rest):
                        if p.type in ("object_layout", "language"):
                            raise ValueError(f"perturbation {p.type!r} is not supported by simpler tasks")
                except ValueError as exc:
                    raise ConfigError(f"{source}: field 'splits.{i}.{field}' (split {split.name!r}, task {task.name!r}): {exc}") from exc
        if len(spec.settle_action) != 7:
            raise ConfigError(f"{source}: field 'settle_action': expected 7 numbers, got {len(spec.settle_action)}")

    def make_env(self, spec: "SuiteSpec", task: str, split: str, cameras: list[str], depth: bool = False):
        from vla_eval.envs.simpler.env import SimplerEnv

        opts = backend_options(spec)
        return SimplerEnv(
            task=task,
            look=PROTOCOL_LOOK[opts["protocol"]],
            cameras=tuple(cameras),
            image_size=tuple(spec.image_size),
            depth=depth,
            perturbations=spec.split(split).perturbations_for(task),
            gripper_mode=opts["gripper"],
        )

    def episode_reset_options(self, spec: "SuiteSpec", task: str, episode_index: int) -> dict[str, Any] | None:
        from vla_eval.envs.simpler.tasks import get_task

        return {"config_id": episode_index % len(get_task(task).configs)}

    def versions(self) -> dict[str, str]:
        import mujoco

        from vla_eval.envs.simpler import ASSET_VERSION

        return {"mujoco": mujoco.__version__, "simpler_assets": ASSET_VERSION}

    def protocol_summary(self, spec: "SuiteSpec", summary: Any) -> str | None:
        from vla_eval.envs.simpler.protocol import aggregated_splits, variant_aggregation

        if backend_options(spec).get("protocol") != "variant_aggregation":
            return None
        agg = variant_aggregation(summary, spec.model_dump(mode="json"))
        if agg.empty:
            return None
        rows = "\n".join(f"| {r.task} | {100 * r.aggregate:.1f} |" for r in agg.itertuples())
        used = ", ".join(aggregated_splits(spec.model_dump(mode="json")))
        return (f"Variant aggregation (mean over splits: {used}; camera-shift splits reported, not aggregated)\n\n"
                f"| task | aggregate % |\n|---|---|\n{rows}")
