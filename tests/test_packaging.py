"""Installs like a real package: a wheel that carries its data, and entry-point plugins."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from vla_eval import paths

ROOT = Path(__file__).resolve().parent.parent


def _clean_env(**extra) -> dict:
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VLA_EVAL_SUITES_PATH", "VLA_EVAL_POLICIES_PATH")
    }
    env.update(MUJOCO_GL="egl", PYTHONUNBUFFERED="1", **extra)
    return env


def test_paths_find_bundled_data_when_installed(tmp_path, monkeypatch):
    """An installed wheel has no top-level folders; the copies under vla_eval/_data are used."""
    bundled = tmp_path / "_data"
    (bundled / "suites").mkdir(parents=True)
    (bundled / "suites" / "only_here.yaml").write_text("name: only_here\n")
    monkeypatch.setattr(paths, "BUNDLED_DATA", bundled)
    assert paths.data_root() == bundled
    assert paths.builtin_dir("envs") == bundled / "envs"
    assert "only_here" in paths.list_named_yaml("suites")


def test_source_layout_reads_the_top_level_folders():
    assert paths.builtin_dir("suites") == ROOT / "suites"
    assert paths.find_named_yaml("suites", "tabletop_basic") == ROOT / "suites" / "tabletop_basic.yaml"


# ------------------------------------------------------------------ entry points


def _plugin_dist(where: Path) -> Path:
    """A tiny installed third-party package (code + dist-info with entry points) in ``where``."""
    pkg = where / "vla_demo_plugin"
    (pkg / "suites").mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        textwrap.dedent('''
        import numpy as np
        from vla_eval.policies.base import ActionChunk, Policy


        class HoldStill(Policy):
            """A third-party policy: zero motion, gripper open."""

            name = "demo_hold_still"
            needs_images = False

            def predict(self, obs_batch):
                a = np.zeros((len(obs_batch), 1, 7))
                a[..., -1] = -1
                return ActionChunk(actions=a, extras=[{"from_plugin": True}] * len(obs_batch))
    ''')
    )
    (pkg / "suites" / "__init__.py").write_text("")
    (pkg / "suites" / "demo_plugin_suite.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "demo_plugin_suite",
                "backend": "tabletop",
                "tasks": ["push_block"],
                "episodes_per_task": 1,
                "max_steps": 3,
                "cameras": ["agentview"],
                "image_size": [32, 32],
            }
        )
    )
    info = where / "vla_demo_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vla-demo-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[vla_eval.policies]\ndemo_hold_still = vla_demo_plugin:HoldStill\n\n"
        "[vla_eval.suites]\ndemo = vla_demo_plugin.suites\n"
    )
    return where


@pytest.mark.slow
def test_installed_plugin_adds_a_policy_and_a_suite(tmp_path):
    site = _plugin_dist(tmp_path / "site")
    env = _clean_env(PYTHONPATH=os.pathsep.join([str(ROOT), str(site)]))
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "vla_eval", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
        )

    pol = cli("list", "policies")
    assert pol.returncode == 0, pol.stderr
    assert "demo_hold_still" in pol.stdout and "plugin vla-demo-plugin" in pol.stdout
    suites = cli("list", "suites")
    assert "demo_plugin_suite" in suites.stdout and str(site / "vla_demo_plugin" / "suites") in suites.stdout
    run = cli(
        "run",
        "--suite",
        "demo_plugin_suite",
        "--policy",
        "demo_hold_still",
        "--workers",
        "1",
        "--no-progress",
        "--run-dir",
        str(tmp_path / "run"),
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "push_block" in run.stdout and "suite mean" in run.stdout


# ------------------------------------------------------------------ the wheel


def _site_packages_of_this_env() -> list[str]:
    return [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv_and_runs_from_any_folder(tmp_path):
    """`pip install` of the built wheel (not editable), then `vla-eval` from an unrelated folder."""
    src = tmp_path / "src"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for rel in files:
        if rel.startswith(("tests/", "benchmarks/", "docs/", "results/")) or not (ROOT / rel).is_file():
            continue
        dst = src / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes((ROOT / rel).read_bytes())
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(dist),
            str(src),
        ],
        check=True,
        env=_clean_env(),
        capture_output=True,
        timeout=300,
    )
    (wheel,) = dist.glob("vla_eval-*.whl")

    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True, timeout=120
    )
    vpy = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # reuse this environment's dependencies (no network); the wheel's own files come first on sys.path
    Path(purelib, "_deps_from_test_env.pth").write_text("\n".join(_site_packages_of_this_env()) + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(vpy), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
        env=_clean_env(),
        capture_output=True,
        timeout=300,
    )

    cwd = tmp_path / "anywhere"
    cwd.mkdir()
    env = _clean_env()
    where = subprocess.run(
        [str(vpy), "-c", "import vla_eval; print(vla_eval.__file__)"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(purelib), where
    exe = venv / "bin" / "vla-eval"
    listed = subprocess.run([str(exe), "list", "suites"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "tabletop_basic" in listed.stdout and str(Path(purelib, "vla_eval", "_data", "suites")) in listed.stdout
    shown = {line.split()[0] for line in listed.stdout.splitlines() if line.strip()}
    assert {p.stem for p in (ROOT / "suites").glob("*.yaml")} <= shown, (
        listed.stdout
    )  # every suite, not just the default
    # the SimplerEnv asset manifest travels in the wheel: `assets fetch` knows every file and sha256 without the repo
    manifests = list(Path(purelib, "vla_eval", "assets", "manifests").glob("*.sha256"))
    assert manifests and all(m.stat().st_size > 0 for m in manifests)
    run = subprocess.run(
        [
            str(exe),
            "run",
            "--suite",
            "tabletop_basic",
            "--policy",
            "scripted",
            "--episodes",
            "1",
            "--workers",
            "1",
            "--no-progress",
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "suite mean" in run.stdout and "pick_place_cube" in run.stdout
    runs = list((cwd / "results").iterdir())
    assert len(runs) == 1 and (runs[0] / "episodes.sqlite").is_file()
