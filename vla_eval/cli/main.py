"""``vla-eval`` command line."""

from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path

from vla_eval.errors import VlaEvalError
from vla_eval.execution.preflight import int_at_least, positive_float

DEFAULT_SUITE = "tabletop_basic"

SUBCOMMAND_MODULES = (
    "vla_eval.cli.results",
    "vla_eval.cli.serve",
    "vla_eval.cli.doctor",
    "vla_eval.cli.demos",
    "vla_eval.cli.canary",
    "vla_eval.cli.assets",
    "vla_eval.cli.conformance",
    "vla_eval.cli.envs",
)
"""Modules that add their own subcommands through ``register(subparsers)``."""


def _cmd_run(args: argparse.Namespace) -> int:
    from vla_eval.execution.runner import RunRequest, run
    from vla_eval.results.gate_run import gate_config

    if args.resume and args.run_dir is None:
        raise VlaEvalError("--resume needs --run-dir RUN_DIR (the folder of the run to continue)")
    outcome = run(
        RunRequest(
            suite=args.suite,
            policy=args.policy,
            policy_args=args.policy_arg,
            workers=args.workers,
            run_dir=args.run_dir,
            results_root=args.results_root,
            resume=args.resume,
            videos=args.videos,
            replan_steps=args.replan_steps,
            render=args.render.replace("-", "_"),
            episodes_per_task=args.episodes,
            seed=args.seed,
            batch_envs=args.batch_envs,
            executor=args.executor,
            ray_address=args.ray_address,
            policy_server=args.policy_server,
            progress=not args.no_progress,
            gate=gate_config(args),
            policy_timeout_s=args.policy_timeout,
            episode_timeout_s=args.episode_timeout,
            max_worker_rss_mb=args.max_worker_rss_mb,
            dead_policy_episodes=args.stop_if_dead,
        )
    )
    print(f"\nSuite {outcome.spec.name} ({outcome.spec.backend}); run folder {outcome.run_dir}")
    print(f"episodes run now: {outcome.executed}, already done before: {outcome.skipped}")
    if outcome.execution.retried:
        print(f"episodes retried after a worker died: {len(outcome.execution.retried)}")
    if outcome.execution.recycled:
        print(f"workers replaced: {len(outcome.execution.recycled)} ({outcome.execution.recycled[-1]})")
    print()
    print(outcome.table_markdown)
    errors = outcome.summary[outcome.summary["task"] != "suite mean"][["policy_errors", "env_errors"]].sum()
    if errors.sum():
        print(
            f"\npolicy errors: {int(errors['policy_errors'])}, env errors: {int(errors['env_errors'])} "
            "(see episodes.sqlite)"
        )
    if outcome.gate is not None:
        from vla_eval.results.gate import describe

        print("\n" + describe(outcome.gate))
        return outcome.gate.exit_code
    return 0


