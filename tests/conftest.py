import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("LP_NUM_THREADS", "1")


import pathlib  # noqa: E402

import pytest  # noqa: E402


def shared_simpler_assets() -> pathlib.Path | None:
    """The folder holding ``simpler-real2sim/`` for tests: ``$VLA_EVAL_ASSETS`` if set, else
    ``shared/assets`` in the repository's parent folder or any folder above it (CI and the
    worktrees have ``../shared``); None when neither exists."""
    env = os.environ.get("VLA_EVAL_ASSETS")
    candidates = [pathlib.Path(env)] if env else []
    repo = pathlib.Path(__file__).resolve().parent.parent
    candidates += [p / "shared" / "assets" for p in repo.parents]
    for c in candidates:
        if (c / "simpler-real2sim" / "SHA256SUMS").is_file() or (c / "simpler-real2sim" / "LICENSE").is_file():
            return c
    return None


@pytest.fixture
def simpler_assets(monkeypatch) -> pathlib.Path:
    """Points VLA_EVAL_ASSETS at the shared SimplerEnv assets, or skips saying where they were looked for."""
    root = shared_simpler_assets()
    if root is None:
        pytest.skip(
            "SimplerEnv assets not found: set VLA_EVAL_ASSETS to a folder holding simpler-real2sim/ "
            "(vla-eval assets fetch simpler), or provide ../shared/assets/simpler-real2sim"
        )
    monkeypatch.setenv("VLA_EVAL_ASSETS", str(root))
    return root / "simpler-real2sim"


@pytest.fixture(scope="session")
def simpler_assets_dir() -> pathlib.Path:
    """The shared ``simpler-real2sim`` folder for session/module fixtures (no env change), or skip."""
    root = shared_simpler_assets()
    if root is None:
        pytest.skip(
            "SimplerEnv assets not found: set VLA_EVAL_ASSETS to a folder holding simpler-real2sim/ "
            "(vla-eval assets fetch simpler), or provide ../shared/assets/simpler-real2sim"
        )
    return root / "simpler-real2sim"


@pytest.fixture(scope="session")
def mesh_cache(tmp_path_factory) -> pathlib.Path:
    """One converted-mesh cache (VLA_EVAL_CACHE) for the whole session: converting costs seconds per model."""
    return tmp_path_factory.mktemp("vla_eval_cache")


SLOW_TIMEOUT_S = 900
"""Time limit of a ``slow`` test without its own ``@pytest.mark.timeout``: real rollouts on a loaded
2-core machine can pass the default 300 s (pyproject.toml), and a hang must still end."""


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("slow") is not None and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))
