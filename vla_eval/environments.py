"""Managed Python environments: a component whose pins conflict with the harness's runs in its own interpreter.

Two kinds of component need this, and both use this one module:

* a **simulator** engine (SimplerEnv's SAPIEN engine needs numpy < 2; the harness runs on numpy 2), whose server
  runs in the other interpreter (``vla_eval/sims/simpler/sapien/engine.py``);
* a **policy** family (LeRobot 0.4.4 pins ``torch<2.11`` and ``huggingface-hub<0.36``; the harness's ``models``
  extra has torch 2.13 and transformers 5), whose adapter declares ``environment = "lerobot"``; the run then
  serves it with ``python -m vla_eval serve`` started from that interpreter (:mod:`vla_eval.remote.supervisor`).

An environment is a name in :data:`ENVIRONMENTS` with its pinned install steps (exactly what was measured),
the modules it provides, the packages a run records and a check. ``vla-eval env create NAME`` builds it
(``python -m venv`` + ``pip install``); :func:`python_for` finds its interpreter, first found wins:

1. ``$VLA_EVAL_ENV_<NAME>_PYTHON`` (``-`` becomes ``_``), then the environment's own older variable if it has one
   (``$VLA_EVAL_SIMPLER_SAPIEN_PYTHON``); set but missing is an error, not a fall-through;
2. ``$XDG_DATA_HOME/vla-eval/envs/<name>/bin/python`` (``~/.local/share/...``), where ``env create`` builds by
   default, then the environment's older default folders;
3. ``.venv-<name>/bin/python`` at the top of a source checkout (where CI builds them).

This module imports only the standard library, so ``python -m vla_eval.environments create NAME PATH`` works from
any interpreter (``scripts/simpler_sapien_env.sh`` uses that before vla-eval's own dependencies exist).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent

SERVER_REQUIREMENTS: tuple[str, ...] = (
    "numpy>=1.26",
    "pillow>=10",
    "pydantic>=2.6",
    "pyyaml>=6",
    "scipy>=1.11",
    "tqdm>=4.66",
    "websockets>=13",
    "msgpack>=1.0",
)
"""What ``python -m vla_eval serve`` imports besides the policy itself (vla-eval's own lower bounds, from
``pyproject.toml``).  vla-eval is not installed into a policy environment: the server runs the harness's own
package through ``PYTHONPATH`` (:func:`harness_pythonpath`), so the served code is always the running harness's."""


try:  # inside vla-eval the CLI prints VlaEvalError as `error: ...`; standalone this module needs nothing
    from vla_eval.errors import VlaEvalError as _Base
except Exception:  # pragma: no cover - only when run with a bare interpreter
    _Base = Exception  # type: ignore[misc,assignment]


class EnvironmentNotBuilt(_Base):  # type: ignore[misc,valid-type]
    """The environment's interpreter is not where vla-eval looks (the message names the build command)."""


class EnvironmentBuildError(_Base):  # type: ignore[misc,valid-type]
    """A build step failed; the message names the step and its last output lines."""


@dataclass(frozen=True)
class ManagedEnv:
    name: str
    summary: str
    steps: tuple[tuple[str, ...], ...]
    """``pip install`` argument lists, run in order; ``{VAR}`` is replaced by ``$VAR`` or :attr:`variables`."""
    modules: tuple[str, ...]
    """Import names the component needs: when all are importable here, this interpreter can host it."""
    packages: tuple[str, ...]
    """Distributions whose versions a run records (``importlib.metadata`` names)."""
    check: str
    """Python run in the built environment; a non-zero exit fails the build."""
    notes: str = ""
    """What the build deliberately departs from (bypassed pins) and why; shown by ``env list``."""
    python: str = "python3"
    """Interpreter the venv is made from (``$VLA_EVAL_ENV_<NAME>_BASE_PYTHON`` overrides)."""
    variables: dict[str, str] = field(default_factory=dict)
    legacy_python_vars: tuple[str, ...] = ()
    legacy_dirs: tuple[str, ...] = ()
    """Older default folders under ``$XDG_DATA_HOME/vla-eval/`` (kept so existing installs are still found)."""

    @property
    def python_var(self) -> str:
        return f"VLA_EVAL_ENV_{re.sub(r'[^A-Za-z0-9]', '_', self.name).upper()}_PYTHON"

    def resolved_steps(self) -> list[list[str]]:
        def sub(arg: str) -> str:
            return re.sub(r"\{([A-Z_]+)\}", lambda m: os.environ.get(m.group(1)) or self.variables[m.group(1)], arg)

        return [[sub(a) for a in step] for step in self.steps]


