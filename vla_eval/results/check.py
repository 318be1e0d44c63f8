"""Regression gate: a run against a committed baseline, as an exit code for CI.

Why not a threshold on the point estimate: with 50 episodes a task's rate has a 95%
interval about ±10 points wide near 80% (±50 points with 5 episodes), so "fail if the
rate dropped by more than 5 points" fails half the time on an unchanged checkpoint.
The gate fails only on a *statistically significant* regression beyond an allowed drop.

Fixed-sample mode: for every (task, split) cell and for all episodes pooled, a one-sided
exact test (Chan's exact unconditional score test, see :mod:`vla_eval.results.stats`) of

    H0: p_new >= p_base - max_drop   vs   H1: p_new < p_base - max_drop

with Holm's correction over the whole family (all cells plus the pooled test), so the
probability of a false alarm on a checkpoint that is no worse than allowed is at most
alpha, however many tasks the suite has. The baseline's own sampling noise is part of
the test (it is a two-sample test, not a comparison with a fixed number).

Sequential mode (``--sequential``): one truncated SPRT per cell (:mod:`.sequential`) with
p0 = p_base - max_drop, alternative p0 - detect_drop, alpha split evenly over cells
(Bonferroni), fed the run's episodes in completion order. It reports how many episodes a
runner stopping each cell once its verdict is settled would have saved. The baseline
rate is taken as known here (use a baseline with many episodes).

Power: ``check`` warns when a cell has fewer episodes than needed to detect a true rate of
``p_base - max_drop - detect_drop`` with the requested power at Holm's first-step level
alpha/K (normal approximation on the arcsine scale, as ``plan-episodes``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vla_eval.errors import ConfigError
from vla_eval.record import ERROR_TERMINATIONS
from vla_eval.results.compare import ALL, counts, format_table
from vla_eval.results.runs import RunInfo, protocol_differences, read_run, records_to_frame
from vla_eval.results.sequential import CONTINUE, REGRESSION, SequentialTest
from vla_eval.tables import suite_rows
from vla_eval.results.stats import noninferiority_pvalue, holm, power_two_sample, required_n_two_sample, wilson_interval

EXIT_PASS, EXIT_REGRESSION, EXIT_BAD_INPUT, EXIT_INCOMPLETE, EXIT_ERRORS = 0, 1, 2, 3, 4
"""``check`` exit codes (docs/results.md). Errors and missing cells never pass: a run whose
episodes failed in the policy or env (above ``--max-error-rate``) is 4, a run missing cells
of its plan or of the baseline is 3, both before the regression verdict (1) is considered."""

DEFAULT_MAX_ERROR_RATE = 0.1

BASELINE_FORMAT = "vla-eval-baseline"
BASELINE_VERSION = 1


# ---------------------------------------------------------------- baseline files


def baseline_from_run(run_dir: str | Path) -> dict[str, Any]:
    """Summary of a run small enough to commit: counts per task/split, protocol, policy."""
    info, records = read_run(run_dir)
    if not records:
        raise ConfigError(f"{run_dir}: run has no finished episodes; nothing to save as a baseline")
    c = counts(suite_rows(records_to_frame(info, records), info.tasks, info.splits, str(run_dir)))
    cells: dict[str, dict[str, dict[str, int]]] = {}
    for r in c.itertuples():
        cells.setdefault(r.split, {})[r.task] = {"episodes": int(r.n), "successes": int(r.k)}
    return {
        "format": BASELINE_FORMAT,
        "version": BASELINE_VERSION,
        "run_id": info.run_id,
        "created_at": info.created_at,
        "suite": info.suite,
        "policy": {"name": info.policy, "adapter": info.policy_adapter, "checkpoint": info.checkpoint},
        "protocol": info.protocol,
        "splits": info.splits,
        "counts": {s: dict(sorted(t.items())) for s, t in sorted(cells.items())},
    }


def save_baseline(run_dir: str | Path, out: str | Path) -> dict[str, Any]:
    data = baseline_from_run(run_dir)
    Path(out).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return data


MAX_BASELINE_EPISODES = 10**9
"""Episodes one baseline cell may claim: far above any real run, and small enough that
every count converts to a float exactly (10^400 would overflow the statistics)."""


def _text_or_none(path: Path, field: str, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{path}: field {field!r} must be a string or null, got {type(value).__name__}")


def load_baseline(path: str | Path) -> dict[str, Any]:
    """Read and validate a baseline file; every problem is a :class:`ConfigError` (exit 2).

    Every field the check reads is validated here, so a malformed baseline can never
    surface later as a crash that ``check`` / ``run --gate`` would report as exit 1,
    which CI reads as "significant regression"."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"baseline file {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:  # also a number of more than 4300 digits
        raise ConfigError(f"{path}: not valid JSON ({str(exc)[:200]})") from None
    except RecursionError:
        raise ConfigError(f"{path}: not a vla-eval baseline (JSON nested too deeply)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the baseline ({exc.strerror or exc})") from None
    if not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT:
        raise ConfigError(f"{path}: not a vla-eval baseline (field 'format' must be {BASELINE_FORMAT!r}; write one with `vla-eval baseline save`)")
    if data.get("version") != BASELINE_VERSION or isinstance(data.get("version"), bool):
        raise ConfigError(f"{path}: baseline version {data.get('version')!r} is not supported (expected {BASELINE_VERSION})")
    cells = data.get("counts")
    if not isinstance(cells, dict) or not cells:
        raise ConfigError(f"{path}: field 'counts' must be a non-empty mapping split -> task -> counts")
    for split, tasks in cells.items():
        if not isinstance(tasks, dict) or not tasks:
            raise ConfigError(f"{path}: counts[{split!r}] must be a non-empty mapping task -> counts")
        for task, c in tasks.items():
            ok = isinstance(c, dict) and all(isinstance(c.get(k), int) and not isinstance(c.get(k), bool) for k in ("episodes", "successes"))
            if not ok or not 0 <= c["successes"] <= c["episodes"] or not 1 <= c["episodes"] <= MAX_BASELINE_EPISODES:
                raise ConfigError(f"{path}: counts[{split!r}][{task!r}] must be {{'episodes': n in 1..{MAX_BASELINE_EPISODES:.0e}, "
                                  f"'successes': 0..n}}, got {_short(c)}")
    protocol = data.get("protocol")
    if not isinstance(protocol, dict):
        raise ConfigError(f"{path}: field 'protocol' missing or not a mapping")
    if not isinstance(protocol.get("task_max_steps") or {}, dict):
        raise ConfigError(f"{path}: field 'protocol.task_max_steps' must be a mapping task -> steps, "
                          f"got {type(protocol['task_max_steps']).__name__}")
    splits = data.get("splits")
    if splits is not None and not (isinstance(splits, list) and all(isinstance(x, str) for x in splits)):
        raise ConfigError(f"{path}: field 'splits' must be a list of split names, got {_short(splits)}")
    policy = data.get("policy")
    if policy is not None and not isinstance(policy, dict):
        raise ConfigError(f"{path}: field 'policy' must be a mapping (name, adapter, checkpoint), got {type(policy).__name__}")
    for key, value in (policy or {}).items():
        _text_or_none(path, f"policy.{key}", value)
    for key in ("run_id", "created_at", "suite"):
        _text_or_none(path, key, data.get(key))
    return data


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def baseline_counts(data: dict[str, Any]) -> pd.DataFrame:
    rows = [
        {"task": task, "split": split, "k": c["successes"], "n": c["episodes"]}
        for split, tasks in data["counts"].items()
        for task, c in tasks.items()
    ]
    return pd.DataFrame(rows, columns=["task", "split", "k", "n"])


# ---------------------------------------------------------------- the check


@dataclass
class CheckRow:
    task: str
    split: str
    k_base: int
    n_base: int
    k_new: int
    n_new: int
    p_value: float = float("nan")
    p_adjusted: float = float("nan")
    regression: bool = False
    power: float = float("nan")
    needed_n: int | None = None
    seq_decision: str | None = None
    seq_used: int | None = None

    @property
    def rate_base(self) -> float:
        return self.k_base / self.n_base

    @property
    def rate_new(self) -> float:
        return self.k_new / self.n_new if self.n_new else float("nan")


@dataclass
class CheckResult:
    run: RunInfo
    baseline: dict[str, Any]
    alpha: float
    max_drop: float
    detect_drop: float
    power: float
    rows: list[CheckRow]
    sequential: bool = False
    protocol_differences: list[str] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    episodes_used: int | None = None
    episodes_total: int | None = None
    n_errors: int = 0
    n_episodes: int = 0
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE
    empty_cells: list[tuple[str, str]] = field(default_factory=list)
    allow_incomplete: bool = False

    @property
    def regression(self) -> bool:
        return any(r.regression for r in self.rows)

    @property
    def error_rate(self) -> float:
        return self.n_errors / self.n_episodes if self.n_episodes else 0.0

    @property
    def too_many_errors(self) -> bool:
        return self.error_rate > self.max_error_rate

    @property
    def incomplete(self) -> bool:
        return bool(self.missing or self.empty_cells) and not self.allow_incomplete

    @property
    def exit_code(self) -> int:
        if self.too_many_errors:
            return EXIT_ERRORS
        if self.incomplete:
            return EXIT_INCOMPLETE
        return EXIT_REGRESSION if self.regression else EXIT_PASS

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([{**r.__dict__, "rate_base": r.rate_base, "rate_new": r.rate_new} for r in self.rows])

    def text(self) -> str:
        b = self.baseline
        pol = b.get("policy") or {}
        mode = "sequential (truncated SPRT per cell, Bonferroni)" if self.sequential else "fixed sample (exact one-sided test, Holm)"
        lines = [
            f"run      {self.run.run_id}  policy {self.run.policy}  checkpoint {self.run.checkpoint or '-'}",
            f"baseline {b.get('run_id')}  policy {pol.get('name')}  checkpoint {pol.get('checkpoint') or '-'}  ({b.get('created_at')})",
            f"H0: p_new >= p_base - {self.max_drop:g} per cell; alpha {self.alpha:g}; {mode}",
        ]
        if self.protocol_differences:
            lines.append("WARNING: protocols differ (checked anyway, --allow-protocol-mismatch):")
            lines += [f"  - {d}" for d in self.protocol_differences]
        header = ["task", "split", "baseline %", "run % [95% CI]", "drop pts"]
        detect = f"power@-{100 * (self.max_drop + self.detect_drop):g}pts"
        header += ["SPRT", "episodes used"] if self.sequential else ["p", "p adj (Holm)", detect]
        header.append("result")
        body = []
        for r in self.rows:
            lo, hi = wilson_interval(r.k_new, r.n_new)
            cells = [
                r.task, r.split, f"{100 * r.rate_base:.1f} ({r.k_base}/{r.n_base})",
                f"{100 * r.rate_new:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] ({r.k_new}/{r.n_new})",
                f"{100 * (r.rate_base - r.rate_new):+.1f}",
            ]
            if self.sequential:
                cells += [r.seq_decision or "-", f"{r.seq_used}/{r.n_new}" if r.seq_used is not None else "-"]
            else:
                cells += [_fmt(r.p_value), _fmt(r.p_adjusted), "-" if r.power != r.power else f"{r.power:.2f}"]
            cells.append("REGRESSION" if r.regression else "ok")
            body.append(cells)
        lines += ["", format_table(header, body), ""]
        if self.missing:
            lines.append("not checked (in the baseline, no episodes in the run): " + ", ".join(f"{t}/{s}" for t, s in self.missing))
        lines += [f"warning: {w}" for w in self.warnings]
        if self.sequential and self.episodes_used is not None:
            saved = self.episodes_total - self.episodes_used
            lines.append(
                f"sequential: verdicts settled after {self.episodes_used} of {self.episodes_total} episodes; "
                f"a runner stopping each settled cell would have saved {saved} episodes ({100 * saved / max(1, self.episodes_total):.0f}%)"
            )
        flagged = [f"{r.task}/{r.split}" for r in self.rows if r.regression]
        if self.empty_cells:
            lines.append("planned by the run, no episodes: " + ", ".join(f"{t}/{s}" for t, s in self.empty_cells))
        if self.too_many_errors:
            lines.append(
                f"RESULT: {self.n_errors} of {self.n_episodes} episodes ({100 * self.error_rate:.0f}%) ended in "
                f"policy_error / policy_timeout / episode_timeout / env_error, above --max-error-rate "
                f"{100 * self.max_error_rate:g}%: the run is broken, not checked (exit {EXIT_ERRORS})"
            )
        elif self.incomplete:
            n = len(self.missing) + len(self.empty_cells)
            lines.append(f"RESULT: run incomplete: {n} task/split cells have no episodes; an incomplete run never passes "
                         f"(exit {EXIT_INCOMPLETE}; finish it with --resume, or pass --allow-incomplete)")
        elif flagged:
            lines.append(f"RESULT: significant regression beyond the allowed drop of {100 * self.max_drop:g} pts in: {', '.join(flagged)} (exit 1)")
        else:
            lines.append(f"RESULT: no significant regression beyond the allowed drop of {100 * self.max_drop:g} pts (exit 0)")
        return "\n".join(lines)


def _fmt(p: float) -> str:
    if p != p:
        return "-"
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def _validate(alpha: float, max_drop: float, detect_drop: float, power: float, beta: float) -> None:
    if not 0 < alpha < 1:
        raise ConfigError(f"--alpha must be in (0, 1), got {alpha}")
    if not 0 <= max_drop < 1:
        raise ConfigError(f"--max-drop must be in [0, 1), got {max_drop}")
    if not 0 < detect_drop < 1:
        raise ConfigError(f"--detect-drop must be in (0, 1), got {detect_drop}")
    if not 0 < power < 1:
        raise ConfigError(f"--power must be in (0, 1), got {power}")
    if max_drop + detect_drop >= 1:
        raise ConfigError(f"--max-drop {max_drop:g} plus --detect-drop {detect_drop:g} must be below 1: "
                          "a success rate cannot drop by 100 pts or more")
    if not 0 < beta < 1 or alpha + beta >= 1:
        raise ConfigError(f"--beta must be in (0, 1) with alpha + beta < 1, got {beta}")


def check_run(
    run_dir: str | Path,
    baseline: dict[str, Any],
    alpha: float = 0.05,
    max_drop: float = 0.05,
    detect_drop: float = 0.10,
    power: float = 0.8,
    sequential: bool = False,
    beta: float = 0.2,
    allow_protocol_mismatch: bool = False,
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE,
    allow_incomplete: bool = False,
) -> CheckResult:
    """Check a run folder against a loaded baseline (see the module docstring)."""
    _validate(alpha, max_drop, detect_drop, power, beta)
    info, records = read_run(run_dir)
    diffs = protocol_differences(baseline["protocol"], info.protocol)
    if diffs and not allow_protocol_mismatch:
        raise ConfigError(
            "run and baseline use different protocols; a check would be meaningless:\n  - "
            + "\n  - ".join(diffs)
            + "\n(pass --allow-protocol-mismatch to check anyway)"
        )
    if not records:
        raise ConfigError(f"{run_dir}: run has no finished episodes")
    df = records_to_frame(info, records)
    merged = baseline_counts(baseline).merge(counts(df), on=["task", "split"], how="left", suffixes=("_base", "_new"))
    missing = [(r.task, r.split) for r in merged[merged["n_new"].isna()].itertuples()]
    outside = [f"{t}/{s}" for t, s in missing if t not in info.tasks or s not in info.splits]
    if outside and not allow_incomplete:
        # --resume only runs the suite's own plan: advising it here would send CI round a loop
        raise ConfigError(
            f"the baseline has task/split cells that suite {info.suite!r} of {run_dir} does not have: "
            f"{', '.join(outside[:10])}{' ...' if len(outside) > 10 else ''}; --resume cannot add them. "
            "Use a baseline saved from a run of this suite, or pass --allow-incomplete to check the shared cells"
        )
    merged = merged.dropna(subset=["n_new"])
    if merged.empty:
        raise ConfigError(f"{run_dir}: no (task, split) cell of the run is in the baseline (tasks/splits differ)")
    split_order = {s: i for i, s in enumerate(baseline.get("splits") or [])}
    merged = merged.assign(_o=merged["split"].map(lambda s: split_order.get(s, len(split_order)))).sort_values(["_o", "task"])
    rows = [CheckRow(r.task, r.split, int(r.k_base), int(r.n_base), int(r.k_new), int(r.n_new)) for r in merged.itertuples()]
    result = CheckResult(info, baseline, alpha, max_drop, detect_drop, power, rows, sequential, diffs, missing)
    present = set(zip(df["task"], df["split"]))
    result.empty_cells = [(t, s) for s in info.splits for t in info.tasks if (t, s) not in present and (t, s) not in missing]
    result.n_episodes = len(df)
    result.n_errors = int(df["termination"].isin(ERROR_TERMINATIONS).sum())
    result.max_error_rate, result.allow_incomplete = max_error_rate, allow_incomplete
    if sequential:
        _sequential(result, df, beta)
    else:
        _fixed(result)
    return result


def _fixed(result: CheckResult) -> None:
    rows = list(result.rows)
    if len(rows) > 1:
        rows.append(
            CheckRow(ALL, ALL, sum(r.k_base for r in rows), sum(r.n_base for r in rows), sum(r.k_new for r in rows), sum(r.n_new for r in rows))
        )
    for r in rows:
        r.p_value = noninferiority_pvalue(r.k_new, r.n_new, r.k_base, r.n_base, result.max_drop)
    reject, adjusted = holm([r.p_value for r in rows], result.alpha)
    for r, rej, adj in zip(rows, reject, adjusted):
        r.p_adjusted, r.regression = adj, bool(rej)
    # power at Holm's first step (alpha / K): the level a single regressed cell is tested at
    level = result.alpha / len(rows)
    under = []
    for r in rows:
        p0 = r.rate_base - result.max_drop
        p1 = p0 - result.detect_drop
        if p1 <= 0:
            continue
        r.power = power_two_sample(p0, p1, r.n_new, r.n_base, level)
        r.needed_n = required_n_two_sample(p0, p1, level, result.power, ratio=r.n_base / r.n_new)
        if r.power < result.power:
            under.append(r)
    if under:
        worst = max(under, key=lambda r: r.needed_n or 0)
        result.warnings.append(
            f"run too small to detect the requested drop: {len(under)} of {len(rows)} tests have power < {result.power:g} "
            f"to detect a drop of {100 * (result.max_drop + result.detect_drop):g} pts (allowed {100 * result.max_drop:g} "
            f"+ --detect-drop {100 * result.detect_drop:g}) at alpha/K = {level:.2g}; e.g. {worst.task}/{worst.split} "
            f"has {worst.n_new} episodes, needs >= {worst.needed_n} (see `vla-eval plan-episodes`)"
        )
    result.rows = rows


def _sequential(result: CheckResult, df: pd.DataFrame, beta: float) -> None:
    cell_alpha = result.alpha / len(result.rows)
    tests: dict[tuple[str, str], SequentialTest] = {}
    for r in result.rows:
        # a perfect baseline (k = n) is not evidence of p = 1; shrink by half an episode
        p_base = min(r.rate_base, 1 - 0.5 / r.n_base)
        p0 = p_base - result.max_drop
        if p0 - result.detect_drop <= 0 or p0 >= 1:
            r.seq_decision = "skipped (baseline too low)"
            continue
        tests[(r.task, r.split)] = SequentialTest(p0, result.detect_drop, cell_alpha, beta, max_n=r.n_new)
    used = 0
    total = int(sum(r.n_new for r in result.rows))
    ordered = df.sort_values("completion_order")
    for task, split, success in zip(ordered["task"], ordered["split"], ordered["success"]):
        t = tests.get((task, split))
        if t is None or t.decision != CONTINUE:
            continue
        t.update(bool(success))
        used += 1
    for r in result.rows:
        t = tests.get((r.task, r.split))
        if t is None:
            used += r.n_new
            continue
        r.seq_used = t.n
        if t.decision == CONTINUE:
            # the run ended before the plan did (still running, or crashed); undecided
            r.seq_decision = "undecided (run incomplete)"
        else:
            r.seq_decision = t.decision + (" (truncated)" if t.truncated else "")
        r.regression = t.decision == REGRESSION
    result.episodes_used, result.episodes_total = used, total
