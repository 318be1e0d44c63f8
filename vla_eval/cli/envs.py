"""``vla-eval env``: build and find the managed environments policies and simulators run in.

The registry and the lookup order live in vla_eval/environments.py.
"""

from __future__ import annotations

import argparse


def _cmd_create(args: argparse.Namespace) -> int:
    from vla_eval import environments

    py = environments.create(args.name, args.path)
    print(py)
    return 0


def _cmd_python(args: argparse.Namespace) -> int:
    from vla_eval import environments

    print(environments.python_for(args.name))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from vla_eval import environments

    for row in environments.list_rows():
        print(f"{row['name']:16s} {'built' if row['built'] else 'not built':10s} {row['python']}")
        print(f"{'':16s} {row['summary']}")
        if args.verbose and row["notes"]:
            print(f"{'':16s} notes: {row['notes']}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("env", help="managed environments for policies/simulators whose pins conflict with ours")
    sub = p.add_subparsers(dest="env_command", required=True)
    c = sub.add_parser("create", help="build a managed environment (python -m venv + pinned pip installs)")
    c.add_argument("name")
    c.add_argument("--path", default=None, help="venv folder (default $XDG_DATA_HOME/vla-eval/envs/NAME)")
    c.set_defaults(func=_cmd_create)
    q = sub.add_parser("python", help="print the interpreter of a managed environment")
    q.add_argument("name")
    q.set_defaults(func=_cmd_python)
    m = sub.add_parser("list", help="known environments, where they live, whether built")
    m.add_argument("-v", "--verbose", action="store_true", help="also print what each build departs from")
    m.set_defaults(func=_cmd_list)