def _cmd_table(args: argparse.Namespace) -> int:
    from vla_eval.execution.runner import load_run_table
    from vla_eval.run_meta import RunMeta

    config, summary, md = load_run_table(Path(args.run_dir))
    meta = RunMeta.from_stored(config, args.run_dir)
    if args.format == "csv":
        summary.to_csv(sys.stdout, index=False)
    else:
        print(f"run {meta.run_id or args.run_dir}  suite {meta.suite.name or '?'}  policy {meta.policy.name or '?'}")
        print(md)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from vla_eval import paths
    from vla_eval.backends import BACKENDS, get_backend
    from vla_eval.policies import POLICIES

    if args.what == "suites":
        for name, path in paths.list_named_yaml("suites").items():
            print(f"{name:28s} {path}")
    elif args.what == "policies":
        for name in POLICIES.names():
            print(f"{name:28s} {POLICIES.help(name)}")
        for name, path in paths.list_named_yaml("policies").items():
            print(f"{name:28s} {path}")
    else:
        for backend in BACKENDS.names():
            try:
                tasks = get_backend(backend).task_names()
            except Exception as exc:
                print(f"{backend}: unavailable ({exc})")
                continue
            print(f"{backend}: {', '.join(tasks)}")
        try:
            from vla_eval.sims import registered_env_ids

            print("gymnasium ids: " + ", ".join(registered_env_ids()))
        except ImportError:
            pass
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vla-eval", description="Evaluate VLA policies in simulation.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="roll out a policy on a suite and print its success table")
    p.add_argument("--suite", default=DEFAULT_SUITE, help=f"suite name or YAML path (default {DEFAULT_SUITE})")
    p.add_argument("--policy", default="scripted", help="registered policy name or policy YAML path")
    p.add_argument("--policy-arg", action="append", default=[], metavar="KEY=VALUE", help="override a policy argument")
    p.add_argument(
        "--workers", type=int_at_least(1, "--workers"), default=None, help="worker processes (default: CPU cores)"
    )
    p.add_argument(
        "--batch-envs",
        type=int_at_least(1, "--batch-envs"),
        default=1,
        metavar="K",
        help="step K envs in lock-step per worker so a batched policy gets one call per step",
    )
    p.add_argument("--executor", choices=["local", "ray"], default="local")
    p.add_argument(
        "--ray-address", default=None, help="existing Ray cluster (host:port or auto); default: start a local Ray"
    )
    p.add_argument(
        "--policy-server",
        choices=["none", "auto"],
        default="none",
        help="auto: load the policy once in a batching server (GPU if any) that all workers share",
    )
    p.add_argument("--episodes", type=int_at_least(1, "--episodes"), default=None, help="override episodes per task")
    p.add_argument("--seed", type=int, default=None, help="override the suite seed")
    p.add_argument(
        "--run-dir", type=Path, default=None, help="run folder (default RESULTS_ROOT/<suite>__<policy>__<time>)"
    )
    p.add_argument("--results-root", type=Path, default=Path("results"))
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir, skipping finished episodes")
    p.add_argument("--videos", default="none", help="none | failures | all | first:N")
    p.add_argument(
        "--replan-steps",
        type=int_at_least(1, "--replan-steps"),
        default=None,
        help="execute only the first K >= 1 actions of each chunk",
    )
    p.add_argument(
        "--render",
        choices=["on-demand", "eager"],
        default="on-demand",
        help="on-demand: draw only the cameras the policy or the video looks at; eager: every camera "
        "every step (same results, slower)",
    )
    p.add_argument(
        "--policy-timeout",
        type=positive_float("--policy-timeout"),
        default=None,
        metavar="SECONDS",
        help="wall-clock limit per policy reset/predict call; an overrun ends the episode as policy_timeout",
    )
    p.add_argument(
        "--episode-timeout",
        type=positive_float("--episode-timeout"),
        default=None,
        metavar="SECONDS",
        help="wall-clock limit per episode (per lock-step batch); an overrun ends it as episode_timeout",
    )
    p.add_argument(
        "--max-worker-rss-mb",
        type=positive_float("--max-worker-rss-mb"),
        default=None,
        metavar="MB",
        help="replace a worker between episodes once its resident memory passes this",
    )
    p.add_argument(
        "--stop-if-dead",
        type=int_at_least(0, "--stop-if-dead"),
        default=10,
        metavar="K",
        help="stop the run (exit 3) if its first K episodes all fail in the policy; 0 = never (default 10)",
    )
    p.add_argument("--no-progress", action="store_true")
    from vla_eval.cli.gate_args import add_gate_arguments

    add_gate_arguments(p)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("table", help="print the success table of a run folder")
    p.add_argument("run_dir")
    p.add_argument("--format", choices=["markdown", "csv"], default="markdown")
    p.set_defaults(func=_cmd_table)

    p = sub.add_parser("list", help="list suites, policies or envs")
    p.add_argument("what", choices=["suites", "policies", "envs"])
    p.set_defaults(func=_cmd_list)

    import importlib

    for module in SUBCOMMAND_MODULES:
        try:
            importlib.import_module(module).register(sub)
        except ModuleNotFoundError as exc:
            if not (exc.name and module.startswith(exc.name)):
                raise
    return parser


def os_error_text(exc: OSError) -> str:
    """One line naming the path and what the OS said; a full disk also says what was kept."""
    where = f"{exc.filename}: " if exc.filename else ""
    text = f"{where}{exc.strerror or exc}"
    if exc.errno == errno.ENOSPC:
        text += " (the disk is full; a run keeps every episode stored so far: free space, then --resume)"
    return text


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except VlaEvalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk, a read-only target, a folder where a file belongs (or the reverse)
        print(f"error: {os_error_text(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished episodes are stored; continue with --run-dir RUN_DIR --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
