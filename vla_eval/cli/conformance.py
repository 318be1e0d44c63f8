"""``vla-eval conformance --suite S --policy P [--episodes N] [--margin M]``.

Runs the privileged expert and the adapter's oracle (the expert's plan written in the
adapter's native output format, driven through the adapter's real path) on the same
episodes, prints the per-task table and exits 1 when the suite-level gap exceeds the
margin (the table names the stage that broke), 0 when it is within it.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path


def _cmd(args: argparse.Namespace) -> int:
    from vla_eval.cli.outputs import output_dir
    from vla_eval.conformance.run import ConformanceRequest, run_conformance

    out = (
        Path(args.out_dir)
        if args.out_dir
        else Path(args.results_root)
        / "conformance"
        / (f"{Path(args.suite).stem}__{Path(args.policy).stem}__{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    )
    output_dir(out, "--out-dir")
    report = run_conformance(
        ConformanceRequest(
            suite=args.suite,
            policy=args.policy,
            out_dir=out,
            episodes=args.episodes,
            margin_points=args.margin,
            workers=args.workers,
            policy_args=args.policy_arg or [],
            tasks=args.tasks,
            render_quality=args.render_quality,
            resume=args.resume,
            progress=not args.no_progress,
            expert_runs=[Path(d) for d in args.expert_run or []] or None,
        )
    )
    print(report.markdown())
    print(f"\nrun folders and report: {out}", file=sys.stderr)
    return 0 if report.passed else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "conformance",
        help="oracle-vs-expert check of an adapter's real path (preprocess, parse, convert, env)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--suite", required=True, help="suite name or YAML (tabletop or LIBERO backends)")
    p.add_argument(
        "--policy", required=True, help="vla_r1 | openvla | remote (pi0_remote), or a policy YAML of one of them"
    )
    p.add_argument(
        "--policy-arg", action="append", metavar="KEY=VALUE", help="override an adapter argument (repeatable)"
    )
    p.add_argument("--episodes", type=int, default=3, help="episodes per task (default 3)")
    p.add_argument("--margin", type=float, default=10.0, help="largest allowed suite-level gap, in points (default 10)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--tasks", nargs="+", help="only these tasks of the suite")
    p.add_argument(
        "--render-quality", choices=["fast", "reference"], default="fast", help="LIBERO rendering (default fast)"
    )
    p.add_argument("--out-dir", help="folder for the two run folders and the report (default results/conformance/...)")
    p.add_argument("--results-root", default="results")
    p.add_argument("--resume", action="store_true", help="continue the run folders in --out-dir")
    p.add_argument(
        "--expert-run",
        action="append",
        metavar="DIR",
        help="reuse an expert run folder of the same suite (episodes matched by task, index and seed); repeatable",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd)