LEROBOT_VERSION = "0.4.4"
LEROBOT_REQUIREMENTS: tuple[str, ...] = (
    # lerobot 0.4.4's own requirements (its METADATA, non-extra), pins unchanged, except torch / torchvision /
    # torchcodec (see ENVIRONMENTS["lerobot"].notes)
    "datasets>=4.0.0,<5.0.0",
    "diffusers>=0.27.2,<0.36.0",
    "huggingface-hub[cli,hf-transfer]>=0.34.2,<0.36.0",
    "accelerate>=1.10.0,<2.0.0",
    "setuptools>=71.0.0,<81.0.0",
    "cmake>=3.29.0.1,<4.2.0",
    "einops>=0.8.0,<0.9.0",
    "opencv-python-headless>=4.9.0,<4.13.0",
    "av>=15.0.0,<16.0.0",
    "jsonlines>=4.0.0,<5.0.0",
    "packaging>=24.2,<26.0",
    "pynput>=1.7.7,<1.9.0",
    "pyserial>=3.5,<4.0",
    "wandb>=0.24.0,<0.25.0",
    "draccus==0.10.0",
    "gymnasium>=1.1.1,<2.0.0",
    "rerun-sdk>=0.24.0,<0.27.0",
    "deepdiff>=7.0.1,<9.0.0",
    "imageio[ffmpeg]>=2.34.0,<3.0.0",
    "termcolor>=2.4.0,<4.0.0",
)

SIMPLER_COMMIT = "ef7a4d4fdf4b69f2c2154db5b15b9ac8dfe10682"

ENVIRONMENTS: dict[str, ManagedEnv] = {
    env.name: env
    for env in (
        ManagedEnv(
            name="lerobot",
            summary=f"LeRobot {LEROBOT_VERSION} policies (ACT, Diffusion, SmolVLA, pi0, ...) for --policy lerobot",
            steps=(
                # torch first, from the wheels on disk, so nothing below can pull a CUDA build from the registry
                ("torch==2.14.1", "torchvision==0.29.1"),
                ("--no-deps", f"lerobot=={LEROBOT_VERSION}"),
                (*LEROBOT_REQUIREMENTS, *SERVER_REQUIREMENTS),
            ),
            modules=("lerobot", "torch", "torchvision"),
            packages=("lerobot", "torch", "torchvision", "numpy", "huggingface-hub"),
            check=(
                "import lerobot, torch, torchvision\n"
                "from lerobot.policies.factory import get_policy_class, make_pre_post_processors\n"
                "get_policy_class('act'); get_policy_class('diffusion')\n"
                "print('lerobot', lerobot.__version__, 'torch', torch.__version__)\n"
            ),
            notes=(
                f"lerobot {LEROBOT_VERSION} is installed --no-deps and its other requirements with their own pins; "
                "bypassed: torch<2.11 (torch 2.14.1 instead), torchvision<0.26 (0.29.1), torchcodec<0.11 (not "
                "installed; it decodes dataset videos, which evaluation never reads). Why: the registry's torch "
                "<2.11 for this machine is a CUDA build with its nvidia wheels (gigabytes to download), and the "
                "registry's torchvision does not load beside the CPU torch 2.13 wheel (torchvision::nms); torch "
                "2.14.1 + torchvision 0.29.1 install from local wheels and run on the CPU. lerobot 0.6.x needs "
                "Python >= 3.12 and torch < 2.12, for which no local wheel exists."
            ),
            python="python3.11",
        ),
        ManagedEnv(
            name="simpler-sapien",
            summary="SimplerEnv's own engine (ManiSkill2_real2sim on SAPIEN 2.2.2 physics) for backend simpler_sapien",
            steps=(
                # the pins SAPIEN 2.2.2 needs (numpy 2 segfaults in its IK call); the package's metadata pins
                # gymnasium < 1.0 and old versions of others, so it is installed --no-deps after them
                (
                    "sapien==2.2.2",
                    "numpy<2",
                    "setuptools<81",
                    "gymnasium>=0.28.1,<1.0",
                    "transforms3d",
                    "opencv-python-headless<4.11",
                    "trimesh",
                    "ruckig",
                    "scipy",
                    "h5py",
                    "pyyaml",
                    "tqdm",
                    "tabulate",
                    "imageio",
                    "GitPython",
                ),
                ("--no-deps", "{SIMPLER_WHEEL}"),
            ),
            modules=("sapien", "mani_skill2_real2sim"),
            packages=("mani_skill2_real2sim", "sapien", "numpy", "gymnasium"),
            check=(
                "import importlib.metadata as m\n"
                "print({d: m.version(d) for d in ('mani_skill2_real2sim', 'sapien', 'numpy', 'gymnasium')})\n"
                "import sapien.core  # fails here, not at run time, when libvulkan.so.1 is missing\n"
            ),
            notes=(
                "SIMPLER_WHEEL: a local mani_skill2_real2sim wheel or folder instead of the upstream repository; "
                "sapien.core links libvulkan.so.1 (apt-get install libvulkan1) though nothing is rendered"
            ),
            variables={
                "SIMPLER_WHEEL": f"mani_skill2_real2sim @ git+https://github.com/simpler-env/ManiSkill2_real2sim@{SIMPLER_COMMIT}"
            },
            legacy_python_vars=("VLA_EVAL_SIMPLER_SAPIEN_PYTHON",),
            legacy_dirs=("simpler-sapien",),
        ),
    )
}


