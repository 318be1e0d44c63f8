"""Orchestrates one run: resolve suite and policy, plan, execute, store, tabulate."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import PrivateAttr
from tqdm import tqdm

from vla_eval import naming, provenance
from vla_eval.adapter import Policy
from vla_eval.backends import get_backend
from vla_eval.errors import ConfigError
from vla_eval.execution import preflight
from vla_eval.execution.executor import ExecutionSummary, LocalExecutor
from vla_eval.execution.limits import DEFAULT_DEAD_POLICY_EPISODES, DeadPolicyMonitor, Limits
from vla_eval.execution.plan import build_plan, check_plan_size
from vla_eval.execution.run_lock import RunLock, open_store_errors, prepare_run_dir
from vla_eval.execution.settings import cameras_needed, chunk_execution, episode_setup
from vla_eval.execution.worker import WorkerConfig
from vla_eval.policy_config import ExecutionConfig, PolicyConfig, check_policy_config, resolve_policy
from vla_eval.record import EpisodeRecord
from vla_eval.run_meta import SCHEMA_VERSION, RunMeta
from vla_eval.spec import SuiteSpec, load_suite
from vla_eval.store import RunStore, StoreError
from vla_eval.tables import markdown, summary_frame, wide_table
from vla_eval.video import VideoPolicy


class InstancePolicyConfig(PolicyConfig):
    """A policy object handed to :func:`run` as it is: each worker gets a pickled copy.

    Recorded by its class (``adapter: module:Class``) and its ``name``; arguments given to its
    constructor are not known and not recorded, so pass a :class:`PolicyConfig` when a resumed
    run must be able to tell two differently configured instances apart.
    """

    _instance: Policy = PrivateAttr()

    @classmethod
    def of(cls, policy: Policy) -> "InstancePolicyConfig":
        kind = type(policy)
        cfg = cls(
            name=str(getattr(policy, "name", "") or kind.__name__), adapter=f"{kind.__module__}:{kind.__qualname__}"
        )
        cfg._instance = policy
        return cfg

    def create(self) -> Policy:
        return self._instance


@dataclass
class RunRequest:
    suite: str | Path | SuiteSpec
    """A suite name or file, or a :class:`SuiteSpec` built in memory (validated like a file)."""
    policy: str | Path | PolicyConfig | Policy
    """A policy name or file, a :class:`PolicyConfig`, or a policy object (see :class:`InstancePolicyConfig`)."""
    policy_args: list[str] = field(default_factory=list)
    workers: int | None = None
    run_dir: Path | None = None
    results_root: Path = Path("results")
    resume: bool = False
    videos: str = "none"
    replan_steps: int | None = None
    render: str = "on_demand"
    """``on_demand`` (draw only what the policy or the video looks at) or ``eager`` (every camera every step)."""
    episodes_per_task: int | None = None
    seed: int | None = None
    batch_envs: int = 1
    executor: str = "local"
    ray_address: str | None = None
    policy_server: str = "none"
    progress: bool = True
    gate: Any = None
    """A :class:`vla_eval.results.gate.GateConfig`: run in balanced order, stop once the verdict is settled."""
    policy_timeout_s: float | None = None
    episode_timeout_s: float | None = None
    max_worker_rss_mb: float | None = None
    dead_policy_episodes: int = DEFAULT_DEAD_POLICY_EPISODES


@dataclass
class RunOutcome:
    run_dir: Path
    spec: SuiteSpec
    summary: pd.DataFrame
    table_markdown: str
    executed: int
    skipped: int
    execution: ExecutionSummary
    gate: Any = None
    """The gated run's :class:`vla_eval.results.gate.GateState` (verdict, looks), if any."""


def protocol_of(spec: SuiteSpec, policy: PolicyConfig, replan_steps: int | None) -> dict:
    """Everything that must match for two sessions to write into one run folder."""
    policy_block = policy.model_dump(mode="json", exclude={"source"})
    if policy.execution == ExecutionConfig():
        policy_block.pop("execution")  # runs stored before the execution block existed stay resumable
    elif policy.execution.action_rule is None:
        policy_block["execution"].pop("action_rule", None)  # ... and those stored before action rules existed
    return {
        "suite_hash": spec.spec_hash(),
        "suite": spec.model_dump(mode="json"),
        "policy": policy_block,
        "replan_steps": replan_steps,
    }


def effective_replan_steps(cli_value: int | None, policy: PolicyConfig) -> int | None:
    """The number of actions of each chunk the rollout executes (None: the whole chunk)."""
    return chunk_execution(policy, cli_value)[0]


