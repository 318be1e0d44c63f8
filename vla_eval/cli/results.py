"""Subcommands: compare, baseline save, check, plan-episodes, correlate, report, runs.

Exit codes: 0 = fine, 1 = ``check`` found a significant regression, 2 = bad input
(missing file, malformed baseline, protocol mismatch, ...: raised as
:class:`~vla_eval.errors.ConfigError`, which :func:`vla_eval.cli.main.main` turns into 2),
3 = ``check`` on an incomplete run (cells without episodes), 4 = ``check`` on a run whose
error rate is above ``--max-error-rate`` (see :mod:`vla_eval.results.check`), 5 = a gated run
(``run --gate``) whose verdict is undecided (plan too small, or run incomplete).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vla_eval.cli.outputs import output_dir, output_file
from vla_eval.errors import ConfigError


def _prob(name: str, lo_open: bool = True, hi_open: bool = True):
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        ok = (v > 0 if lo_open else v >= 0) and (v < 1 if hi_open else v <= 1)
        if not ok:
            raise argparse.ArgumentTypeError(
                f"{name} must be in {'(' if lo_open else '['}0, 1{')' if hi_open else ']'}, got {v}"
            )
        return v

    return parse


def _cmd_compare(args) -> int:
    from vla_eval.results.compare import compare_runs

    output_file(args.json, "--json")
    result = compare_runs(args.run_a, args.run_b, args.alpha, args.test, args.allow_protocol_mismatch)
    if args.json:
        result.frame().to_json(args.json, orient="records", indent=2)
    print(result.text())
    return 0


def _cmd_baseline_save(args) -> int:
    from vla_eval.results.check import save_baseline

    output_file(args.output, "--output")
    data = save_baseline(args.run, args.output)
    n = sum(c["episodes"] for t in data["counts"].values() for c in t.values())
    print(
        f"wrote {args.output}: run {data['run_id']}, suite {data['suite']}, {n} episodes in "
        f"{sum(len(t) for t in data['counts'].values())} task/split cells"
    )
    return 0


def _cmd_check(args) -> int:
    from vla_eval.results.check import check_run, load_baseline

    output_file(args.json, "--json")
    baseline = load_baseline(args.baseline)
    if not (args.sequential or args.fixed_sample):
        from vla_eval.results.gate import describe
        from vla_eval.results.gate_run import check_gated

        state = check_gated(args.run, args.baseline)
        if state is not None:
            print("gated run: the design stored in the run record applies (its alpha, max drop and bounds)")
            print(describe(state))
            return state.exit_code
    result = check_run(
        args.run,
        baseline,
        alpha=args.alpha,
        max_drop=args.max_drop,
        detect_drop=args.detect_drop,
        power=args.power,
        sequential=args.sequential,
        beta=args.beta,
        allow_protocol_mismatch=args.allow_protocol_mismatch,
        max_error_rate=args.max_error_rate,
        allow_incomplete=args.allow_incomplete,
    )
    if args.json:
        result.frame().to_json(args.json, orient="records", indent=2)
    print(result.text())
    return result.exit_code


def _cmd_plan(args) -> int:

    if args.tasks < 1 or not 0 < args.ratio < 1e6:  # also refuses nan and inf
        raise ConfigError(
            f"--tasks must be >= 1 and --ratio in (0, 1e6), got --tasks {args.tasks} --ratio {args.ratio}"
        )
    try:
        return _plan(args)
    except (OverflowError, ValueError, ZeroDivisionError, MemoryError, RecursionError) as exc:
        # a drop of 1e-9, or alpha 1e-12 at power 0.99: no finite plan exists to print
        raise ConfigError(
            f"plan-episodes: no usable plan for --p0 {args.p0:g} --delta {args.delta:g} --alpha "
            f"{args.alpha:g} --power {args.power:g} ({type(exc).__name__}: {str(exc)[:100]}); "
            "ask for a larger --delta or a larger --alpha"
        ) from None


def _plan(args) -> int:
    from vla_eval.results.sequential import SequentialTest
    from vla_eval.results.stats import exact_binomial_power, required_n_exact_binomial, required_n_two_sample

    p0 = args.p0 - args.max_drop
    p1 = p0 - args.delta
    if not 0 < p1 < p0 < 1 + 1e-12:
        raise ConfigError(f"need 0 < p0 - max_drop - delta (= {p1:.3f}) < p0 - max_drop (= {p0:.3f}) <= 1")
    level = args.alpha / args.tasks
    n2 = required_n_two_sample(p0, p1, level, args.power, ratio=args.ratio, one_sided=not args.two_sided)
    sided = "two-sided" if args.two_sided else "one-sided"
    print(
        f"H0: p >= {p0:.3f}  vs  true rate {p1:.3f} "
        f"(baseline {args.p0:g}, allowed drop {args.max_drop:g}, detect {args.delta:g} more)"
    )
    print(
        f"alpha {args.alpha:g}{f' / {args.tasks} tasks (Holm first step) = {level:.3g}' if args.tasks > 1 else ''}, "
        f"power {args.power:g}, {sided}"
    )
    print(
        f"two-sample (baseline run also measured, {args.ratio:g}x as many baseline episodes): "
        f"{n2} episodes per task  [statsmodels NormalIndPower, arcsine effect size h]"
    )
    if not args.two_sided:
        n1 = required_n_exact_binomial(p0, p1, level, args.power)
        print(
            f"known baseline rate (exact one-sided binomial test): {n1} episodes per task "
            f"(exact power {exact_binomial_power(n1, p0, p1, level):.3f})"
        )
        if 0 < p0 < 1:
            t = SequentialTest(p0, args.delta, level, 1 - args.power, max_n=2 * n1)
            h0, h1 = t.operating_characteristics(p0), t.operating_characteristics(p1)
            print(
                f"sequential (SPRT, truncated at {2 * n1}): expected {h0.expected_n:.0f} episodes when p = {p0:.3f}, "
                f"{h1.expected_n:.0f} when p = {p1:.3f}; "
                f"false alarms {h0.p_regression:.3f}, power {h1.p_regression:.3f}"
            )
    return 0


def _cmd_correlate(args) -> int:
    from vla_eval.results.correlate import correlate

    result = correlate(args.sim, args.real)
    print(result.text())
    return 0


def _cmd_report(args) -> int:
    from vla_eval.results.report import build_report

    output_dir(args.output, "--output")
    rep = build_report(args.results_root, args.output, title=args.title)
    print(
        f"wrote {rep.html_path} and {rep.markdown_path} "
        f"({rep.runs} runs, {len(rep.boards)} leaderboard tables, {len(rep.plots)} plots)"
    )
    return 0


def _cmd_runs(args) -> int:
    from vla_eval.results.runs import list_runs

    runs = list_runs(args.results_root, policy=args.policy, suite=args.suite, checkpoint=args.checkpoint)
    if args.json:
        json.dump([r.to_dict() for r in runs], sys.stdout, indent=2, default=str)
        print()
        return 0
    for r in runs:
        print(
            f"{r.run_id:40s} {r.suite:18s} {r.policy:16s} {r.checkpoint or '-':14s} {r.created_at or '-':26s} "
            f"{r.protocol.get('protocol_hash') or '-'} {r.n_episodes:6d} ep  {r.run_dir}"
        )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    alpha = dict(type=_prob("--alpha"), default=0.05, help="significance level (default 0.05)")

    p = sub.add_parser("compare", help="compare two runs per task/split with exact tests (B relative to A)")
    p.add_argument("run_a", help="reference run folder (A)")
    p.add_argument("run_b", help="run folder to compare against A (B)")
    p.add_argument("--alpha", **alpha)
    p.add_argument(
        "--test",
        choices=["auto", "boschloo", "fisher", "barnard"],
        default="auto",
        help="exact two-sided test (auto: Boschloo up to 200 episodes per arm, Fisher above)",
    )
    p.add_argument(
        "--allow-protocol-mismatch",
        action="store_true",
        help="compare even if the protocols differ (prints what differs)",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the rows as JSON to this file")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("baseline", help="manage regression baselines")
    bsub = p.add_subparsers(dest="baseline_command", required=True)
    bp = bsub.add_parser("save", help="write a run's per-task counts, protocol and policy as a small JSON baseline")
    bp.add_argument("run", help="run folder")
    bp.add_argument("-o", "--output", type=Path, required=True, help="baseline JSON to write")
    bp.set_defaults(func=_cmd_baseline_save)

    p = sub.add_parser(
        "check",
        help="CI gate: exit 1 on a significant regression against a baseline, else 0 "
        "(2 = bad input, 3 = incomplete run, 4 = error rate too high, 5 = gated run undecided)",
    )
    p.add_argument("run", help="run folder to check")
    p.add_argument("--baseline", type=Path, required=True, help="baseline JSON written by `vla-eval baseline save`")
    p.add_argument("--alpha", **alpha)
    p.add_argument(
        "--max-drop",
        type=_prob("--max-drop", lo_open=False),
        default=0.05,
        help="allowed drop in success rate before it counts as a regression (default 0.05)",
    )
    p.add_argument(
        "--detect-drop",
        type=_prob("--detect-drop"),
        default=0.10,
        help="further drop beyond --max-drop the check should catch with --power "
        "(power warning, SPRT alternative; default 0.10)",
    )
    p.add_argument(
        "--power", type=_prob("--power"), default=0.8, help="target power for the too-small warning (default 0.8)"
    )
    p.add_argument(
        "--sequential",
        action="store_true",
        help="truncated SPRT per cell over episodes in completion order; reports episodes saved",
    )
    p.add_argument("--beta", type=_prob("--beta"), default=0.2, help="SPRT type II error (default 0.2)")
    p.add_argument(
        "--fixed-sample",
        action="store_true",
        help="for a gated run (`run --gate`): ignore its design and test the episodes as a fixed sample",
    )
    p.add_argument("--allow-protocol-mismatch", action="store_true")
    p.add_argument(
        "--max-error-rate",
        type=_prob("--max-error-rate", lo_open=False, hi_open=False),
        default=0.1,
        help="fraction of episodes that may end in policy_error/timeouts/env_error (default 0.1; above: exit 4)",
    )
    p.add_argument(
        "--allow-incomplete", action="store_true", help="check a run with empty task/split cells instead of exiting 3"
    )
    p.add_argument("--json", type=Path, default=None, help="also write the rows as JSON to this file")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("plan-episodes", help="episodes per task needed to detect a drop in success rate")
    p.add_argument("--p0", type=_prob("--p0", hi_open=False), required=True, help="baseline success rate")
    p.add_argument("--delta", type=_prob("--delta"), required=True, help="drop to detect (beyond --max-drop)")
    p.add_argument("--power", type=_prob("--power"), default=0.8)
    p.add_argument("--alpha", **alpha)
    p.add_argument(
        "--max-drop",
        type=_prob("--max-drop", lo_open=False),
        default=0.0,
        help="allowed drop (as in `check`; default 0)",
    )
    p.add_argument(
        "--tasks", type=int, default=1, help="tasks tested together (Holm: the first step is at alpha/tasks)"
    )
    p.add_argument("--ratio", type=float, default=1.0, help="baseline episodes per new episode (default 1)")
    p.add_argument("--two-sided", action="store_true", help="plan for a two-sided comparison (`compare`) instead")
    p.set_defaults(func=_cmd_plan)

    p = sub.add_parser("correlate", help="sim-vs-real agreement over policies: Pearson r and MMRV")
    p.add_argument("--sim", nargs="+", required=True, help="sim run folders or results roots")
    p.add_argument(
        "--real", type=Path, required=True, help="CSV with columns policy, task (optional), success_rate in [0, 1]"
    )
    p.set_defaults(func=_cmd_correlate)

    p = sub.add_parser("report", help="static Markdown + HTML leaderboard with plots from a results root")
    p.add_argument("results_root")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder (index.html, index.md, plots/)")
    p.add_argument("--title", default="vla-eval leaderboard")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("runs", help="list the runs under a results root")
    p.add_argument("results_root")
    p.add_argument("--policy", default=None)
    p.add_argument("--suite", default=None)
    p.add_argument("--checkpoint", default=None, help="checkpoint hash or prefix")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_runs)
