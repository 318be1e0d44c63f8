"""Compare two runs: per task, per split and overall, with exact tests and Holm correction.

Verdicts describe run B relative to run A (A is the reference). A per-task verdict uses
the Holm-adjusted p-value within its split (the family is "all tasks of that split"), so
checking ten tasks does not give ten chances of a false "worse". The per-split and the
overall rows pool episodes over the tasks both runs have; they are single pre-declared
tests and are not adjusted. Pooling weighs tasks by their episode counts, which equals
the task mean when the plans match (the protocol check makes sure the suites do).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from vla_eval.errors import ConfigError
from vla_eval.results.runs import RunInfo, protocol_differences, read_run, records_to_frame
from vla_eval.results.stats import exact_two_sided, holm, wilson_interval

BETTER, WORSE, SAME = "better", "worse", "no significant difference"
ALL = "(all)"


def counts(df: pd.DataFrame) -> pd.DataFrame:
    """Successes and episodes per (task, split)."""
    if df.empty:
        return pd.DataFrame(columns=["task", "split", "k", "n"])
    g = df.groupby(["task", "split"], sort=False)["success"]
    out = pd.DataFrame({"k": g.sum().astype(int), "n": g.size().astype(int)}).reset_index()
    return out


@dataclass
class Row:
    scope: str  # "task" | "split" | "overall"
    task: str
    split: str
    k_a: int
    n_a: int
    k_b: int
    n_b: int
    p_value: float
    test: str
    p_adjusted: float
    verdict: str

    @property
    def rate_a(self) -> float:
        return self.k_a / self.n_a if self.n_a else float("nan")

    @property
    def rate_b(self) -> float:
        return self.k_b / self.n_b if self.n_b else float("nan")

    @property
    def diff(self) -> float:
        return self.rate_b - self.rate_a


@dataclass
class Comparison:
    run_a: RunInfo
    run_b: RunInfo
    alpha: float
    rows: list[Row]
    protocol_differences: list[str] = field(default_factory=list)
    only_in_a: list[tuple[str, str]] = field(default_factory=list)
    only_in_b: list[tuple[str, str]] = field(default_factory=list)

    def frame(self) -> pd.DataFrame:
        recs = []
        for r in self.rows:
            lo_a, hi_a = wilson_interval(r.k_a, r.n_a)
            lo_b, hi_b = wilson_interval(r.k_b, r.n_b)
            recs.append(
                dict(
                    scope=r.scope, task=r.task, split=r.split, k_a=r.k_a, n_a=r.n_a, rate_a=r.rate_a, ci_a_low=lo_a, ci_a_high=hi_a,
                    k_b=r.k_b, n_b=r.n_b, rate_b=r.rate_b, ci_b_low=lo_b, ci_b_high=hi_b, diff=r.diff,
                    p_value=r.p_value, p_adjusted=r.p_adjusted, test=r.test, verdict=r.verdict,
                )
            )
        return pd.DataFrame(recs)

    def text(self) -> str:
        a, b = self.run_a, self.run_b
        lines = [
            f"A: {a.run_id}  policy {a.policy}  checkpoint {a.checkpoint or '-'}  ({a.run_dir})",
            f"B: {b.run_id}  policy {b.policy}  checkpoint {b.checkpoint or '-'}  ({b.run_dir})",
            f"suite {a.suite}; verdict = B relative to A at alpha = {self.alpha}; per-task p-values Holm-adjusted within each split",
        ]
        if self.protocol_differences:
            lines.append("WARNING: protocols differ (compared anyway, --allow-protocol-mismatch):")
            lines += [f"  - {d}" for d in self.protocol_differences]
        elif a.meta.suite_hash != b.meta.suite_hash:
            lines.append("note: suite specs differ only in episodes_per_task / seed / description (same protocol)")
        lines.append("")
        header = ["scope", "task", "split", "A % [95% CI]", "B % [95% CI]", "B-A pts", "p", "p adj", "test", "verdict"]
        body = []
        for r in self.rows:
            lo_a, hi_a = wilson_interval(r.k_a, r.n_a)
            lo_b, hi_b = wilson_interval(r.k_b, r.n_b)
            body.append(
                [
                    r.scope, r.task, r.split,
                    f"{100 * r.rate_a:.1f} [{100 * lo_a:.1f}, {100 * hi_a:.1f}] ({r.k_a}/{r.n_a})",
                    f"{100 * r.rate_b:.1f} [{100 * lo_b:.1f}, {100 * hi_b:.1f}] ({r.k_b}/{r.n_b})",
                    f"{100 * r.diff:+.1f}", _fmt_p(r.p_value), _fmt_p(r.p_adjusted), r.test, r.verdict,
                ]
            )
        lines.append(format_table(header, body))
        for label, missing in (("only in A", self.only_in_a), ("only in B", self.only_in_b)):
            if missing:
                lines.append(f"{label} (not compared): " + ", ".join(f"{t}/{s}" for t, s in missing))
        return "\n".join(lines)


def _fmt_p(p: float) -> str:
    if p != p:  # NaN
        return "-"
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Markdown table (readable as plain text in a terminal or CI log)."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)] if rows else [len(h) for h in header]
    fmt = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([fmt(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *[fmt(r) for r in rows]])


def _verdict(diff: float, p: float, alpha: float) -> str:
    if p == p and p < alpha:
        return BETTER if diff > 0 else WORSE
    return SAME


def compare_frames(a: pd.DataFrame, b: pd.DataFrame, alpha: float = 0.05, test: str = "auto", splits: list[str] | None = None):
    """Rows of a comparison between two episode frames (columns task, split, success)."""
    ca, cb = counts(a), counts(b)
    merged = ca.merge(cb, on=["task", "split"], suffixes=("_a", "_b"), how="outer")
    both = merged.dropna(subset=["n_a", "n_b"]).copy()
    for c in ("k_a", "n_a", "k_b", "n_b"):
        both[c] = both[c].astype(int)
    only_a = [(r.task, r.split) for r in merged[merged["n_b"].isna()].itertuples()]
    only_b = [(r.task, r.split) for r in merged[merged["n_a"].isna()].itertuples()]
    order = list(splits or dict.fromkeys(both["split"]))
    order += [s for s in dict.fromkeys(both["split"]) if s not in order]
    rows: list[Row] = []
    for split in order:
        sdf = both[both["split"] == split]
        if sdf.empty:
            continue
        task_rows = []
        for r in sdf.itertuples():
            res = exact_two_sided(r.k_a, r.n_a, r.k_b, r.n_b, test)
            task_rows.append(Row("task", r.task, split, r.k_a, r.n_a, r.k_b, r.n_b, res.p_value, res.test, float("nan"), SAME))
        _, adjusted = holm([r.p_value for r in task_rows], alpha)
        for r, p_adj in zip(task_rows, adjusted):
            r.p_adjusted = p_adj
            r.verdict = _verdict(r.diff, p_adj, alpha)
        rows += task_rows
        rows.append(_pooled("split", ALL, split, sdf, alpha, test))
    if len(order) > 1 and not both.empty:
        rows.append(_pooled("overall", ALL, ALL, both, alpha, test))
    elif rows:
        rows[-1].scope = "overall"
    return rows, only_a, only_b


def _pooled(scope: str, task: str, split: str, df: pd.DataFrame, alpha: float, test: str) -> Row:
    k_a, n_a, k_b, n_b = (int(df[c].sum()) for c in ("k_a", "n_a", "k_b", "n_b"))
    res = exact_two_sided(k_a, n_a, k_b, n_b, test)
    row = Row(scope, task, split, k_a, n_a, k_b, n_b, res.p_value, res.test, res.p_value, SAME)
    row.verdict = _verdict(row.diff, res.p_value, alpha)
    return row


def compare_runs(run_a, run_b, alpha: float = 0.05, test: str = "auto", allow_protocol_mismatch: bool = False) -> Comparison:
    """Compare two run folders; raises :class:`ConfigError` when their protocols differ."""
    if not 0 < alpha < 1:
        raise ConfigError(f"--alpha must be in (0, 1), got {alpha}")
    info_a, rec_a = read_run(run_a)
    info_b, rec_b = read_run(run_b)
    diffs = protocol_differences(info_a.protocol, info_b.protocol)
    if diffs and not allow_protocol_mismatch:
        raise ConfigError(
            "runs use different protocols, so their success rates are not comparable:\n  - "
            + "\n  - ".join(diffs)
            + "\n(pass --allow-protocol-mismatch to compare anyway)"
        )
    if not rec_a or not rec_b:
        empty = info_a.run_dir if not rec_a else info_b.run_dir
        raise ConfigError(f"{empty}: run has no finished episodes")
    rows, only_a, only_b = compare_frames(records_to_frame(info_a, rec_a), records_to_frame(info_b, rec_b), alpha, test, info_a.splits)
    if not rows:
        raise ConfigError("the two runs share no (task, split) cells; nothing to compare")
    return Comparison(info_a, info_b, alpha, rows, diffs, only_a, only_b)
