"""Finding SimplerEnv's engine interpreter and talking to the server (``server.py``) running in it.

The engine's venv is the managed environment ``simpler-sapien`` (vla_eval/environments.py, which holds its pinned
install steps); where its interpreter is, first found wins:

1. ``$VLA_EVAL_ENV_SIMPLER_SAPIEN_PYTHON``, then ``$VLA_EVAL_SIMPLER_SAPIEN_PYTHON`` (a Python executable; set but
   missing is an error, not a fallback);
2. ``$XDG_DATA_HOME/vla-eval/envs/simpler-sapien/bin/python`` (``vla-eval env create simpler-sapien``), then
   ``$XDG_DATA_HOME/vla-eval/simpler-sapien/bin/python`` (``~/.local/share/...``), where
   ``scripts/simpler_sapien_env.sh`` installs by default;
3. ``.venv-simpler-sapien/bin/python`` at the top of a source checkout (``scripts/simpler_sapien_env.sh
   .venv-simpler-sapien``, as CI does).

SimplerEnv's object models come from ``$MS2_REAL2SIM_ASSET_DIR`` when set, else from the ``data/`` folder of the
asset pack ``vla-eval assets fetch simpler`` installs (the same files the MuJoCo port reads).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from vla_eval.errors import VlaEvalError
from vla_eval.sims.simpler.sapien import wire

ENV_NAME = "simpler-sapien"
"""Its managed environment (vla_eval/environments.py)."""
PYTHON_ENV = "VLA_EVAL_SIMPLER_SAPIEN_PYTHON"
SERVER = Path(__file__).resolve().parent / "server.py"
INSTALL_HINT = (
    "install it with: bash scripts/simpler_sapien_env.sh or vla-eval env create simpler-sapien (SimplerEnv's own "
    'venv; see docs/simpler.md, "SimplerEnv\'s own engine (SAPIEN)"), or point $'
    + PYTHON_ENV
    + " at that venv's python"
)


class EngineNotInstalled(VlaEvalError):
    """SimplerEnv's engine interpreter is not where vla-eval looks for it (the message names the install step)."""


class EngineError(VlaEvalError):
    """The engine server failed a request or died; the message carries its last line, the trace its traceback."""


def default_locations() -> list[Path]:
    from vla_eval import environments

    return environments.locations(ENV_NAME)


def find_python() -> Path:
    """The engine interpreter (module docstring for the order), or :class:`EngineNotInstalled`."""
    from vla_eval import environments

    try:
        python = environments.lookup(ENV_NAME, default_locations())
    except environments.EnvironmentNotBuilt as exc:
        raise EngineNotInstalled(f"{exc}; {INSTALL_HINT}") from None
    if python is None:
        looked = ", ".join(str(p) for p in default_locations())
        raise EngineNotInstalled(
            f"SimplerEnv's own engine (SAPIEN) is not installed (looked for {looked}); {INSTALL_HINT}"
        )
    return python


def asset_dir() -> Path:
    """SimplerEnv's ``data/`` folder for the server (``$MS2_REAL2SIM_ASSET_DIR``, else the asset pack's)."""
    env = os.environ.get("MS2_REAL2SIM_ASSET_DIR")
    if env:
        return Path(env).expanduser()
    from vla_eval.assets import SIMPLER, require_pack

    return require_pack(SIMPLER) / "data"


class EngineProcess:
    """One server process in SimplerEnv's interpreter, owned by one env; requests are answered in order.

    The child gets its own stdin/stdout pipes for frames; its stderr is this process's, so SAPIEN's warnings show up
    in the worker's log. ``close()`` (also on garbage collection) asks it to exit and kills it if it does not.
    """

    def __init__(self, python: Path | None = None, assets: Path | None = None):
        self.python = python or find_python()
        env = {**os.environ, "MS2_REAL2SIM_ASSET_DIR": str(assets or asset_dir()), "PYTHONNOUSERSITE": "1"}
        env.pop("PYTHONPATH", None)  # vla-eval's checkout must not shadow the engine venv's packages
        self._proc = subprocess.Popen(
            [str(self.python), "-u", str(SERVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, env=env
        )
        self.versions: dict[str, str] = self.request("hello")["versions"]

    def request(self, op: str, **payload: Any) -> dict[str, Any]:
        proc = self._proc
        if proc is None:
            raise EngineError("the SimplerEnv engine server is closed")
        try:
            wire.write_frame(proc.stdin, {"op": op, **payload})
            reply = wire.read_frame(proc.stdout)
        except (wire.WireError, BrokenPipeError, OSError) as e:
            code = proc.poll()
            raise EngineError(
                f"SimplerEnv engine server ({self.python}) stopped during {op!r}"
                f"{f' with exit status {code}' if code is not None else ''}: {e}"
                " (its stderr above says why)"
            ) from None
        if not reply.pop("ok", False):
            err = EngineError(f"SimplerEnv engine {op!r} failed: {reply.get('error')}")
            err.trace = reply.get("trace", "")  # type: ignore[attr-defined]
            if os.environ.get("VLA_EVAL_DEBUG"):
                print(err.trace, file=sys.stderr)
            raise err
        return reply

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                wire.write_frame(proc.stdin, {"op": "close"})
                wire.read_frame(proc.stdout)
            proc.wait(timeout=10)
        except (wire.WireError, OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            for s in (proc.stdin, proc.stdout):
                if s is not None:
                    s.close()

    def __del__(self):
        try:
            self.close()
        except (OSError, ValueError):  # interpreter shutdown: pipes already gone
            pass
