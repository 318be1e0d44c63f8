"""A new simulator is one folder plus one registration line (docs/extending.md, "Add a backend").

The toy backend below is written to a temporary folder exactly as a third party would ship
it: a one-file env honouring the observation contract, a Backend subclass with a typed
options model and its tasks, a suite YAML, and one entry point line in its dist-info. It is
then run end to end through the ``vla-eval run`` CLI, so nothing in the runner, the store,
the table or the report may need to know its name.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from vla_eval.store import RunStore

ROOT = Path(__file__).resolve().parent.parent

TOY_ENV = '''
"""A scene with nothing in it: task ``toy_wait`` succeeds once the arm has held still for
``wait_steps`` steps, ``toy_never`` never does."""

import gymnasium as gym
import numpy as np

from vla_eval.sims.contract import ObservationContract

TASKS = {"toy_wait": "wait for the bell", "toy_never": "wait forever"}


class ToyEnv(gym.Env):
    def __init__(self, task, wait_steps, cameras, image_size):
        self.task, self.wait_steps = task, wait_steps
        self.observation_contract = ObservationContract(cameras=tuple(cameras), image_size=tuple(image_size),
                                                        image_origin="top_left")
        self.action_space = gym.spaces.Box(-1.0, 1.0, (7,), np.float32)
        self.steps = 0

    def _obs(self):
        h, w = self.observation_contract.image_size
        return {
            "images": {c: np.full((h, w, 3), 40 * self.steps % 256, np.uint8)
                       for c in self.observation_contract.cameras},
            "state": {"eef_pos": np.zeros(3), "eef_quat": np.array([1.0, 0, 0, 0]), "gripper_qpos": np.zeros(2),
                      "joint_pos": np.zeros(7)},
            "instruction": TASKS[self.task],
        }

    def _success(self):
        return self.task == "toy_wait" and self.steps >= self.wait_steps

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        return self._obs(), {"success": False}

    def step(self, action):
        self.steps += 1
        return self._obs(), float(self._success()), self._success(), False, {"success": self._success()}
'''

TOY_BACKEND = """
from pydantic import Field

from vla_eval.backends import Backend, BackendOptions


class ToyOptions(BackendOptions):
    wait_steps: int = Field(default=2, ge=1)


class ToyBackend(Backend[ToyOptions]):
    name = "toy"
    options_model = ToyOptions

    def task_names(self):
        from toy_sim.env import TASKS

        return sorted(TASKS)

    def make_env(self, spec, task, split, cameras, depth=False):
        from toy_sim.env import ToyEnv

        return ToyEnv(task, self.options(spec).wait_steps, cameras, spec.image_size)

    def protocol_facts(self, spec):
        return {"wait_steps": self.options(spec).wait_steps}
"""


def _toy_package(site: Path) -> Path:
    """``toy_sim`` (env + backend) and its dist-info, whose one entry point line registers the backend."""
    pkg = site / "toy_sim"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "env.py").write_text(textwrap.dedent(TOY_ENV))
    (pkg / "backend.py").write_text(textwrap.dedent(TOY_BACKEND))
    info = site / "toy_sim-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-sim\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[vla_eval.backends]\ntoy = toy_sim.backend:ToyBackend\n")
    return site


def _suite(where: Path, **options) -> Path:
    path = where / "toy.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "toy",
                "backend": "toy",
                "tasks": ["toy_wait", "toy_never"],
                "episodes_per_task": 2,
                "max_steps": 5,
                "cameras": ["agentview"],
                "image_size": [16, 16],
                "backend_options": options,
            }
        )
    )
    return path


def _cli(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(site)]), PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "vla_eval", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_a_toy_backend_package_runs_end_to_end_through_the_cli(tmp_path):
    site = _toy_package(tmp_path / "site")
    suite = _suite(tmp_path, wait_steps=3)
    run_dir = tmp_path / "run"

    envs = _cli(site, tmp_path, "list", "envs")
    assert envs.returncode == 0, envs.stderr
    assert "toy: toy_never, toy_wait" in envs.stdout

    run = _cli(
        site,
        tmp_path,
        "run",
        "--suite",
        str(suite),
        "--policy",
        "noop",
        "--workers",
        "1",
        "--run-dir",
        str(run_dir),
        "--no-progress",
    )
    assert run.returncode == 0, run.stderr
    rows = {line.split("|")[1].strip(): line for line in run.stdout.splitlines() if line.startswith("| toy_")}
    assert set(rows) == {"toy_wait", "toy_never"}, run.stdout
    assert "| 100.0" in rows["toy_wait"] and "| 0.0" in rows["toy_never"], run.stdout

    with RunStore(run_dir, readonly=True) as store:
        records = sorted(store.records(), key=lambda r: (r.task, r.episode_index))
    got = [(r.task, r.episode_index, r.success, r.steps, r.termination, r.instruction) for r in records]
    assert got == [
        ("toy_never", 0, False, 5, "timeout", "wait forever"),
        ("toy_never", 1, False, 5, "timeout", "wait forever"),
        ("toy_wait", 0, True, 3, "success", "wait for the bell"),  # wait_steps from backend_options, not the default 2
        ("toy_wait", 1, True, 3, "success", "wait for the bell"),
    ]

    report = _cli(site, tmp_path, "report", str(run_dir.parent), "-o", str(tmp_path / "site_out"))
    assert report.returncode == 0, report.stderr
    assert "toy\\_wait" in (tmp_path / "site_out" / "index.md").read_text()


@pytest.mark.slow
def test_a_toy_backend_option_error_names_the_file_and_field(tmp_path):
    site = _toy_package(tmp_path / "site")
    suite = _suite(tmp_path, wait_steps=0, colour="red")
    run = _cli(
        site,
        tmp_path,
        "run",
        "--suite",
        str(suite),
        "--policy",
        "noop",
        "--workers",
        "1",
        "--run-dir",
        str(tmp_path / "run"),
        "--no-progress",
    )
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    assert str(suite) in lines[0]
    assert "field 'backend_options': unknown option(s) ['colour'], expected ['wait_steps']" in lines[0]
    assert "field 'backend_options.wait_steps': Input should be greater than or equal to 1, got 0" in lines[0]
