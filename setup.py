"""Build step that ships the top-level data folders inside the wheel.

``suites/``, ``policies/`` and ``envs/`` stay at the repository top level (the source of
truth, docs/architecture.md §3); a non-editable build copies them to ``vla_eval/_data/`` so an installed
package finds its suites, scenes and assets (:mod:`vla_eval.paths`). Editable installs
skip the copy and read the top-level folders directly.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA_FOLDERS = ("suites", "policies", "envs")


class build_py_with_data(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        root = Path(__file__).resolve().parent
        for name in DATA_FOLDERS:
            src = root / name
            if not src.is_dir():
                continue
            dst = Path(self.build_lib) / "vla_eval" / "_data" / name
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": build_py_with_data})
