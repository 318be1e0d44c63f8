"""The report's view model: one :class:`RunView` per run folder, grouped into leaderboard :class:`Board` s.

Kept free of HTML, Markdown and matplotlib so the grouping rules (one board per suite family,
render quality and simulator stack; latest run per policy and checkpoint wins) can be
tested on their own. Protocol-level scores come from the run's backend
(:meth:`vla_eval.backends.Backend.protocol_tables`), never from a test on its name.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from vla_eval.backends import ProtocolTable
from vla_eval.results.runs import RunInfo, read_run
from vla_eval.results.stats import wilson_bounds, z_two_sided
from vla_eval.tables import MEAN_ROW, summary_frame

LIBERO_FAMILY = ("libero_spatial", "libero_object", "libero_goal", "libero_10")

FAMILY_TAGS = {"vla_eval": "", "libero_pro": "[LIBERO-PRO] "}
"""Column prefix naming who defined an OOD split (unmarked = this project's perturbations)."""


def family_of(suite: str) -> str:
    return "LIBERO" if suite in LIBERO_FAMILY else suite


def family_label(family: str) -> str:
    if family == "LIBERO":
        return "LIBERO (mean of " + ", ".join(LIBERO_FAMILY) + ")"
    if family.endswith("_vm"):
        return f"{family} (SimplerEnv-style visual matching)"
    if family.endswith("_va"):
        return f"{family} (SimplerEnv-style variant aggregation)"
    if family.startswith("simpler_") and family.endswith("_ext"):
        return f"{family} (vla-eval extension, not a SimplerEnv protocol)"
    return family


@dataclass
class RunView:
    info: RunInfo
    summary: pd.DataFrame
    instructions: dict[str, str]
    videos: dict[tuple[str, str], list[tuple[int, bool, str]]]  # (task, split) -> [(episode, success, path)]
    n: int
    gate: str | None = None
    """For a gated run (``run --gate``): where it stopped and its verdict; its intervals are repeated CIs."""
    protocol: list[ProtocolTable] = field(default_factory=list)
    """The backend's protocol-level scores (e.g. SimplerEnv's calc_metrics aggregate); empty for most suites."""

    @property
    def anchor(self) -> str:
        digest = hashlib.sha1(str(self.info.run_dir.resolve()).encode()).hexdigest()[:8]
        return "run-" + re.sub(r"[^A-Za-z0-9_-]+", "-", self.info.run_id).strip("-") + "-" + digest

    def split_rate(self, split: str | None) -> tuple[float, float, float, int] | None:
        """Suite mean over tasks for one split: (rate, ci_low, ci_high, n)."""
        if split is None:
            return None
        row = self.summary[(self.summary["task"] == MEAN_ROW) & (self.summary["split"] == split)]
        if row.empty:
            return None
        r = row.iloc[0]
        return float(r["rate"]), float(r["ci_low"]), float(r["ci_high"]), int(r["n"])

    def id_rate(self):
        return self.split_rate(self.info.in_domain_split)

    def ood_splits(self, family: str | None = None) -> list[str]:
        """OOD splits present in the run; with ``family``, only those of that family (``vla_eval``, ``libero_pro``)."""
        present = set(self.summary["split"]) if not self.summary.empty else set()
        return [
            s
            for s in self.info.splits[1:]
            if s in present and (family is None or self.info.split_family.get(s, "vla_eval") == family)
        ]


def build_view(run_dir: Path, info: RunInfo | None = None, records: list | None = None) -> RunView:
    """Read one run folder (or use the ``info`` and ``records`` already read) into its view."""
    if info is None or records is None:
        info, records = read_run(run_dir)
    recs = [r for _, r in records]
    summary = summary_frame(recs, info.splits or None, info.tasks or None)
    instructions: dict[str, str] = {}
    videos: dict[tuple[str, str], list[tuple[int, bool, str]]] = {}
    for r in recs:
        if r.split == info.in_domain_split and r.instruction and r.task not in instructions:
            instructions[r.task] = r.instruction
        if r.video_path:
            videos.setdefault((r.task, r.split), []).append((r.episode_index, r.success, r.video_path))
    for v in videos.values():
        v.sort()
    gate = None
    gate_meta = _gate_meta(run_dir)
    if gate_meta:
        from vla_eval.results.gate_run import gate_view

        state, summary, _ = gate_view(gate_meta, recs, summary)
        look = state.decisive_look
        gate = (
            f"stopped after {look.episodes if look else state.episodes_seen} of {state.design['plan_episodes']} "
            f"planned episodes; verdict {state.decision.replace('_', ' ')} "
            f"against baseline {state.design['baseline'].get('run_id')}; "
            "intervals are 95% repeated CIs of the group-sequential design, not Wilson"
        )
    return RunView(info, summary, instructions, videos, len(recs), gate, protocol_tables(info.meta.suite.stored(), summary))


def protocol_tables(suite: dict, summary: pd.DataFrame) -> list[ProtocolTable]:
    """The stored suite's backend's protocol tables; none when that backend is not installed here.

    Only registered names (built-ins and installed plugins) are asked: a ``module:Class`` written in
    a results folder is never imported, since the report reads folders that others may have written.
    """
    import pydantic

    from vla_eval.backends import BACKENDS, get_backend
    from vla_eval.errors import VlaEvalError
    from vla_eval.spec import SuiteSpec

    name = suite.get("backend")
    if summary.empty or not isinstance(name, str) or name not in BACKENDS.names():
        return []
    try:
        return get_backend(name).protocol_tables(SuiteSpec.model_validate(suite), summary)
    except (pydantic.ValidationError, VlaEvalError):
        return []


def _gate_meta(run_dir: Path):
    from vla_eval.store import RunStore

    with RunStore(run_dir, readonly=True) as store:
        return store.get_meta("gate")


def protocol_headline(v: RunView) -> tuple[str, float] | None:
    """(column title, score) of the run's headline protocol score, if its backend reports one."""
    for table in v.protocol:
        if table.headline is not None:
            return table.headline_label or "protocol score %", table.headline
    return None


@dataclass
class Entry:
    """One leaderboard row: a (policy, checkpoint) and its latest run per suite of the family."""

    policy: str
    checkpoint: str | None
    runs: dict[str, RunView] = field(default_factory=dict)

    def family_mean(self, suites: list[str]) -> tuple[float, float, float] | None:
        rates = [self.runs[s].id_rate() for s in suites if s in self.runs]
        if len(rates) != len(suites) or any(r is None for r in rates):
            return None
        # each suite counts once; the interval is Wilson's at the mean's effective sample size, as for
        # a suite's mean of task rates (docs/results.md), so it always contains the mean
        mean = float(np.mean([r[0] for r in rates]))
        n_eff = len(rates) ** 2 / sum(1.0 / r[3] for r in rates)
        lo, hi = wilson_bounds(mean, n_eff, z_two_sided(0.05))
        return mean, lo, hi

    def ood_mean(self) -> tuple[float, float] | None:
        """(mean in-domain rate, mean OOD rate) over suites that have OOD splits.

        Only this project's perturbations: LIBERO-PRO's official columns are never averaged with them.
        """
        ids, oods = [], []
        for v in self.runs.values():
            idr = v.id_rate()
            rates = [v.split_rate(s) for s in v.ood_splits("vla_eval")]
            rates = [r[0] for r in rates if r]
            if idr and rates:
                ids.append(idr[0])
                oods.append(float(np.mean(rates)))
        return (float(np.mean(ids)), float(np.mean(oods))) if ids else None

    def sort_key(self, suites: list[str]):
        m = self.family_mean(suites) if len(suites) > 1 else None
        if m is None and len(suites) == 1 and suites[0] in self.runs and self.runs[suites[0]].id_rate():
            m = self.runs[suites[0]].id_rate()
        return (m is None, -(m[0] if m else 0.0), self.policy)


@dataclass
class Board:
    family: str
    fast: bool
    suites: list[str]
    entries: list[Entry]
    notes: list[str]
    stack: str | None = None
    """Set when the runs came from more than one simulator stack: one board per stack."""

    @property
    def title(self) -> str:
        return (
            family_label(self.family)
            + (" — fast render (not comparable with reference-quality runs)" if self.fast else "")
            + (f" — sim stack {self.stack} (not ranked with other stacks)" if self.stack else "")
        )

    @property
    def slug(self) -> str:
        stack = "-" + hashlib.sha1(self.stack.encode()).hexdigest()[:6] if self.stack else ""
        return re.sub(r"[^A-Za-z0-9_-]+", "-", self.family) + ("-fast" if self.fast else "") + stack


def boards_of(views: list[RunView]) -> tuple[list[Board], list[RunView]]:
    groups: dict[tuple[str, bool, str], list[RunView]] = {}
    stacks = {str(v.info.protocol.get("sim_stack")) for v in views if v.n}
    for v in views:
        if v.n == 0:
            continue
        stack = str(v.info.protocol.get("sim_stack")) if len(stacks) > 1 else ""
        groups.setdefault((family_of(v.info.suite), v.info.is_fast_render, stack), []).append(v)
    boards, superseded = [], []
    for (family, fast, stack), vs in sorted(
        groups.items(), key=lambda kv: (kv[0][1], kv[0][0] != "LIBERO", kv[0][0], kv[0][2])
    ):
        suites = [s for s in LIBERO_FAMILY if any(v.info.suite == s for v in vs)] if family == "LIBERO" else [family]
        entries: dict[tuple[str, str | None], Entry] = {}
        for v in sorted(vs, key=lambda v: v.info.created_at or ""):
            e = entries.setdefault((v.info.policy, v.info.checkpoint), Entry(v.info.policy, v.info.checkpoint))
            if v.info.suite in e.runs:
                superseded.append(e.runs[v.info.suite])
            e.runs[v.info.suite] = v  # latest wins
        notes = []
        gated = sorted(
            {e.runs[s].info.run_id for e in entries.values() for s in suites if s in e.runs and e.runs[s].gate}
        )
        if gated:
            notes.append(
                "gated runs (stopped early by `run --gate`; their intervals are 95% repeated CIs, not Wilson): "
                + ", ".join(gated)
            )
        for s in suites:
            hashes = {e.runs[s].info.protocol.get("protocol_hash") for e in entries.values() if s in e.runs}
            if len(hashes) > 1:
                notes.append(
                    f"{s}: rows use {len(hashes)} different protocols ({', '.join(sorted(map(str, hashes)))}); "
                    "compare with care"
                )
        if family == "LIBERO" and len(suites) < len(LIBERO_FAMILY):
            notes.append(
                "family mean needs all four LIBERO suites; missing: "
                + ", ".join(s for s in LIBERO_FAMILY if s not in suites)
            )
        boards.append(
            Board(
                family, fast, suites, sorted(entries.values(), key=lambda e: e.sort_key(suites)), notes, stack or None
            )
        )
    return boards, superseded
