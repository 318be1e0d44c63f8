"""The episode plan: every episode of a run, fixed before anything runs.

Seeds come from a hash of (suite seed, task, episode index), never from timing, worker
count or completion order, so the same plan gives the same episodes on 1 worker or 8.
The seed deliberately ignores the split: episode *i* of every split starts from the
same sampled layout, so the in-domain vs out-of-domain difference is a paired comparison.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

from vla_eval.errors import ConfigError
from vla_eval.spec import SuiteSpec

MAX_PLAN_EPISODES = 1_000_000
"""Most episodes one run may plan. The plan, the store's done-keys and the gate's bookkeeping are
held in memory (about 1 KB an episode all told), and a million episodes is weeks of simulation;
``--episodes 1000000000`` was a typo that took gigabytes before failing with a raw ``MemoryError``."""


@dataclass(frozen=True, order=True)
class PlanItem:
    task: str
    split: str
    episode_index: int
    init_state_id: int
    seed: int

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.task, self.split, self.episode_index)

    @property
    def env_key(self) -> tuple[str, str]:
        """Episodes with the same env key can share one live env."""
        return (self.task, self.split)

    def to_dict(self) -> dict:
        return asdict(self)


def episode_seed(suite_seed: int, task: str, episode_index: int) -> int:
    digest = hashlib.sha256(f"{suite_seed}/{task}/{episode_index}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def plan_size(spec: SuiteSpec) -> int:
    """How many episodes :func:`build_plan` lists, computed without listing them."""
    return sum(spec.task_episodes(t.name) for t in spec.tasks for s in spec.splits if s.applies_to(t.name))


def check_plan_size(spec: SuiteSpec, source: str | None = None) -> int:
    """The plan's size, or a :class:`ConfigError` naming the suite, the count and the limit."""
    n = plan_size(spec)
    if n > MAX_PLAN_EPISODES:
        raise ConfigError(
            f"{source or 'suite ' + spec.name}: {n} episodes ({spec.episodes_per_task} per task over the tasks and "
            f"splits) exceed the limit of {MAX_PLAN_EPISODES} per run; lower --episodes or episodes_per_task"
        )
    return n


def build_plan(spec: SuiteSpec) -> list[PlanItem]:
    from vla_eval.backends import get_backend

    check_plan_size(spec)
    backend = get_backend(spec.backend)
    items = []
    for task in spec.tasks:
        for split in spec.splits:
            if not split.applies_to(task.name):
                continue
            for i in range(spec.task_episodes(task.name)):
                items.append(
                    PlanItem(
                        task=task.name,
                        split=split.name,
                        episode_index=i,
                        init_state_id=backend.init_state_id(spec, i),
                        seed=episode_seed(spec.seed, task.name, i),
                    )
                )
    return items


def balanced_order(items: list[PlanItem]) -> list[PlanItem]:
    """The same items, round-robin over (task, split) cells: every prefix is balanced.

    A gated run looks at its results part-way; launching episodes cell by cell (as the
    plan is listed) would make an early look all one task. Sorting by episode index,
    then by the cell's position in the plan, is deterministic and keeps the plan itself
    (seeds, init states) untouched.
    """
    rank = {key: j for j, key in enumerate(dict.fromkeys(i.env_key for i in items))}
    return sorted(items, key=lambda it: (it.episode_index, rank[it.env_key]))
