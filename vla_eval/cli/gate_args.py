"""The ``--gate`` options of ``vla-eval run``, apart from the gate's statistics.

Building the CLI parser must stay light: ``python -m vla_eval serve`` also runs in a policy's own environment
(vla_eval/environments.py), which has no pandas or scipy; the gate itself (vla_eval/results/gate_run.py) imports
them only when a run is gated.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_gate_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "gated run (stop as soon as the regression verdict is settled; exit 1 regression, 0 none, 5 undecided)"
    )
    g.add_argument(
        "--gate",
        type=Path,
        default=None,
        metavar="BASELINE.json",
        help="baseline written by `vla-eval baseline save`; run in balanced order and stop once settled",
    )
    g.add_argument("--max-drop", type=float, default=None, help="allowed drop in success rate (default 0.05)")
    g.add_argument("--alpha", type=float, default=None, help="false-alarm probability (default 0.05)")
    g.add_argument(
        "--power",
        type=float,
        default=None,
        help="probability of catching a drop of max-drop + detect-drop (default 0.8)",
    )
    g.add_argument(
        "--detect-drop",
        type=float,
        default=None,
        help="drop beyond --max-drop that --power applies to (default: max-drop)",
    )
    g.add_argument("--looks", type=int, default=None, help="interim looks over the plan (default 10)")
