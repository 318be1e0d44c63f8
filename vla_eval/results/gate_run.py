"""The runner's side of a gated run: build or reload the design, watch episodes, say when to stop.

The runner only asks :meth:`GateMonitor.should_stop` before launching the next episode;
every statistical decision is :func:`vla_eval.results.gate.evaluate`, which ``vla-eval
check`` also calls on the stored episodes, so both give the same verdict.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from vla_eval.cli.gate_args import add_gate_arguments  # noqa: F401  (its old home; the CLI parser imports it light)
from vla_eval.errors import ConfigError
from vla_eval.execution.plan import PlanItem, balanced_order
from vla_eval.record import EpisodeRecord
from vla_eval.results.gate import GateConfig, GateState, build_design, evaluate, file_sha256, sequential_summary, table_header

GATE_META = "gate"
GATE_FILE = "gate.json"


def _outcome(r: EpisodeRecord) -> tuple[str, str, bool]:
    return (r.task, r.split, bool(r.success))


def _design_key(design: dict[str, Any]) -> dict[str, Any]:
    """What must match for a resumed gated run to continue the same design."""
    return {"baseline": design["baseline"].get("sha256"), "config": {k: v for k, v in design["config"].items() if k != "baseline"},
            "cells": [(c["task"], c["split"], c["n_plan"]) for c in design["cells"]]}


class GateMonitor:
    def __init__(self, design: dict[str, Any], prior: list[EpisodeRecord]):
        self.design = design
        self.outcomes = [_outcome(r) for r in prior]
        self.state = evaluate(design, self.outcomes)

    @classmethod
    def start(cls, cfg: GateConfig, store, plan: list[PlanItem]) -> "GateMonitor":
        from vla_eval.results.check import load_baseline
        from vla_eval.results.runs import protocol_differences, protocol_summary

        baseline = load_baseline(cfg.baseline)
        diffs = protocol_differences(baseline["protocol"], protocol_summary(store.get_meta("config") or {}))
        if diffs:
            raise ConfigError(f"--gate {cfg.baseline}: run and baseline use different protocols; a gate would be meaningless:\n  - "
                              + "\n  - ".join(diffs))
        cells: dict[tuple[str, str], int] = {}
        for item in plan:
            cells[item.env_key] = cells.get(item.env_key, 0) + 1
        design = build_design(cfg, baseline, [(t, s, n) for (t, s), n in cells.items()], file_sha256(cfg.baseline))
        stored = store.get_meta(GATE_META)
        if stored is not None:
            if _design_key(stored["design"]) != _design_key(design):
                raise ConfigError(f"{store.run_dir} is a gated run with another design (baseline, options or plan differ); "
                                  "resume it with the same --gate options, or without --gate to run the full plan")
            design = stored["design"]
        else:
            store.set_meta(GATE_META, {"design": design})
        return cls(design, list(store.records_in_completion_order()))

    def order(self, todo: list[PlanItem]) -> list[PlanItem]:
        return balanced_order(todo)

    def observe(self, record: EpisodeRecord) -> None:
        self.outcomes.append(_outcome(record))
        marks = self.design["look_episodes"]
        # a look can only fall due once enough episodes are in (counting every cell: a cheap upper bound)
        if not self.state.settled and len(self.outcomes) >= marks[min(len(self.state.looks), len(marks) - 1)]:
            self.state = evaluate(self.design, self.outcomes)

    def should_stop(self) -> bool:
        return self.state.settled

    def finish(self, store, run_dir: Path) -> GateState:
        """Final state over every recorded episode, written to the store, gate.json and run.json."""
        state = evaluate(self.design, [_outcome(r) for r in store.records_in_completion_order()])
        record = {"design": self.design, "result": state.to_dict()}
        store.set_meta(GATE_META, record)
        (Path(run_dir) / GATE_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        run_json = Path(run_dir) / "run.json"
        if run_json.is_file():
            data = json.loads(run_json.read_text())
            data["gate"] = {"design": self.design, "result": state.to_dict()}
            run_json.write_text(json.dumps(data, indent=2, sort_keys=True))
        return state


def gate_view(gate_meta: dict[str, Any] | None, records_in_order: list[EpisodeRecord], summary):
    """For a gated run folder: (state, summary with repeated CIs, header line); else (None, summary, "")."""
    if not gate_meta:
        return None, summary, ""
    design = gate_meta["design"]
    state = evaluate(design, [_outcome(r) for r in records_in_order])
    return state, sequential_summary(summary, design), table_header(state)


# ------------------------------------------------------------------ CLI helpers


def gate_config(args: argparse.Namespace) -> GateConfig | None:
    options = {k: getattr(args, k) for k in ("max_drop", "alpha", "power", "detect_drop", "looks")}
    if args.gate is None:
        given = [f"--{k.replace('_', '-')}" for k, v in options.items() if v is not None]
        if given:
            raise ConfigError(f"{', '.join(given)} only apply to a gated run: add --gate BASELINE.json")
        return None
    cfg = GateConfig(baseline=args.gate, **{k: v for k, v in options.items() if v is not None})
    cfg.validate()
    return cfg


def check_gated(run_dir: str | Path, baseline_path: str | Path) -> GateState | None:
    """``vla-eval check`` on a gated run folder: the stored design, replayed on the stored episodes.

    Returns None for a run that was not gated. The baseline must be the file the run was
    gated against (same SHA-256): the design's bounds were computed from its counts.
    """
    from vla_eval.store import DB_NAME, RunStore

    run_dir = Path(run_dir)
    if not (run_dir / DB_NAME).is_file():
        return None
    with RunStore(run_dir, readonly=True) as store:
        meta = store.get_meta(GATE_META)
    if not meta:
        return None
    try:
        return _check_gated(run_dir, meta, Path(baseline_path))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        # a hand-edited or damaged design; exit 1 would read as a regression
        raise ConfigError(f"{run_dir / DB_NAME}: the stored gate design (run_meta 'gate') is malformed "
                          f"({type(exc).__name__}: {str(exc)[:120]}); check with --fixed-sample instead") from None


def _check_gated(run_dir: Path, meta: Any, baseline_path: Path) -> GateState:
    from vla_eval.results.runs import read_run

    design = meta["design"]
    sha = file_sha256(baseline_path)
    if design["baseline"].get("sha256") and sha != design["baseline"]["sha256"]:
        raise ConfigError(
            f"{run_dir} was gated against baseline {design['baseline'].get('path')} (sha256 {design['baseline']['sha256'][:12]}), "
            f"but {baseline_path} has sha256 {sha[:12]}; pass that baseline, or --fixed-sample to test this run's episodes "
            "as a fixed sample (not valid for a run that stopped early)")
    _, records = read_run(run_dir)
    return evaluate(design, [_outcome(r) for _, r in records])
