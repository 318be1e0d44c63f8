"""Checks that run before any worker starts, so a bad request fails in seconds.

Two kinds: values of a run request that would otherwise be accepted silently (or loop
forever, as ``--replan-steps -1`` did: a chunk cut to ``[:-1]`` of one action is empty,
and the episode never advances), and a model checkpoint that cannot be loaded here
(a hub id with no network and no local copy made every worker retry for a minute).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from vla_eval.errors import ConfigError
from vla_eval.execution.plan import MAX_PLAN_EPISODES

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
CHECKPOINT_KEYS = ("checkpoint",)


def int_at_least(minimum: int, flag: str):
    """argparse ``type=``: an integer >= ``minimum`` with a message naming the flag."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{flag} must be >= {minimum}, got {value}")
        return value

    return parse


def positive_float(flag: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a number, got {text!r}") from None
        if not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{flag} must be a positive number of seconds/megabytes, got {text!r}")
        return value

    return parse


def check_request(req: Any) -> None:
    """The same limits as the CLI parser, for callers of :func:`vla_eval.execution.runner.run`."""
    for flag, value, minimum in (
        ("--replan-steps", req.replan_steps, 1),
        ("--workers", req.workers, 1),
        ("--batch-envs", req.batch_envs, 1),
        ("--episodes", req.episodes_per_task, 1),
    ):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < minimum):
            raise ConfigError(f"{flag} must be an integer >= {minimum}, got {value!r}")
    if isinstance(req.episodes_per_task, int) and req.episodes_per_task > MAX_PLAN_EPISODES:
        raise ConfigError(
            f"--episodes must be at most {MAX_PLAN_EPISODES} (the episode plan is held in memory), "
            f"got {req.episodes_per_task}"
        )
    if req.resume:
        if req.run_dir is None:
            raise ConfigError("--resume needs --run-dir RUN_DIR (the folder of the run to continue)")
        if not Path(req.run_dir).is_dir():
            raise ConfigError(f"--resume: run folder {req.run_dir} does not exist (nothing to continue)")


# ------------------------------------------------------------------ checkpoints


def _hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _in_hf_cache(repo_id: str) -> bool:
    cache = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface")), "hub"
    )
    snapshots = Path(cache) / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    return snapshots.is_dir() and any(snapshots.iterdir())


def _reachable(endpoint: str, timeout: float = 3.0) -> bool:
    u = urlparse(endpoint)
    port = u.port or (443 if u.scheme == "https" else 80)
    try:
        with socket.create_connection((u.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def check_checkpoint(value: Any, source: str = "--policy-arg checkpoint") -> None:
    """A checkpoint must be a local folder, a hub id in the local cache, or a hub id with the hub reachable."""
    if value is None or value == "":
        return
    text = os.fspath(value) if isinstance(value, os.PathLike) else str(value)
    path = Path(text).expanduser()
    if path.exists():
        if not (path.is_file() or path.is_dir()):
            raise ConfigError(f"{source}={text}: not a regular file or a folder")
        return
    if "/" not in text and not text.startswith((".", "~")):
        return  # a bare name is the adapter's own alias (e.g. the reference policy's `early` / `final`)
    if not HUB_ID.match(text) or text.startswith((".", "/", "~")):
        raise ConfigError(f"{source}={text}: no such local folder (and not a hub id like org/name)")
    if _in_hf_cache(text):
        return
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    endpoint = _hub_endpoint()
    if offline or not _reachable(endpoint):
        why = "HF_HUB_OFFLINE is set" if offline else f"{endpoint} is not reachable"
        raise ConfigError(
            f"{source}={text}: not a local folder, not in the Hugging Face cache, and {why}.\n"
            f"fix: download it where there is network (`huggingface-cli download {text} --local-dir DIR`) "
            f"and pass --policy-arg checkpoint=DIR"
        )


def check_policy_checkpoints(args: dict[str, Any], source: str) -> None:
    for key in CHECKPOINT_KEYS:
        if key in args:
            check_checkpoint(args[key], f"{source}: {key}")
