"""Managed environments (vla_eval/environments.py): the registry, the interpreter lookup order, the build steps,
and the serve path staying importable without the harness's heavy packages.  No environment is built here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vla_eval import environments
from vla_eval.environments import EnvironmentBuildError, EnvironmentNotBuilt


@pytest.fixture
def clean_lookup(monkeypatch, tmp_path):
    """No variable set, an empty data home and an empty checkout: nothing is found until a test puts it there."""
    for env in environments.ENVIRONMENTS.values():
        for var in (env.python_var, *env.legacy_python_vars):
            monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setattr(environments, "REPO_ROOT", tmp_path / "checkout")
    return tmp_path


def _python_at(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    return path


def test_registry_names_both_kinds_of_component():
    assert {"lerobot", "simpler-sapien"} <= set(environments.ENVIRONMENTS)
    assert environments.get("lerobot").python_var == "VLA_EVAL_ENV_LEROBOT_PYTHON"
    assert environments.get("simpler-sapien").python_var == "VLA_EVAL_ENV_SIMPLER_SAPIEN_PYTHON"
    with pytest.raises(EnvironmentNotBuilt, match=r"no managed environment named 'nope'; known: lerobot"):
        environments.get("nope")


def test_lookup_order_variable_then_data_home_then_checkout(clean_lookup, monkeypatch):
    tmp = clean_lookup
    with pytest.raises(EnvironmentNotBuilt) as e:
        environments.python_for("lerobot")
    assert "looked for" in str(e.value) and "vla-eval env create lerobot" in str(e.value)
    checkout = _python_at(tmp / "checkout" / ".venv-lerobot" / "bin" / "python")
    assert environments.python_for("lerobot") == checkout
    data = _python_at(tmp / "data" / "vla-eval" / "envs" / "lerobot" / "bin" / "python")
    assert environments.python_for("lerobot") == data
    var = _python_at(tmp / "elsewhere" / "python")
    monkeypatch.setenv("VLA_EVAL_ENV_LEROBOT_PYTHON", str(var))
    assert environments.python_for("lerobot") == var


def test_a_variable_naming_a_missing_file_is_an_error_not_a_fall_through(clean_lookup, monkeypatch):
    _python_at(clean_lookup / "checkout" / ".venv-lerobot" / "bin" / "python")
    monkeypatch.setenv("VLA_EVAL_ENV_LEROBOT_PYTHON", str(clean_lookup / "gone" / "python"))
    with pytest.raises(EnvironmentNotBuilt, match=r"\$VLA_EVAL_ENV_LEROBOT_PYTHON=.*gone/python: no such file"):
        environments.python_for("lerobot")


def test_simpler_sapien_keeps_its_older_variable_and_folder(clean_lookup, monkeypatch):
    legacy_dir = _python_at(clean_lookup / "data" / "vla-eval" / "simpler-sapien" / "bin" / "python")
    assert environments.python_for("simpler-sapien") == legacy_dir
    old_var = _python_at(clean_lookup / "old" / "python")
    monkeypatch.setenv("VLA_EVAL_SIMPLER_SAPIEN_PYTHON", str(old_var))
    assert environments.python_for("simpler-sapien") == old_var
    new_var = _python_at(clean_lookup / "new" / "python")
    monkeypatch.setenv("VLA_EVAL_ENV_SIMPLER_SAPIEN_PYTHON", str(new_var))
    assert environments.python_for("simpler-sapien") == new_var  # the shared name wins over the old one


def test_engine_find_python_uses_the_shared_lookup(clean_lookup, monkeypatch):
    from vla_eval.sims.simpler.sapien import engine

    new_default = _python_at(clean_lookup / "data" / "vla-eval" / "envs" / "simpler-sapien" / "bin" / "python")
    assert engine.find_python() == new_default


def test_create_runs_venv_then_each_pinned_step_then_the_check(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(environments, "_run", lambda cmd, what, log: calls.append(cmd))
    py = environments.create("lerobot", tmp_path / "venv", log=lambda *a: None)
    assert py == tmp_path / "venv" / "bin" / "python"
    assert calls[0][1:] == ["-m", "venv", str(tmp_path / "venv")]
    pips = [c[4:] for c in calls[1:-1]]
    assert all(c[:4] == [str(py), "-m", "pip", "install"] for c in calls[1:-1])
    # torch from the local wheels first, lerobot without its torch pin, then its other pins and the server's needs
    assert pips[0] == ["--quiet", "torch==2.14.1", "torchvision==0.29.1"]
    assert pips[1] == ["--quiet", "--no-deps", f"lerobot=={environments.LEROBOT_VERSION}"]
    assert "draccus==0.10.0" in pips[2] and "websockets>=13" in pips[2]
    assert not any(a.startswith(("torch", "torchvision", "torchcodec")) for a in pips[2])
    assert calls[-1][:2] == [str(py), "-c"]


def test_create_substitutes_variables_from_the_environment(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(environments, "_run", lambda cmd, what, log: calls.append(cmd))
    monkeypatch.setenv("SIMPLER_WHEEL", "/wheels/mani_skill2_real2sim-0.5.3-py3-none-any.whl")
    environments.create("simpler-sapien", tmp_path / "v", log=lambda *a: None)
    assert calls[2][-2:] == ["--no-deps", "/wheels/mani_skill2_real2sim-0.5.3-py3-none-any.whl"]
    monkeypatch.delenv("SIMPLER_WHEEL")
    calls.clear()
    environments.create("simpler-sapien", tmp_path / "v", log=lambda *a: None)
    assert calls[2][-1].startswith("mani_skill2_real2sim @ git+https://github.com/simpler-env/")


def test_a_failing_step_names_the_step_and_its_output(tmp_path):
    with pytest.raises(EnvironmentBuildError, match=r"boom: step failed \(exit code 3\):\nlast words"):
        environments._run(
            [sys.executable, "-c", "print('last words'); raise SystemExit(3)"], "boom: step", lambda *a: None
        )


def test_server_requirements_are_the_harness_own_lower_bounds():
    """The packages the serve path needs in a policy env carry the bounds pyproject.toml gives them."""
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    for req in environments.SERVER_REQUIREMENTS:
        assert f'"{req}"' in text, req


def test_the_serve_path_imports_without_pandas_mujoco_torch_or_lerobot():
    """A policy environment has numpy, pydantic, pyyaml, scipy, pillow, websockets and msgpack, not the harness's
    simulators or tables: building the CLI, the server and the LeRobot adapter module must not need the rest."""
    code = """
