"""SimplerEnv-style Google-robot and Bridge tasks (rebuilt in MuJoCo) as a suite backend.

Suite files pick it with ``backend: simpler``::

    backend: simpler
    backend_options:
      protocol: visual_matching        # visual_matching (reference look) | variant_aggregation (simulated base look)
      gripper: auto                    # auto (Google: relative, Bridge: absolute, as SimplerEnv) | absolute | relative
      exclude_from_aggregate: []       # splits reported but not averaged (camera shifts)
      task_groups: {}                  # group name -> tasks, averaged as SimplerEnv's calc_metrics reports them
      extension: false                 # true: a protocol SimplerEnv lacks (labelled so in tables and the report)
    success_rule: final_step           # SimplerEnv judges the last step

Episode *i* of a (task, split) uses the task's initial configuration *i* (passed to ``reset``
as ``config_id``); a suite asking a task for more episodes than its grid holds is rejected,
so no configuration runs twice within a split.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, StrictBool

from vla_eval.backends import Backend, BackendOptions, ProtocolTable
from vla_eval.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    from vla_eval.spec import SuiteSpec

KNOWN_CAMERAS = ("agentview", "wrist")
PROTOCOL_LOOK = {"visual_matching": "visual_matching", "variant_aggregation": "simulated"}
TaskGroups = dict[str, list[str]]
"""``backend_options.task_groups``: group name -> tasks, averaged together as SimplerEnv's calc_metrics reports them."""


class SimplerOptions(BackendOptions):
    """``backend_options`` of a ``simpler`` suite (see the module docstring)."""

    protocol: Literal["visual_matching", "variant_aggregation"] = "visual_matching"
    gripper: Literal["auto", "absolute", "relative"] = "auto"
    exclude_from_aggregate: list[str] = Field(default_factory=list)
    task_groups: TaskGroups = Field(default_factory=dict)
    extension: StrictBool = False


def validate_task_groups(groups: TaskGroups, spec: "SuiteSpec", source: str) -> None:
    """Every task a group names is a task of this suite (the model cannot know the suite's tasks)."""
    suite_tasks = [t.name for t in spec.tasks]
    for group, members in groups.items():
        bad = sorted(set(members) - set(suite_tasks))
        if bad:
            raise ConfigError(
                f"{source}: field 'backend_options.task_groups.{group}': {bad} are not tasks of this suite"
            )


def validate_tasks(spec: "SuiteSpec", source: str, kind: str, known: list[str]) -> None:
    """Every suite task is one of ``known`` (``kind`` names them in the error), and no task asks for more
    episodes than its configuration grid holds (episode *i* runs configuration *i*: more would repeat)."""
    from vla_eval.sims.simpler.tasks import get_task

    for i, task in enumerate(spec.tasks):
        if task.name not in known:
            raise ConfigError(f"{source}: field 'tasks.{i}': {UnknownNameError(kind, task.name, known)}")
        grid = len(get_task(task.name).configs)
        if spec.task_episodes(task.name) > grid:
            raise ConfigError(
                f"{source}: field 'tasks.{i}' ({task.name}): {spec.task_episodes(task.name)} episodes asked, "
                f"but the task has {grid} distinct configurations (episodes would repeat)"
            )


def protocol_tables(spec: "SuiteSpec", summary: Any) -> list[ProtocolTable]:
    """SimplerEnv's calc_metrics aggregate: task groups (their mean is the headline), then per-task means."""
    from vla_eval.sims.simpler.protocol import group_aggregation, protocol_title, variant_aggregation

    if summary.empty:
        return []
    suite = spec.model_dump(mode="json")
    groups = group_aggregation(summary, suite)
    if groups.empty:
        return []
    tasks = variant_aggregation(summary, suite)
    rows = [
        (f"group: {r.group}", f"{100 * r.aggregate:.1f}", str(r.cells), str(r.episodes)) for r in groups.itertuples()
    ]
    rows += [
        (f"task: {r.task}", f"{100 * r.aggregate:.1f}", str(r.splits), str(r.episodes)) for r in tasks.itertuples()
    ]
    header = (
        f"{protocol_title(suite)} (mean over splits, then over a group's cells)",
        "success %",
        "cells / splits",
        "episodes",
    )
    return [
        ProtocolTable(
            header,
            tuple(rows),
            headline=float(groups.iloc[-1]["aggregate"]),
            headline_label="SimplerEnv-style aggregate % (mean over task groups)",
        )
    ]


def config_reset_options(task: str, episode_index: int) -> dict[str, Any]:
    """Episode *i* of a task resets to its configuration *i* (an IndexError past the grid)."""
    from vla_eval.sims.simpler.tasks import get_task

    get_task(task).config(episode_index)
    return {"config_id": int(episode_index)}


class SimplerBackend(Backend[SimplerOptions]):
    name = "simpler"
    expert = "simpler_scripted"
    options_model = SimplerOptions

    def task_names(self) -> list[str]:
        from vla_eval.sims.simpler.tasks import TASKS

        return sorted(TASKS)

    def validate_suite(self, spec: "SuiteSpec", source: str) -> None:
        from vla_eval.sims.simpler.looks import split_variants
        from vla_eval.sims.tabletop.perturbations import validate_perturbations

        opts = self.options(spec, source)
        validate_task_groups(opts.task_groups, spec, source)
        splits = [s.name for s in spec.splits]
        bad = sorted(set(opts.exclude_from_aggregate) - set(splits))
        if bad:
            raise ConfigError(
                f"{source}: field 'backend_options.exclude_from_aggregate': {bad} are not splits of this suite {splits}"
            )
        validate_tasks(spec, source, "simpler task", self.task_names())
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
                    _, rest = split_variants(split.perturbations_for(task.name))
                    for p in validate_perturbations(rest):
                        if p.type in ("object_layout", "language"):
                            raise ValueError(f"perturbation {p.type!r} is not supported by simpler tasks")
                except ValueError as exc:
                    raise ConfigError(
                        f"{source}: field 'splits.{i}.{field}' (split {split.name!r}, task {task.name!r}): {exc}"
                    ) from exc
        if len(spec.settle_action) != 7:
            raise ConfigError(f"{source}: field 'settle_action': expected 7 numbers, got {len(spec.settle_action)}")

    def make_env(self, spec: "SuiteSpec", task: str, split: str, cameras: list[str], depth: bool = False):
        from vla_eval.sims.simpler.env import SimplerEnv

        opts = self.options(spec)
        return SimplerEnv(
            task=task,
            look=PROTOCOL_LOOK[opts.protocol],
            cameras=tuple(cameras),
            image_size=tuple(spec.image_size),
            depth=depth,
            perturbations=spec.split(split).perturbations_for(task),
            gripper_mode=None if opts.gripper == "auto" else opts.gripper,
        )

    def episode_reset_options(self, spec: "SuiteSpec", task: str, episode_index: int) -> dict[str, Any] | None:
        return config_reset_options(task, episode_index)

    def versions(self) -> dict[str, str]:
        import mujoco

        from vla_eval.sims.simpler import ASSET_VERSION

        return {"mujoco": mujoco.__version__, "simpler_assets": ASSET_VERSION}

    def protocol_tables(self, spec: "SuiteSpec", summary: Any) -> list[ProtocolTable]:
        return protocol_tables(spec, summary)

    def protocol_summary(self, spec: "SuiteSpec", summary: Any) -> str | None:
        from vla_eval.sims.simpler.protocol import protocol_markdown

        return protocol_markdown(summary, spec.model_dump(mode="json"))