def _describe_diff(old: dict, new: dict, prefix: str = "") -> str:
    """Every differing leaf as ``path: stored X, now Y`` so the user sees what changed."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out.append(_describe_diff(a, b, f"{prefix}{key}."))
        else:
            out.append(f"{prefix}{key}: stored {_brief(a)}, now {_brief(b)}")
    return "; ".join(out)


def _brief(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def resolve_request_policy(policy: str | Path | PolicyConfig | Policy, policy_args: list[str] | None) -> PolicyConfig:
    """The :class:`PolicyConfig` of a request's policy, whichever form it was given in."""
    if isinstance(policy, (PolicyConfig, Policy)):
        if policy_args:
            raise ConfigError(
                f"--policy-arg {policy_args[0]!r}: arguments apply to a policy name or file, "
                f"not to a {type(policy).__name__} object; set them on the object"
            )
        if isinstance(policy, (Policy, InstancePolicyConfig)):
            return policy if isinstance(policy, InstancePolicyConfig) else InstancePolicyConfig.of(policy)
        return check_policy_config(policy, f"policy {policy.name!r}")
    return resolve_policy(str(policy), policy_args)


def run(req: RunRequest) -> RunOutcome:
    preflight.check_request(req)
    spec = load_suite(req.suite, {"episodes_per_task": req.episodes_per_task, "seed": req.seed})
    get_backend(spec.backend).check_ready(spec)  # e.g. an asset pack not installed: fail before any folder is made
    check_plan_size(spec)
    policy_cfg = resolve_request_policy(req.policy, req.policy_args)
    preflight.check_policy_checkpoints(policy_cfg.args, policy_cfg.source or "--policy")
    policy_python = _policy_python(policy_cfg)
    if policy_python is not None and req.policy_server == "none":
        from dataclasses import replace

        from vla_eval.remote.policy_env import announce

        print(announce(policy_cfg.name, _policy_class(policy_cfg), policy_python), file=sys.stderr, flush=True)
        req = replace(req, policy_server="auto")
    videos = _parse_videos(req.videos)
    workers = req.workers or os.cpu_count() or 1
    run_dir = (
        Path(req.run_dir)
        if req.run_dir
        else naming.run_folder(
            Path(req.results_root), spec.name, policy_cfg.name, datetime.now().strftime("%Y%m%d-%H%M%S")
        )
    )
    replan_steps = effective_replan_steps(req.replan_steps, policy_cfg)
    protocol = protocol_of(spec, policy_cfg, replan_steps)
    prepare_run_dir(run_dir)
    lock = RunLock(run_dir).acquire()
    try:
        store = RunStore(run_dir)
    except StoreError:
        lock.release()
        raise
    except Exception as exc:
        lock.release()
        raise open_store_errors(run_dir, exc) from exc
    try:
        existing = store.get_meta("protocol")
        if existing is not None and existing != protocol:
            raise ConfigError(
                f"{run_dir} already holds a run with a different protocol (differs in: "
                f"{_describe_diff(existing, protocol)}); choose another --run-dir"
            )
        if existing is not None and not req.resume and store.count():
            raise ConfigError(f"{run_dir} already holds {store.count()} episodes; pass --resume to continue it")
        if existing is not None:
            store.validate()
            stored = RunMeta.from_stored(store.get_meta("config"), str(run_dir)).checkpoint_hash
            current = checkpoint_hash(policy_cfg)
            if stored != current:
                raise ConfigError(
                    f"{run_dir}: checkpoint {policy_cfg.args.get('checkpoint')!r} is not the one this run started with "
                    f"(fingerprint stored {stored}, now {current}); resuming would mix two models' episodes. "
                    "Choose another --run-dir"
                )
        run_id = store.get_meta("run_id") or run_dir.name
        if existing is None:
            store.set_meta("run_id", run_id)
            store.set_meta("protocol", protocol)
            config = run_meta(run_id, spec, policy_cfg, req, workers, replan_steps, policy_python).stored()
            store.set_meta("config", config)
            (run_dir / "run.json").write_text(json.dumps(config, indent=2, sort_keys=True))

        plan = build_plan(spec)
        done = store.done_keys()
        todo = [item for item in plan if item.key not in done]
        gate = None
        if req.gate is not None:
            from vla_eval.results.gate_run import GateMonitor

            gate = GateMonitor.start(req.gate, store, plan)
            todo = [] if gate.should_stop() else gate.order(todo)
        policy_cls = _policy_class(policy_cfg)
        cameras = cameras_needed(spec, policy_cls, videos)
        setup = episode_setup(
            spec,
            run_id,
            policy_cfg,
            req.replan_steps,
            render=req.render,
            video_camera=spec.cameras[0] if videos.enabled and spec.cameras else None,
        )
        worker_cfg = WorkerConfig(
            spec=spec,
            policy=policy_cfg,
            settings=setup.settings,
            run_dir=str(run_dir),
            videos=videos,
            cameras=cameras,
            depth=bool(getattr(policy_cls, "needs_depth", False)),
            limits=_limits(req),
        )
        execution = ExecutionSummary()
        if todo:
            monitor = DeadPolicyMonitor(req.dead_policy_episodes, len(todo))
            executor = _make_executor(req, worker_cfg, workers)
            server = None
            if req.policy_server == "auto":  # one batching server; workers reach it through the remote adapter
                from vla_eval.remote.supervisor import serve_for_run

                server = serve_for_run(
                    executor, policy_cfg, run_dir, max_batch=workers * req.batch_envs, python=policy_python
                )
            elif req.policy_server != "none":
                raise ConfigError(f"--policy-server {req.policy_server!r}: expected 'auto' or 'none'")
            try:
                execution = _execute(executor, todo, store, len(plan), len(done), req.progress, gate, monitor)
            finally:
                if server is not None:
                    server.stop()
        gate_state = gate.finish(store, run_dir) if gate is not None else None
        if gate is None and store.get_meta("gate") and todo:
            from vla_eval.results.gate_run import GateMonitor

            GateMonitor(store.get_meta("gate")["design"], []).finish(
                store, run_dir
            )  # a stopped gated run resumed to the full plan
        records = list(store.records())
        summary = summary_frame(records, [s.name for s in spec.splits], [t.name for t in spec.tasks])
        summary, gate_md = _gate_view(store, summary)
        table = wide_table(summary, spec.in_domain_split, [s.name for s in spec.splits])
        md = gate_md + markdown(table)
        protocol_md = get_backend(spec.backend).protocol_summary(spec, summary)
        if protocol_md:
            md = f"{md}\n\n{protocol_md}"
        (run_dir / "table.md").write_text(md + "\n")
        summary.to_csv(run_dir / "summary.csv", index=False)
        table.to_csv(run_dir / "table.csv")
        executed = len(store.done_keys()) - len(done)
        return RunOutcome(run_dir, spec, summary, md, executed, len(done), execution, gate_state)
    finally:
        store.close()
        lock.release()


