"""``vla-eval assets fetch <pack>``: install a third-party asset pack, checking every sha256.

Exit codes: 0 = installed (or already complete), 2 = bad input, a failed download or a
checksum mismatch (the offending file is named and not kept).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_fetch(args: argparse.Namespace) -> int:
    from vla_eval.assets import PACKS, fetch
    from vla_eval.cli.outputs import output_dir
    from vla_eval.errors import UnknownNameError

    if args.pack not in PACKS:
        raise UnknownNameError("asset pack", args.pack, list(PACKS))
    pack = PACKS[args.pack]
    output_dir(args.dest, "--dest")
    if args.source is not None and not args.source.is_dir():
        raise FileNotFoundError(f"--from {args.source}: no such folder")

    def progress(i: int, n: int, rel: str) -> None:
        if not args.quiet:
            print(f"[{i}/{n}] {rel}", file=sys.stderr)

    origin = str(args.source) if args.source is not None else f"{args.url_base or pack.url_base}"
    report = fetch(pack, dest=args.dest, source_dir=args.source, url_base=args.url_base, progress=progress)
    print(
        f"{pack.name}: {report.installed} files installed, {report.kept} already present, all sha256 checked; "
        f"from {origin} into {report.dest}"
    )
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("assets", help="install third-party asset packs (SimplerEnv robots, objects, photos)")
    sub = p.add_subparsers(dest="assets_cmd", required=True)
    f = sub.add_parser("fetch", help="download (or copy with --from) a pack's files and check every sha256")
    f.add_argument("pack", help="pack name: simpler (SimplerEnv's ManiSkill2_real2sim assets at a pinned commit)")
    f.add_argument(
        "--from",
        dest="source",
        type=Path,
        default=None,
        help="install from a local copy of the pack (same relative paths as upstream)",
    )
    f.add_argument(
        "--dest",
        type=Path,
        default=None,
        help="folder to install into (default: $VLA_EVAL_ASSETS/<pack> or ~/.local/share/vla-eval/assets/<pack>)",
    )
    f.add_argument(
        "--url-base",
        default=None,
        help="download from this address instead of the pinned upstream raw GitHub URL ({base}/{path})",
    )
    f.add_argument("-q", "--quiet", action="store_true", help="no per-file progress")
    f.set_defaults(func=_cmd_fetch)
