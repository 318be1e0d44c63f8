"""Tie a worker process's life to its driver's.

A worker that outlives its driver (SIGTERM or ``kill -9`` of ``vla-eval run``) goes on
stepping its episode for nobody, holding a CPU, GPU memory and the run's files, and then
prints a BrokenPipe traceback. On Linux the kernel kills it the moment the driver dies
(``PR_SET_PDEATHSIG``); elsewhere a thread polls the parent pid once a second.

Ctrl-C reaches every process of the terminal's foreground group. Only the driver acts on
it (it stops its workers, keeps what finished and says how to resume); a worker ignores
SIGINT, so an interrupted run prints one line instead of a KeyboardInterrupt traceback
per worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Iterator

PR_SET_PDEATHSIG = 1
POLL_S = 1.0


def die_with_parent(parent_pid: int | None) -> None:
    """End this process as soon as ``parent_pid`` (the driver) is gone."""
    if parent_pid is None:
        return
    armed = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent_pid:  # the driver died before the signal was armed
        os._exit(1)
    if not armed:
        threading.Thread(target=_watch_parent, args=(parent_pid,), name="vla-eval-lifeline", daemon=True).start()


def _watch_parent(parent_pid: int) -> None:
    stop = threading.Event()
    while not stop.wait(POLL_S):
        if os.getppid() != parent_pid:
            os._exit(1)


def ignore_interrupts() -> None:
    """Leave Ctrl-C to the driver (see the module docstring)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def interrupts_ignored_by_children() -> Iterator[None]:
    """Start children with SIGINT ignored from their first instruction.

    An ignored signal stays ignored across ``exec``, and Python then installs no
    KeyboardInterrupt handler, so even a Ctrl-C while a spawned worker is still importing
    prints nothing. Only possible from the main thread; elsewhere the worker's own
    :func:`ignore_interrupts` covers everything after its imports."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