def get(name: str) -> ManagedEnv:
    try:
        return ENVIRONMENTS[name]
    except KeyError:
        raise EnvironmentNotBuilt(
            f"no managed environment named {name!r}; known: {', '.join(sorted(ENVIRONMENTS))}"
        ) from None


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def default_path(name: str) -> Path:
    """Where ``vla-eval env create NAME`` builds when no path is given."""
    return data_home() / "vla-eval" / "envs" / name


def _interpreter(venv: Path) -> Path:
    return venv / "bin" / "python"


def locations(name: str) -> list[Path]:
    """Default interpreter locations in lookup order (after the environment variables)."""
    env = get(name)
    legacy = [data_home() / "vla-eval" / d for d in env.legacy_dirs]
    dirs = [default_path(name), *legacy, REPO_ROOT / f".venv-{name}"]
    return [_interpreter(d) for d in dirs]


def lookup(name: str, candidates: list[Path] | None = None) -> Path | None:
    """The interpreter by the order of the module docstring, or None; a variable naming a missing file raises.

    ``candidates`` replaces the default folders (:func:`locations`); the variables are always read first."""
    env = get(name)
    for var in (env.python_var, *env.legacy_python_vars):
        value = os.environ.get(var)
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise EnvironmentNotBuilt(f"${var}={value}: no such file")
            return path
    for path in locations(name) if candidates is None else candidates:
        if path.is_file():
            return path
    return None


def python_for(name: str) -> Path:
    """The environment's interpreter (module docstring for the order), or :class:`EnvironmentNotBuilt`."""
    try:
        python = lookup(name)
    except EnvironmentNotBuilt as exc:
        raise EnvironmentNotBuilt(f"{exc}; {build_hint(name)}") from None
    if python is None:
        looked = ", ".join(str(p) for p in locations(name))
        raise EnvironmentNotBuilt(
            f"managed environment {name!r} is not built (looked for {looked}); {build_hint(name)}"
        )
    return python


def build_hint(name: str) -> str:
    return (
        f"build it with: vla-eval env create {name} (or point ${get(name).python_var} at an interpreter that has it)"
    )


def importable_here(name: str) -> bool:
    """Whether this interpreter can import every module the environment provides (found, not imported)."""
    import importlib.util

    try:
        return all(importlib.util.find_spec(m) is not None for m in get(name).modules)
    except (ImportError, ValueError):
        return False


