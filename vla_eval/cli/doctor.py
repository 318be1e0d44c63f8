"""``vla-eval doctor``: one reset + one predict before a long run (checks in :mod:`vla_eval.doctor`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_doctor(args: argparse.Namespace) -> int:
    from vla_eval.cli.outputs import output_dir
    from vla_eval.doctor import diagnose

    output_dir(args.out, "--out")
    report = diagnose(args.suite, args.policy, args.policy_arg, Path(args.out), args.task, args.replan_steps)
    print(report.text())
    print(f"\nreport: {Path(args.out) / 'doctor.json'}")
    return 0 if report.ok else 1


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "doctor", help="one reset + one predict: contract, orientation, action checks before a long run"
    )
    p.add_argument("--suite", required=True, help="suite name or YAML path")
    p.add_argument("--policy", required=True, help="registered policy name or policy YAML path")
    p.add_argument("--policy-arg", action="append", default=[], metavar="KEY=VALUE", help="override a policy argument")
    p.add_argument("--task", default=None, help="task to check (default: the suite's first)")
    p.add_argument("--replan-steps", type=int, default=None, help="as for run (default: the policy file's)")
    p.add_argument("--out", default="doctor", help="folder for the PNGs and doctor.json (default ./doctor)")
    p.set_defaults(func=_cmd_doctor)
