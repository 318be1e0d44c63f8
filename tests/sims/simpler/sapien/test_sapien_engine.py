"""Finding SimplerEnv's engine, and the errors a user sees when it is not installed (no engine needed)."""

from __future__ import annotations

import pytest

from vla_eval.sims.simpler.sapien import engine
from vla_eval.sims.simpler.sapien.engine import EngineNotInstalled, find_python


def test_env_var_naming_a_missing_python_is_an_error_naming_the_install_script(monkeypatch, tmp_path):
    monkeypatch.setenv(engine.PYTHON_ENV, str(tmp_path / "nope" / "python"))
    with pytest.raises(EngineNotInstalled) as e:
        find_python()
    assert "nope/python: no such file" in str(e.value)
    assert "scripts/simpler_sapien_env.sh" in str(e.value)


def test_env_var_wins_over_the_default_location(monkeypatch, tmp_path):
    py = tmp_path / "bin" / "python"
    py.parent.mkdir()
    py.write_text("")
    default = tmp_path / "data" / "vla-eval" / "simpler-sapien" / "bin" / "python"
    default.parent.mkdir(parents=True)
    default.write_text("")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv(engine.PYTHON_ENV, str(py))
    assert find_python() == py
    monkeypatch.delenv(engine.PYTHON_ENV)
    assert find_python() == default


def test_not_installed_names_where_it_looked_and_how_to_install(monkeypatch, tmp_path):
    monkeypatch.delenv(engine.PYTHON_ENV, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    where = tmp_path / "vla-eval" / "simpler-sapien" / "bin" / "python"
    monkeypatch.setattr(engine, "default_locations", lambda: [where])
    with pytest.raises(
        EngineNotInstalled,
        match=r"not installed \(looked for .*simpler-sapien/bin/python\); "
        r"install it with: bash scripts/simpler_sapien_env.sh",
    ):
        find_python()


def test_backend_refuses_to_start_a_run_without_the_engine(monkeypatch, tmp_path):
    """``vla-eval run --suite simpler_google_vm`` (or the Bridge one) stops before any worker starts, with the
    install step (exit 2)."""
    from vla_eval.backends import get_backend
    from vla_eval.spec import load_suite

    monkeypatch.setenv(engine.PYTHON_ENV, str(tmp_path / "missing"))
    for name in ("simpler_google_vm", "simpler_bridge_vm"):
        spec = load_suite(name)
        with pytest.raises(EngineNotInstalled, match="simpler_sapien_env.sh"):
            get_backend("simpler_sapien").check_ready(spec)


def test_suite_names_only_tasks_the_engine_stages():
    from vla_eval.backends import get_backend
    from vla_eval.spec import load_suite

    backend = get_backend("simpler_sapien")
    for name, size in (("simpler_google_vm", (512, 640)), ("simpler_bridge_vm", (480, 640))):
        spec = load_suite(name)
        assert spec.backend == "simpler_sapien" and {t.name for t in spec.tasks} <= set(backend.task_names())
        assert tuple(spec.image_size) == size  # SimplerEnv's full camera frame; policies resize as their wrappers do
    assert "google_pick_coke_can_horizontal" in backend.task_names()
    assert "bridge_put_carrot_on_plate" in backend.task_names()