def create(name: str, path: str | os.PathLike | None = None, log=print) -> Path:
    """Build the environment at ``path`` (default :func:`default_path`) and return its interpreter.

    ``python -m venv`` then one ``pip install`` per step (pip, not uv: pip reads this machine's local wheels
    and its torch cap; uv would fetch a CUDA torch from the registry), then the environment's check."""
    env = get(name)
    venv = Path(path).expanduser().resolve() if path else default_path(name)
    base = os.environ.get(env.python_var.replace("_PYTHON", "_BASE_PYTHON")) or _base_python(env.python)
    t0 = time.monotonic()
    _run([base, "-m", "venv", str(venv)], f"{name}: python -m venv {venv}", log)
    py = _interpreter(venv)
    for step in env.resolved_steps():
        _run([str(py), "-m", "pip", "install", "--quiet", *step], f"{name}: pip install {' '.join(step)}", log)
    _run([str(py), "-c", env.check], f"{name}: check", log)
    log(f"{name}: built in {time.monotonic() - t0:.0f}s: {py}")
    return py


def _base_python(wanted: str) -> str:
    """The interpreter to make the venv from: ``wanted`` when on PATH, else this one (same minor version or not)."""
    return shutil.which(wanted) or sys.executable


def _run(cmd: list[str], what: str, log) -> None:
    log(what)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = "\n".join(line for line in proc.stdout.splitlines() if "is ignored: it is neither" not in line)[-2000:]
        raise EnvironmentBuildError(f"{what} failed (exit code {proc.returncode}):\n{tail}")
    if proc.stdout.strip() and what.endswith(": check"):
        log(proc.stdout.strip())


def describe(name: str, python: str | os.PathLike | None = None) -> dict:
    """What a run records about the environment a component ran in: name, interpreter and package versions.

    ``python=None`` describes this interpreter (the component ran in the harness's own environment)."""
    env = get(name)
    interp = str(python) if python else sys.executable
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        f"for d in {list(env.packages)!r}:\n"
        "    try: out[d] = m.version(d)\n"
        "    except m.PackageNotFoundError: out[d] = None\n"
        "print(json.dumps(out))\n"
    )
    try:
        proc = subprocess.run([interp, "-c", code], capture_output=True, text=True, timeout=60, env=_clean_env())
        versions = json.loads(proc.stdout) if proc.returncode == 0 else {}
    except (OSError, subprocess.TimeoutExpired, ValueError):
        versions = {}
    return {"name": name, "managed": python is not None, "python": interp, "versions": versions}


def _clean_env() -> dict[str, str]:
    """The environment for another interpreter: without the harness's PYTHONPATH or user site-packages."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def harness_pythonpath() -> Path:
    """A folder holding only ``vla_eval`` (a link to this package), for another interpreter's ``PYTHONPATH``.

    The folder that holds the package may be a site-packages full of the harness's own numpy and torch, which
    must not shadow the environment's; so the link lives in a folder of its own under the user's cache."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    import hashlib

    folder = cache / "vla-eval" / "pythonpath" / hashlib.sha1(str(PACKAGE_DIR).encode()).hexdigest()[:12]
    link = folder / "vla_eval"
    if not (link.is_symlink() and link.resolve() == PACKAGE_DIR):
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".vla_eval.{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(PACKAGE_DIR, target_is_directory=True)
        os.replace(tmp, link)
    return folder


def interpreter_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment variables for ``python -m vla_eval ...`` in a managed interpreter."""
    env = _clean_env()
    env["PYTHONPATH"] = str(harness_pythonpath())
    env.update(extra or {})
    return env


def list_rows() -> list[dict]:
    """One row per known environment: name, whether built, its interpreter (or where it would be built)."""
    rows = []
    for name, env in ENVIRONMENTS.items():
        try:
            python = lookup(name)
            where = str(python or _interpreter(default_path(name)))
        except EnvironmentNotBuilt as exc:
            python, where = None, str(exc)
        rows.append(
            {"name": name, "built": python is not None, "python": where, "summary": env.summary, "notes": env.notes}
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """``python -m vla_eval.environments create NAME [PATH] | python NAME | list``: the CLI without vla-eval's deps."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if len(args) in (2, 3) and args[0] == "create":
            create(args[1], args[2] if len(args) == 3 else None)
            return 0
        if len(args) == 2 and args[0] == "python":
            print(python_for(args[1]))
            return 0
        if args == ["list"]:
            for row in list_rows():
                print(f"{row['name']:16s} {'built' if row['built'] else 'not built':10s} {row['python']}")
            return 0
    except (EnvironmentNotBuilt, EnvironmentBuildError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("usage: python -m vla_eval.environments create NAME [PATH] | python NAME | list", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
