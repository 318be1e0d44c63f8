"""One writer per run folder, and run folders that are checked before they are used.

Two ``vla-eval run`` processes on one folder both ran every episode (each saw the other's
rows only at the end). The runner now holds an exclusive ``flock`` on ``RUN_DIR/.lock``
for the whole run; a second process refuses at once, naming the holder. The lock dies
with its process (also on ``kill -9``), so a crashed run never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sqlite3
import time
from pathlib import Path

from vla_eval.errors import ConfigError

LOCK_NAME = ".lock"


def prepare_run_dir(run_dir: Path) -> None:
    """Create ``run_dir`` or fail with a message naming it (exists as a file, not writable, ...)."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run folder {run_dir} exists and is not a folder; choose another --run-dir")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create run folder {run_dir}: {exc.strerror or exc}") from exc
    if not os.access(run_dir, os.W_OK | os.X_OK):
        raise ConfigError(f"run folder {run_dir} is not writable by this user; choose another --run-dir")


class RunLock:
    """Exclusive lock on a run folder, held from :meth:`acquire` until :meth:`release`."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(f"cannot create the lock file {self.path}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise ConfigError(
                f"run folder {self.path.parent} is in use by another vla-eval run{holder}; "
                "wait for it to finish (or stop it) and then continue with --resume"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f" (pid {info['pid']} on {info['host']})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def open_store_errors(run_dir: Path, exc: Exception) -> ConfigError:
    """Turn a failure to open the episode store into a message naming the folder."""
    if isinstance(exc, sqlite3.DatabaseError):
        return ConfigError(f"{Path(run_dir) / 'episodes.sqlite'}: cannot open the episode store ({exc})")
    return ConfigError(f"run folder {run_dir}: {exc}")