import importlib.abc, sys
BLOCK = ("pandas", "mujoco", "gymnasium", "statsmodels", "torch", "lerobot", "transformers", "robosuite")
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCK:
            raise ImportError(f"blocked {name}")
sys.meta_path.insert(0, Block())
from vla_eval.cli.main import build_parser
build_parser().parse_args(["serve", "--policy", "noop"])
import vla_eval.remote.server, vla_eval.policies.lerobot, vla_eval.remote.policy_env
from vla_eval.policies import POLICIES
assert POLICIES.get("lerobot").environment == "lerobot"
print("ok")
"""
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, env={"PYTHONPATH": str(root)}
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_harness_pythonpath_holds_only_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = environments.harness_pythonpath()
    assert [p.name for p in folder.iterdir()] == ["vla_eval"]
    assert (folder / "vla_eval").resolve() == environments.PACKAGE_DIR
    assert environments.harness_pythonpath() == folder  # idempotent
    env = environments.interpreter_env()
    assert env["PYTHONPATH"] == str(folder) and env["PYTHONNOUSERSITE"] == "1"


def test_env_cli_lists_and_names_interpreters(clean_lookup, monkeypatch, capsys):
    from vla_eval.cli.main import main

    assert main(["env", "list"]) == 0
    out = capsys.readouterr().out
    assert "lerobot" in out and "simpler-sapien" in out and "not built" in out
    assert main(["env", "python", "lerobot"]) == 2
    assert "vla-eval env create lerobot" in capsys.readouterr().err
    py = _python_at(clean_lookup / "checkout" / ".venv-lerobot" / "bin" / "python")
    assert main(["env", "python", "lerobot"]) == 0
    assert capsys.readouterr().out.strip() == str(py)


def test_policy_env_decides_in_process_or_served(clean_lookup, monkeypatch):
    from vla_eval.remote import policy_env

    class Plain:
        pass

    class Needs:
        environment = "lerobot"

    assert policy_env.foreign_python(Plain) is None and policy_env.record(Plain, None) is None
    monkeypatch.setattr(environments, "importable_here", lambda name: True)
    assert policy_env.foreign_python(Needs) is None
    monkeypatch.setattr(environments, "importable_here", lambda name: False)
    with pytest.raises(EnvironmentNotBuilt, match="vla-eval env create lerobot"):
        policy_env.foreign_python(Needs)
    py = _python_at(clean_lookup / "checkout" / ".venv-lerobot" / "bin" / "python")
    assert policy_env.foreign_python(Needs) == py
    assert "serving it from" in policy_env.announce("lerobot", Needs, py)
    # another venv's python links to the same base interpreter as ours: still another environment
    link = clean_lookup / "checkout" / ".venv-lerobot" / "bin" / "python"
    link.unlink()
    link.symlink_to(sys.executable)
    assert policy_env.foreign_python(Needs) == link
    monkeypatch.setattr(sys, "prefix", str(clean_lookup / "checkout" / ".venv-lerobot"))
    assert policy_env.foreign_python(Needs) is None  # we are that environment
