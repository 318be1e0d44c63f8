import pytest


@pytest.fixture
def runs_root(tmp_path):
    """Where fixture runs go (a results root, as `vla-eval run --results-root` would write)."""
    return tmp_path / "results"
