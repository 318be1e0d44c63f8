"""``vla-eval serve``: expose any registered policy over the openpi websocket protocol.

Loopback by default; ``--host 0.0.0.0`` is a deliberate choice (a policy server runs a
model on whatever it is sent and has no authentication of its own).  Requests from all
connections are batched (``--max-batch``, ``--max-wait-ms``); see :mod:`vla_eval.remote.server`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path


def _policy_config(args: argparse.Namespace):
    from vla_eval.policy_config import PolicyConfig, resolve_policy

    if args.policy_config_json:
        # `vla-eval run --policy-server auto` hands over the run's already resolved config,
        # so the served policy is exactly the one recorded in run.json.
        return PolicyConfig.model_validate(json.loads(args.policy_config_json))
    if not args.policy:
        from vla_eval.errors import ConfigError

        raise ConfigError("vla-eval serve: --policy is required")
    return resolve_policy(args.policy, args.policy_arg)


def _cmd_serve(args: argparse.Namespace) -> int:
    cfg = _policy_config(args)
    python = _foreign_python(cfg)
    if python is not None:
        return _serve_from(python, cfg, args)
    from vla_eval.remote.server import PolicyServer

    policy = cfg.create()
    metadata = {"policy_name": cfg.name, "device": _device()}
    if args.protocol == "allenai":
        return _serve_allenai(args, cfg, policy, metadata)
    server = PolicyServer(
        policy,
        host=args.host,
        port=args.port,
        metadata=metadata,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
    )
    server.start()
    banner = (
        f"serving policy {cfg.name} ({cfg.adapter}) on {server.url}  "
        f"(health: http://{args.host}:{server.port}/healthz; "
        f"batches up to {args.max_batch}, wait {args.max_wait_ms:g} ms)"
    )

    def stats() -> None:
        if server.stats["batches"]:
            print(
                f"served {server.stats['requests']} requests in {server.stats['batches']} batches "
                f"(mean batch {server.mean_batch_size:.2f})",
                file=sys.stderr,
                flush=True,
            )

    return _serve_until_stopped(args, server, policy, banner, stats)


def _foreign_python(cfg):
    """The policy's managed interpreter when this one cannot import its packages (vla_eval/remote/policy_env.py)."""
    from vla_eval.policies import POLICIES
    from vla_eval.remote.policy_env import foreign_python

    try:
        cls = POLICIES.get(cfg.adapter)
    except Exception:
        return None  # the adapter's own import error is reported where it is created
    return foreign_python(cls)


def _serve_from(python, cfg, args: argparse.Namespace) -> int:
    """Run this same ``serve`` command in the policy's environment; its exit code is ours, SIGTERM is passed on."""
    import subprocess

    from vla_eval.environments import interpreter_env
    from vla_eval.policies import POLICIES
    from vla_eval.remote.policy_env import announce

    print(announce(cfg.name, POLICIES.get(cfg.adapter), python), file=sys.stderr, flush=True)
    cmd = [str(python), "-m", "vla_eval", "serve", "--policy-config-json", json.dumps(cfg.model_dump(mode="json"))]
    for flag in ("host", "port", "protocol", "port_file", "max_batch", "max_wait_ms"):
        value = getattr(args, flag)
        if value is not None:
            cmd += [f"--{flag.replace('_', '-')}", str(value)]
    cmd += ["--exit-with-parent", str(os.getpid())]  # the server never outlives this process, even after kill -9
    proc = subprocess.Popen(cmd, env=interpreter_env({"PYTHONUNBUFFERED": "1"}))
    signal.signal(signal.SIGTERM, lambda signum, frame: proc.terminate())
    if args.exit_with_parent:
        _watch_parent(args.exit_with_parent)  # our parent gone -> SIGTERM here -> passed on to the server
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return proc.wait()


def _serve_allenai(args: argparse.Namespace, cfg, policy, metadata: dict) -> int:
    """allenai's model-server protocol (their harness's ``Connection``); one predict at a time, no batching."""
    from vla_eval.remote.allenai_server import AllenaiPolicyServer

    server = AllenaiPolicyServer(policy, host=args.host, port=args.port, metadata=metadata).start()
    banner = (
        f"serving policy {cfg.name} ({cfg.adapter}) to allenai's harness on {server.url}  "
        f"(health: http://{args.host}:{server.port}/health)"
    )
    return _serve_until_stopped(args, server, policy, banner, lambda: None)


def _serve_until_stopped(args: argparse.Namespace, server, policy, banner: str, on_stop) -> int:
    """Either protocol's server, once listening: publish the port, serve until Ctrl-C / SIGTERM / the
    parent's death, then shut down and close the policy."""
    if args.port_file:
        tmp = Path(f"{args.port_file}.tmp")
        tmp.write_text(f"{server.port}\n")
        os.replace(tmp, args.port_file)  # readers never see a half-written file
    print(banner, flush=True)
    signal.signal(signal.SIGTERM, _interrupt)
    if args.exit_with_parent:
        _watch_parent(args.exit_with_parent)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nstopped", file=sys.stderr)
    finally:
        server.shutdown()
        policy.close()
        on_stop()
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM (from `vla-eval run`) shuts down like Ctrl-C: policy closed, stats printed


def _watch_parent(pid: int) -> None:
    """A server started by `vla-eval run` must not outlive it (the run may be killed with -9)."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == pid:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="vla-eval-parent-watch", daemon=True).start()


def _device() -> str:
    """Where the served model runs, for the record (only asks torch if the policy loaded it)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return "cpu"
    return f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve", help="serve a policy over websocket + msgpack (openpi-compatible), batching across clients"
    )
    p.add_argument("--policy", help="registered policy name or policy YAML path")
    p.add_argument("--policy-arg", action="append", default=[], metavar="KEY=VALUE", help="override a policy argument")
    p.add_argument("--policy-config-json", default=None, help=argparse.SUPPRESS)
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default loopback only)")
    p.add_argument("--port", type=int, default=8000, help="port (0 picks a free one and prints it)")
    p.add_argument(
        "--protocol",
        choices=("openpi", "allenai"),
        default="openpi",
        help="wire protocol: openpi (default; openpi clients, vla-eval run) or allenai "
        "(allenai/vla-evaluation-harness model-server protocol)",
    )
    p.add_argument("--port-file", default=None, help="write the bound port to this file once listening")
    p.add_argument("--exit-with-parent", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--max-batch", type=int, default=16, help="most requests answered by one predict call (default 16)")
    p.add_argument(
        "--max-wait-ms",
        type=float,
        default=5.0,
        help="longest a request waits for others to join its batch (default 5; "
        "a batch also closes once every connected client has a request in it)",
    )
    p.set_defaults(func=_cmd_serve)
