"""What a gated run saves: expected episodes vs the fixed plan, at equal error rates.

For each baseline success rate and true drop, the script sizes two designs with the
same alpha, the same power at the same alternative and the same test (stratified
score z plus per-task tests, `vla_eval.results.gate`):

* fixed plan: one look; the smallest episodes per task whose power reaches --power;
* gated run: --looks looks; the smallest episodes per task (its plan) whose power
  reaches --power (a little more than the fixed plan: the price of looking early).

Then it simulates gated runs (binomial episodes, launched in the runner's balanced
order, judged by the same `decide` the runner and `check` use) against a committed
baseline with the given rate, and prints E[episodes] / fixed plan.

    python benchmarks/gated_run.py [--tasks 10] [--baseline-episodes 500] [--runs 4000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vla_eval.results.gate import GateConfig, build_design, simulate


def design(rate: float, n_plan: int, args, looks: int) -> dict:
    tasks = [f"t{i}" for i in range(args.tasks)]
    k = int(round(rate * args.baseline_episodes))
    baseline = {
        "run_id": "baseline",
        "counts": {"in_domain": {t: {"episodes": args.baseline_episodes, "successes": k} for t in tasks}},
    }
    cfg = GateConfig(Path("baseline.json"), max_drop=args.max_drop, alpha=args.alpha, power=args.power, looks=looks)
    return build_design(cfg, baseline, [(t, "in_domain", n_plan) for t in tasks])


def smallest_plan(rate: float, args, looks: int) -> tuple[int, dict]:
    """Fewest episodes per task whose design power (numerical integration) reaches --power."""
    lo, hi = 2, 8
    while design(rate, hi, args, looks)["operating"]["drop_alternative"]["p_regression"] < args.power:
        lo, hi = hi, hi * 2
        if hi > 20000:
            raise SystemExit(f"baseline {rate}: no plan reaches power {args.power} (baseline too small or too noisy)")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if design(rate, mid, args, looks)["operating"]["drop_alternative"]["p_regression"] >= args.power:
            hi = mid
        else:
            lo = mid
    return hi, design(rate, hi, args, looks)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=10)
    ap.add_argument("--baseline-episodes", type=int, default=500, help="episodes per task in the committed baseline")
    ap.add_argument("--max-drop", type=float, default=0.05)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--power", type=float, default=0.8)
    ap.add_argument("--looks", type=int, default=10)
    ap.add_argument("--runs", type=int, default=4000, help="simulated gated runs per grid point")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    d = args.max_drop
    print(
        f"{args.tasks} tasks, baseline {args.baseline_episodes} episodes/task, max drop {d:g}, alpha {args.alpha:g}, "
        f"power {args.power:g} at a drop of {2 * d:g}, {args.looks} looks, {args.runs} simulated runs per point\n"
    )
    print(
        "| baseline | true drop | fixed plan (ep/task) | gated plan (ep/task) | P(regression) gated | "
        "P(regression) fixed | E[episodes] gated / fixed plan | E / gated plan |"
    )
    print("|---|---|---|---|---|---|---|---|")
    far = []
    for rate in (0.5, 0.8, 0.95):
        n_fixed, fixed = smallest_plan(rate, args, 1)
        n_gated, gated = smallest_plan(rate, args, args.looks)
        for drop in (0.0, d, 2 * d):
            p_new = np.full(args.tasks, rate - drop)
            codes, used = simulate(gated, p_new, args.runs, rng)
            codes_f, _ = simulate(fixed, p_new, args.runs, rng)
            ratio = used.mean() / (n_fixed * args.tasks)
            if drop in (0.0, 2 * d):
                far.append(ratio)
            print(
                f"| {rate:.2f} | {drop:.2f} | {n_fixed} | {n_gated} | "
                f"{(codes == 1).mean():.3f} | {(codes_f == 1).mean():.3f} | "
                f"**{100 * ratio:.0f}%** | {100 * used.mean() / (n_gated * args.tasks):.0f}% |"
            )
    print(
        f"\nmean over the points far from the boundary (true drop 0 and 2 x max drop): "
        f"{100 * np.mean(far):.0f}% of the fixed plan"
    )


if __name__ == "__main__":
    main()