def _gate_view(store: RunStore, summary: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """A gated run's table: repeated CIs instead of Wilson, and a line saying where it stopped."""
    meta = store.get_meta("gate")
    if not meta:
        return summary, ""
    from vla_eval.results.gate_run import gate_view

    _, summary, header = gate_view(meta, list(store.records_in_completion_order()), summary)
    return summary, header + "\n\n"


def _limits(req: RunRequest) -> Limits:
    return Limits(
        policy_call_s=req.policy_timeout_s,
        episode_s=req.episode_timeout_s,
        max_rss_mb=req.max_worker_rss_mb,
        dead_policy_episodes=req.dead_policy_episodes,
    )


def _execute(
    executor,
    todo,
    store: RunStore,
    total: int,
    done: int,
    progress: bool,
    gate=None,
    monitor: DeadPolicyMonitor | None = None,
) -> ExecutionSummary:
    counts = {"ok": 0, "n": 0}
    bar = tqdm(total=total, initial=done, unit="ep", disable=not progress, file=sys.stderr, dynamic_ncols=True)

    def on_record(record: EpisodeRecord) -> None:
        store.add(record)
        if gate is not None:
            gate.observe(record)
        counts["n"] += 1
        counts["ok"] += int(record.success)
        bar.update(1)
        bar.set_postfix_str(f"success {counts['ok']}/{counts['n']} ({100 * counts['ok'] / counts['n']:.0f}%)")
        if monitor is not None:
            monitor.feed(record)

    try:
        if gate is not None:
            return executor.run(todo, on_record, should_stop=gate.should_stop)
        return executor.run(todo, on_record)
    finally:
        bar.close()


def _make_executor(req: RunRequest, worker_cfg: WorkerConfig, workers: int):
    if req.executor == "local":
        return LocalExecutor(worker_cfg, workers, req.batch_envs)
    if req.executor == "ray":
        from vla_eval.execution.ray_executor import RayExecutor

        return RayExecutor(worker_cfg, workers, req.batch_envs, address=req.ray_address)
    raise ConfigError(f"--executor {req.executor!r}: expected 'local' or 'ray'")


def _parse_videos(text: str) -> VideoPolicy:
    try:
        return VideoPolicy.parse(text)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def checkpoint_hash(cfg: PolicyConfig) -> str | None:
    """The run's checkpoint fingerprint: of the weights the adapter will load (aliases resolved)."""
    try:
        cls = _policy_class(cfg)
    except Exception:
        cls = None
    location = cls.checkpoint_location(cfg.args) if hasattr(cls, "checkpoint_location") else cfg.args.get("checkpoint")
    return provenance.checkpoint_fingerprint(location)


def _policy_class(cfg: PolicyConfig):
    if isinstance(cfg, InstancePolicyConfig):
        return type(cfg.create())
    from vla_eval.policies import POLICIES

    return POLICIES.get(cfg.adapter)


def _policy_python(cfg: PolicyConfig) -> Path | None:
    """The managed interpreter the policy must be served from (its adapter's ``environment``), or None.

    A policy given as an object already lives here; a class that cannot be found is the worker's error to report."""
    if isinstance(cfg, InstancePolicyConfig):
        return None
    try:
        cls = _policy_class(cfg)
    except Exception:
        return None
    from vla_eval.remote.policy_env import foreign_python

    location = cls.checkpoint_location(cfg.args) if hasattr(cls, "checkpoint_location") else None
    if location and not any(key in cfg.args for key in preflight.CHECKPOINT_KEYS):
        preflight.check_checkpoint(location, f"{cfg.source or '--policy'}: checkpoint")
    return foreign_python(cls)


def run_meta(
    run_id: str,
    spec: SuiteSpec,
    policy: PolicyConfig,
    req: RunRequest,
    workers: int,
    replan_steps: int | None = None,
    policy_python: Path | None = None,
) -> RunMeta:
    """The metadata a new run folder records (``run.json`` and the store's ``config``)."""
    extra: dict[str, Any] = {}
    if not isinstance(policy, InstancePolicyConfig):
        try:
            from vla_eval.remote.policy_env import record

            env_record = record(_policy_class(policy), policy_python)
        except Exception:
            env_record = None
        if env_record is not None:
            extra["policy_environment"] = env_record
    return RunMeta.model_validate(
        {
            **extra,
            "schema_version": SCHEMA_VERSION,
            "run_id": run_id,
            "created_at": provenance.now_iso(),
            "suite": spec.model_dump(mode="json"),
            "suite_hash": spec.spec_hash(),
            "policy": policy.model_dump(mode="json"),
            "checkpoint_hash": checkpoint_hash(policy),
            "replan_steps": replan_steps,
            "videos": req.videos,
            "render": req.render,
            "workers": workers,
            "batch_envs": req.batch_envs,
            "executor": req.executor,
            "limits": {
                "policy_timeout_s": req.policy_timeout_s,
                "episode_timeout_s": req.episode_timeout_s,
                "max_worker_rss_mb": req.max_worker_rss_mb,
                "stop_if_dead": req.dead_policy_episodes,
            },
            "policy_server": req.policy_server,
            "versions": {**provenance.package_versions(), **get_backend(spec.backend).versions()},
            "sim_stack": provenance.sim_stack(provenance.package_versions()),
            "git": provenance.git_commit(),
            "machine": provenance.machine(),
            "argv": sys.argv,
        }
    )


def load_run_table(run_dir: Path) -> tuple[dict, pd.DataFrame, str]:
    """Rebuild the tables of a (possibly still running) run from its store.

    Returns the stored metadata as a dict (``RunMeta.from_stored`` reads it typed), the summary and the table."""
    with RunStore(run_dir, readonly=True) as store:
        config = store.get_meta("config") or {}
        records = list(store.records())
        gate_meta = store.get_meta("gate")
        in_order = list(store.records_in_completion_order()) if gate_meta else []
    suite = RunMeta.from_stored(config, str(run_dir)).suite
    splits = suite.split_names or None
    tasks = suite.task_names or None
    summary = summary_frame(records, splits, tasks)
    header = ""
    if gate_meta:
        from vla_eval.results.gate_run import gate_view

        _, summary, header = gate_view(gate_meta, in_order, summary)
        header += "\n\n"
    in_domain = splits[0] if splits else (summary["split"].iloc[0] if not summary.empty else "")
    table = wide_table(summary, in_domain, splits or sorted(summary["split"].unique()) if not summary.empty else [])
    return config, summary, header + markdown(table)
