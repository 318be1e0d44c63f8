"""``vla-eval serve``: expose any registered policy over the openpi websocket protocol.

Loopback by default; ``--host 0.0.0.0`` is a deliberate choice (a policy server runs a
model on whatever it is sent and has no authentication of its own).
"""

from __future__ import annotations

import argparse
import sys


def _cmd_serve(args: argparse.Namespace) -> int:
    from vla_eval.policy_config import resolve_policy
    from vla_eval.remote.server import PolicyServer

    cfg = resolve_policy(args.policy, args.policy_arg)
    policy = cfg.create()
    server = PolicyServer(policy, host=args.host, port=args.port, metadata={"policy_name": cfg.name})
    server.start()
    print(f"serving policy {cfg.name} ({cfg.adapter}) on {server.url}  (health: http://{args.host}:{server.port}/healthz)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nstopped", file=sys.stderr)
    finally:
        server.shutdown()
        policy.close()
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="serve a policy over websocket + msgpack (openpi-compatible)")
    p.add_argument("--policy", required=True, help="registered policy name or policy YAML path")
    p.add_argument("--policy-arg", action="append", default=[], metavar="KEY=VALUE", help="override a policy argument")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default loopback only)")
    p.add_argument("--port", type=int, default=8000, help="port (0 picks a free one and prints it)")
    p.set_defaults(func=_cmd_serve)
