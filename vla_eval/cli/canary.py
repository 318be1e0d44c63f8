"""``vla-eval canary``: check that this machine renders the built-in scenes as the reference numbers assume.

Exit codes: 0 = ok or notice, 1 = warn (frames or outcomes drifted), 2 = bad input
(missing or malformed reference files).
"""

from __future__ import annotations

import argparse
import json


def _cmd_canary(args: argparse.Namespace) -> int:
    from vla_eval.canary import measure, run_canary, save_reference
    from vla_eval.cli.outputs import output_file

    output_file(args.json, "--json")

    if args.record:
        m = measure(rollouts=True)
        json_path, frames_path = save_reference(m)
        k = sum(int(e["success"]) for e in m.episodes)
        print(
            f"recorded canary reference: {json_path}, {frames_path} "
            f"({k}/{len(m.episodes)} successes, frames {m.frames_sha256[:16]})"
        )
        return 0
    report = run_canary(rollouts=not args.frames_only)
    print(report.text())
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "level": report.level,
                    "max_mad": report.max_mad,
                    "outcome_changes": report.outcome_changes,
                    "step_changes": report.step_changes,
                    "frames_identical": report.frames_identical,
                    "lines": report.lines,
                },
                indent=2,
            )
            + "\n"
        )
    return report.exit_code


def register(subparsers) -> None:
    from pathlib import Path

    p = subparsers.add_parser("canary", help="render-drift canary: reference policy + first frames vs stored values")
    p.add_argument("--frames-only", action="store_true", help="compare first frames only (no rollouts; ~2 s)")
    p.add_argument("--record", action="store_true", help="(maintainers) store this machine's values as the reference")
    p.add_argument("--json", type=Path, default=None, help="also write the verdict as JSON")
    p.set_defaults(func=_cmd_canary)
