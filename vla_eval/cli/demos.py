"""``vla-eval record-demos``: record a policy's episodes as robomimic/LIBERO-style HDF5 demos."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_record_demos(args: argparse.Namespace) -> int:
    from vla_eval.cli.outputs import output_dir
    from vla_eval.demos import record_demos

    output_dir(args.output, "--output")
    summary = record_demos(
        suite=args.suite,
        policy=args.policy,
        out_dir=args.output,
        episodes=args.episodes,
        split=args.split,
        seed=args.seed,
        policy_args=args.policy_arg,
        keep_failures=args.keep_failures,
        action_noise=args.action_noise,
        progress=not args.no_progress,
    )
    for task, path in summary.files.items():
        print(
            f"{path}: {summary.kept[task]} demos of {summary.attempted[task]} episodes, {summary.samples[task]} steps"
        )
    return 0


def _noise_sigma(text: str) -> float:
    """A finite sigma >= 0: ``nan`` would compare false everywhere and record without noise."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--action-noise must be a number, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"--action-noise must be a finite number >= 0, got {text}")
    return value


def register(subparsers) -> None:
    p = subparsers.add_parser("record-demos", help="record a policy's episodes as HDF5 demos (robomimic/LIBERO layout)")
    p.add_argument("--suite", default="tabletop_basic", help="suite name or YAML path")
    p.add_argument("--policy", default="scripted", help="registered policy name or policy YAML path")
    p.add_argument("--policy-arg", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--episodes", type=int, default=None, help="episodes attempted per task (default: the suite's)")
    p.add_argument("--split", default=None, help="split to record (default: the in-domain split)")
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="suite seed for the demo layouts (default: the suite's seed + 1000, disjoint from evaluation)",
    )
    p.add_argument("--keep-failures", action="store_true", help="also keep episodes that did not succeed")
    p.add_argument(
        "--action-noise",
        type=_noise_sigma,
        default=0.0,
        metavar="SIGMA",
        help="DART-style: execute actions + N(0, SIGMA) on xyz and yaw, store the clean actions as labels",
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="folder for <task>_demo.hdf5 files")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_record_demos)
