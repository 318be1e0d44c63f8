"""Compare an oracle run with the expert run on the same episodes and name the stage that broke.

Stages, in the order a real checkpoint's output travels (an episode is charged to the first
one that failed in it):

* ``preprocess``: what the adapter built for the model is inconsistent (image token count,
  image keys / shapes on the wire, the observation a remote server decoded);
* ``parse``: the adapter could not parse the model's native output (``parse_failure``);
* ``convert``: the parsed output did not become the action the expert meant (VLA-R1's
  depth lift / planner bridge failed; OpenVLA's decoded tokens or the harness's action
  conversion differ from the expert's action beyond the bin width; a policy error);
* ``env``: every stage above was clean, yet the episode failed where the expert succeeded
  (the motion the adapter's path produces does not solve the task).

``oracle`` marks rows the oracle itself could not phrase (a task that is not a pick/place
for an image-space oracle): such tasks are reported as not applicable, not as failures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from vla_eval.record import EpisodeRecord

STAGES = ("preprocess", "parse", "convert", "env")


def _flat(values: Any) -> list[Any]:
    if isinstance(values, list):
        return values
    return [] if values is None else [values]


def episode_stage(rec: EpisodeRecord) -> str | None:
    """The first broken stage of one oracle episode (``None``: it succeeded)."""
    ex = rec.extras or {}
    stages = [s for s in _flat(ex.get("oracle_stage")) if s]
    if "preprocess" in stages:
        return "preprocess"
    if "oracle" in stages and not rec.success:
        return "oracle"
    if rec.success:
        return None
    if rec.parse_failures:
        return "parse"
    if any(int(v or 0) for v in _flat(ex.get("bridge_failure"))) or "convert" in stages:
        return "convert"
    if rec.termination == "policy_error":
        # an exception before the model produced anything is in building its input
        produced = rec.outputs_checked or _flat(ex.get("oracle_text")) or _flat(ex.get("action_tokens"))
        return "convert" if produced else "preprocess"
    return "env"


@dataclass
class TaskRow:
    task: str
    episodes: int = 0
    oracle_success: int = 0
    expert_success: int = 0
    stages: dict[str, int] = field(default_factory=lambda: {s: 0 for s in STAGES})
    oracle_refusals: int = 0
    parse_failures: int = 0
    outputs_checked: int = 0
    bridge_failures: int = 0
    action_mismatches: int = 0
    applicable: bool = True

    @property
    def oracle_rate(self) -> float:
        return self.oracle_success / self.episodes if self.episodes else 0.0

    @property
    def expert_rate(self) -> float:
        return self.expert_success / self.episodes if self.episodes else 0.0

    @property
    def gap_points(self) -> float:
        return 100.0 * (self.expert_success - self.oracle_success) / self.episodes if self.episodes else 0.0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(oracle_rate=self.oracle_rate, expert_rate=self.expert_rate, gap_points=self.gap_points)
        return d


@dataclass
class ConformanceReport:
    suite: str
    policy: str
    margin_points: float
    rows: list[TaskRow]
    unmatched: int = 0

    @property
    def applicable(self) -> list[TaskRow]:
        return [r for r in self.rows if r.applicable and r.episodes]

    def suite_rates(self) -> tuple[float, float, int]:
        rows = self.applicable
        n = sum(r.episodes for r in rows)
        if not n:
            return 0.0, 0.0, 0
        return sum(r.oracle_success for r in rows) / n, sum(r.expert_success for r in rows) / n, n

    @property
    def suite_gap_points(self) -> float:
        rows = self.applicable
        n = sum(r.episodes for r in rows)
        return 100.0 * sum(r.expert_success - r.oracle_success for r in rows) / n if n else 0.0

    @property
    def passed(self) -> bool:
        return bool(self.applicable) and self.suite_gap_points <= self.margin_points and not self.unmatched

    def failing_stage(self) -> str | None:
        """The stage charged with the most failed episodes (where the expert succeeded)."""
        totals = {s: sum(r.stages[s] for r in self.applicable) for s in STAGES}
        worst = max(totals, key=lambda s: totals[s])
        return worst if totals[worst] else None

    def markdown(self) -> str:
        lines = [
            f"Conformance: `{self.policy}` on `{self.suite}` (margin {self.margin_points:g} points)",
            "",
            "| task | episodes | oracle | expert | gap (points) | preprocess | parse | convert | env |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in self.rows:
            if not r.applicable:
                lines.append(
                    f"| {r.task} | {r.episodes} | n/a | {100 * r.expert_rate:.0f}% "
                    "| n/a (oracle cannot phrase this task) | | | | |"
                )
                continue
            flag = " **over margin**" if r.gap_points > self.margin_points else ""
            s = r.stages
            lines.append(
                f"| {r.task} | {r.episodes} | {100 * r.oracle_rate:.0f}% | {100 * r.expert_rate:.0f}% | "
                f"{r.gap_points:+.0f}{flag} | {s['preprocess']} | {s['parse']} | {s['convert']} | {s['env']} |"
            )
        o, e, n = self.suite_rates()
        lines.append(f"| **suite** | {n} | {100 * o:.1f}% | {100 * e:.1f}% | {self.suite_gap_points:+.1f} | | | | |")
        lines.append("")
        verdict = "PASS" if self.passed else "FAIL"
        stage = self.failing_stage()
        tail = f"; most failures at stage '{stage}'" if stage and not self.passed else ""
        if self.unmatched:
            tail += f"; {self.unmatched} oracle episodes have no expert episode to compare with"
        lines.append(
            f"**{verdict}**: suite gap {self.suite_gap_points:+.1f} points vs margin {self.margin_points:g}{tail}."
        )
        lines.append(
            "Stage columns count oracle failures on episodes the expert solved, charged to the first broken stage."
        )
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        o, e, n = self.suite_rates()
        return {
            "suite": self.suite,
            "policy": self.policy,
            "margin_points": self.margin_points,
            "passed": self.passed,
            "suite_oracle_rate": o,
            "suite_expert_rate": e,
            "suite_episodes": n,
            "suite_gap_points": self.suite_gap_points,
            "failing_stage": self.failing_stage(),
            "unmatched": self.unmatched,
            "tasks": [r.as_dict() for r in self.rows],
        }


def compare(
    suite: str,
    policy: str,
    oracle: Iterable[EpisodeRecord],
    expert: Iterable[EpisodeRecord],
    margin_points: float,
    tasks: list[str],
) -> ConformanceReport:
    """Pair episodes by (task, split, episode index, seed) and fill the per-task rows."""
    by_key = {(r.task, r.split, r.episode_index, r.seed): r for r in expert}
    rows = {t: TaskRow(t) for t in tasks}
    unmatched = 0
    for rec in oracle:
        exp = by_key.get((rec.task, rec.split, rec.episode_index, rec.seed))
        if exp is None:
            unmatched += 1
            continue
        row = rows.setdefault(rec.task, TaskRow(rec.task))
        row.episodes += 1
        row.oracle_success += int(rec.success)
        row.expert_success += int(exp.success)
        row.parse_failures += rec.parse_failures
        row.outputs_checked += rec.outputs_checked
        ex = rec.extras or {}
        row.bridge_failures += sum(int(v or 0) for v in _flat(ex.get("bridge_failure")))
        row.action_mismatches += sum(int(v or 0) for v in _flat(ex.get("oracle_action_mismatch")))
        stage = episode_stage(rec)
        if stage == "oracle":
            row.oracle_refusals += 1
        elif stage is not None and exp.success:
            row.stages[stage] += 1
    for row in rows.values():
        if row.episodes and row.oracle_refusals == row.episodes:
            row.applicable = False
    return ConformanceReport(suite, policy, margin_points, list(rows.values()), unmatched)
