"""Orchestrates one run: resolve suite and policy, plan, execute, store, tabulate."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from vla_eval import provenance
from vla_eval.backends import get_backend
from vla_eval.errors import ConfigError
from vla_eval.executor import ExecutionSummary, LocalExecutor
from vla_eval.plan import build_plan
from vla_eval.policy_config import PolicyConfig, resolve_policy
from vla_eval.record import EpisodeRecord
from vla_eval.rollout import EpisodeSettings
from vla_eval.spec import SuiteSpec, load_suite
from vla_eval.store import RunStore
from vla_eval.tables import markdown, summary_frame, wide_table
from vla_eval.video import VideoPolicy
from vla_eval.worker import WorkerConfig


@dataclass
class RunRequest:
    suite: str
    policy: str
    policy_args: list[str] = field(default_factory=list)
    workers: int | None = None
    run_dir: Path | None = None
    results_root: Path = Path("results")
    resume: bool = False
    videos: str = "none"
    replan_steps: int | None = None
    episodes_per_task: int | None = None
    seed: int | None = None
    batch_envs: int = 1
    executor: str = "local"
    ray_address: str | None = None
    policy_server: str = "none"
    progress: bool = True


@dataclass
class RunOutcome:
    run_dir: Path
    spec: SuiteSpec
    summary: pd.DataFrame
    table_markdown: str
    executed: int
    skipped: int
    execution: ExecutionSummary


def protocol_of(spec: SuiteSpec, policy: PolicyConfig, replan_steps: int | None) -> dict:
    """Everything that must match for two sessions to write into one run folder."""
    return {
        "suite_hash": spec.spec_hash(),
        "suite": spec.model_dump(mode="json"),
        "policy": policy.model_dump(mode="json", exclude={"source"}),
        "replan_steps": replan_steps,
    }


def _describe_diff(old: dict, new: dict) -> str:
    keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return ", ".join(keys)


def run(req: RunRequest) -> RunOutcome:
    spec = load_suite(req.suite, {"episodes_per_task": req.episodes_per_task, "seed": req.seed})
    policy_cfg = resolve_policy(req.policy, req.policy_args)
    videos = _parse_videos(req.videos)
    workers = req.workers or os.cpu_count() or 1
    run_dir = Path(req.run_dir) if req.run_dir else Path(req.results_root) / (
        f"{spec.name}__{policy_cfg.name}__{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    )
    protocol = protocol_of(spec, policy_cfg, req.replan_steps)
    store = RunStore(run_dir)
    try:
        existing = store.get_meta("protocol")
        if existing is not None and existing != protocol:
            raise ConfigError(
                f"{run_dir} already holds a run with a different protocol (differs in: "
                f"{_describe_diff(existing, protocol)}); choose another --run-dir"
            )
        if existing is not None and not req.resume and store.count():
            raise ConfigError(f"{run_dir} already holds {store.count()} episodes; pass --resume to continue it")
        run_id = store.get_meta("run_id") or run_dir.name
        if existing is None:
            store.set_meta("run_id", run_id)
            store.set_meta("protocol", protocol)
            config = _run_config(run_id, spec, policy_cfg, req, workers, videos)
            store.set_meta("config", config)
            (run_dir / "run.json").write_text(json.dumps(config, indent=2, sort_keys=True))

        plan = build_plan(spec)
        done = store.done_keys()
        todo = [item for item in plan if item.key not in done]
        policy_cls = _policy_class(policy_cfg)
        cameras = _cameras_needed(spec, policy_cls, videos)
        settings = EpisodeSettings(
            run_id=run_id,
            suite=spec.name,
            max_steps={t.name: spec.task_max_steps(t.name) for t in spec.tasks},
            settle_steps=spec.settle_steps,
            settle_action=tuple(spec.settle_action),
            replan_steps=req.replan_steps,
            video_camera=spec.cameras[0] if videos.enabled and spec.cameras else None,
        )
        worker_cfg = WorkerConfig(
            spec=spec, policy=policy_cfg, settings=settings, run_dir=str(run_dir), videos=videos, cameras=cameras,
            depth=bool(getattr(policy_cls, "needs_depth", False)),
        )
        execution = ExecutionSummary()
        if todo:
            executor = _make_executor(req, worker_cfg, workers)
            server = None
            if req.policy_server == "auto":  # one batching server; workers reach it through the remote adapter
                from vla_eval.remote.supervisor import serve_for_run

                server = serve_for_run(executor, policy_cfg, run_dir, max_batch=workers * req.batch_envs)
            elif req.policy_server != "none":
                raise ConfigError(f"--policy-server {req.policy_server!r}: expected 'auto' or 'none'")
            try:
                execution = _execute(executor, todo, store, len(plan), len(done), req.progress)
            finally:
                if server is not None:
                    server.stop()
        records = list(store.records())
        summary = summary_frame(records, [s.name for s in spec.splits], [t.name for t in spec.tasks])
        table = wide_table(summary, spec.in_domain_split, [s.name for s in spec.splits])
        md = markdown(table)
        protocol_md = get_backend(spec.backend).protocol_summary(spec, summary)
        if protocol_md:
            md = f"{md}\n\n{protocol_md}"
        (run_dir / "table.md").write_text(md + "\n")
        summary.to_csv(run_dir / "summary.csv", index=False)
        table.to_csv(run_dir / "table.csv")
        return RunOutcome(run_dir, spec, summary, md, len(todo), len(plan) - len(todo), execution)
    finally:
        store.close()


def _execute(executor, todo, store: RunStore, total: int, done: int, progress: bool) -> ExecutionSummary:
    counts = {"ok": 0, "n": 0}
    bar = tqdm(total=total, initial=done, unit="ep", disable=not progress, file=sys.stderr, dynamic_ncols=True)

    def on_record(record: EpisodeRecord) -> None:
        store.add(record)
        counts["n"] += 1
        counts["ok"] += int(record.success)
        bar.update(1)
        bar.set_postfix_str(f"success {counts['ok']}/{counts['n']} ({100 * counts['ok'] / counts['n']:.0f}%)")

    try:
        return executor.run(todo, on_record)
    finally:
        bar.close()


def _make_executor(req: RunRequest, worker_cfg: WorkerConfig, workers: int):
    if req.executor == "local":
        return LocalExecutor(worker_cfg, workers, req.batch_envs)
    if req.executor == "ray":
        from vla_eval.ray_executor import RayExecutor

        return RayExecutor(worker_cfg, workers, req.batch_envs, address=req.ray_address)
    raise ConfigError(f"--executor {req.executor!r}: expected 'local' or 'ray'")


def _parse_videos(text: str) -> VideoPolicy:
    try:
        return VideoPolicy.parse(text)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def _policy_class(cfg: PolicyConfig):
    from vla_eval.policies import POLICIES

    return POLICIES.get(cfg.adapter)


def _cameras_needed(spec: SuiteSpec, policy_cls, videos: VideoPolicy) -> tuple[str, ...]:
    """Render only what someone will look at: a state-only policy without videos renders nothing."""
    if getattr(policy_cls, "needs_images", True):
        return tuple(spec.cameras)
    if videos.enabled and spec.cameras:
        return (spec.cameras[0],)
    return ()


def _run_config(run_id: str, spec: SuiteSpec, policy: PolicyConfig, req: RunRequest, workers: int, videos: VideoPolicy) -> dict:
    return {
        "run_id": run_id,
        "created_at": provenance.now_iso(),
        "suite": spec.model_dump(mode="json"),
        "suite_hash": spec.spec_hash(),
        "policy": policy.model_dump(mode="json"),
        "checkpoint_hash": provenance.checkpoint_fingerprint(policy.args.get("checkpoint")),
        "replan_steps": req.replan_steps,
        "videos": req.videos,
        "workers": workers,
        "batch_envs": req.batch_envs,
        "executor": req.executor,
        "policy_server": req.policy_server,
        "versions": {**provenance.package_versions(), **get_backend(spec.backend).versions()},
        "git": provenance.git_commit(),
        "machine": provenance.machine(),
        "argv": sys.argv,
    }


def load_run_table(run_dir: Path) -> tuple[dict, pd.DataFrame, str]:
    """Rebuild the tables of a (possibly still running) run from its store."""
    with RunStore(run_dir, readonly=True) as store:
        config = store.get_meta("config") or {}
        records = list(store.records())
    suite = config.get("suite", {})
    splits = [s["name"] for s in suite.get("splits", [])] or None
    tasks = [t["name"] for t in suite.get("tasks", [])] or None
    summary = summary_frame(records, splits, tasks)
    in_domain = splits[0] if splits else (summary["split"].iloc[0] if not summary.empty else "")
    table = wide_table(summary, in_domain, splits or sorted(summary["split"].unique()) if not summary.empty else [])
    return config, summary, markdown(table)
