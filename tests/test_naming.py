from pathlib import Path

import pytest

from vla_eval.errors import ConfigError
from vla_eval.naming import inside, run_folder, safe_component


@pytest.mark.parametrize("name", ["x/../../../trav/evil", "..", "/etc/passwd", "a\\..\\b", "name\0with\nnul", ""])
def test_unsafe_names_become_one_component(name):
    part = safe_component(name)
    assert part and "/" not in part and "\\" not in part and ".." not in part and not part.startswith(".")


def test_ordinary_names_are_kept():
    assert safe_component("vla_r1-3b.v2") == "vla_r1-3b.v2"


def test_run_folder_stays_under_the_root(tmp_path):
    folder = run_folder(tmp_path, "suite", "x/../../evil", "20250101-000000")
    assert folder.parent == tmp_path and folder.name == "suite__x_evil__20250101-000000"


def test_inside_refuses_an_escape(tmp_path):
    with pytest.raises(ConfigError, match="outside the results root"):
        inside(tmp_path / "results", tmp_path / "results" / ".." / "elsewhere")
    assert inside(tmp_path, tmp_path / "a") == tmp_path / "a"
    assert isinstance(inside(Path("."), Path("./r")), Path)
