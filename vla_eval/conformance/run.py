"""``vla-eval conformance``: run the expert and the adapter's oracle on the same episodes, compare.

Both runs are ordinary run folders (``OUT/expert``, ``OUT/oracle``) made by the ordinary
runner, so the oracle goes through everything a real checkpoint goes through in
``vla-eval run``: the env's observation, the harness's orientation conversion, the adapter,
the chunk executor (``replan_steps``), the harness's action conversion and the env's
success predicate.  The suite is narrowed to what the comparison needs (the in-domain
split, ``--episodes`` per task, the cameras the adapter reads, LIBERO's fast render
quality unless ``--render-quality reference``). The cut suite and both policy configs are built
in memory and handed to the runner as objects; ``OUT/suite.yaml`` is a copy of the cut suite
kept for the record (each run folder's ``run.json`` holds it too), not an input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from vla_eval.backends import get_backend
from vla_eval.conformance.report import ConformanceReport, compare
from vla_eval.errors import ConfigError
from vla_eval.policy_config import ExecutionConfig, PolicyConfig, parse_overrides, resolve_policy
from vla_eval.spec import SuiteSpec, load_suite
from vla_eval.store import RunStore

KINDS = ("vla_r1", "openvla", "remote")
ORACLE_BACKENDS = ("libero", "tabletop")
"""Backends whose tasks the adapters' oracles can solve (their keypoints and privileged state); the
expert they are compared against is the backend's own (:attr:`vla_eval.backends.Backend.expert`)."""


@dataclass
class ConformanceRequest:
    suite: str
    policy: str
    out_dir: Path
    episodes: int = 3
    margin_points: float = 10.0
    workers: int = 1
    policy_args: list[str] = field(default_factory=list)
    tasks: list[str] | None = None
    render_quality: str = "fast"
    resume: bool = False
    progress: bool = False
    expert_runs: list[Path] | None = None
    """Reuse these expert run folders (same suite and seeds; matched per episode) instead of running the expert."""
    checkpoint_dir: Path | None = None
    """Where the oracle's tiny checkpoints are built (reused when present); default ``OUT/checkpoints``."""
    mutate: Callable[[dict[str, Any]], None] | None = None
    """Tests only: edit the oracle's policy config (a deliberately broken convention)."""


def adapter_kind(adapter: str) -> str:
    for kind in KINDS:
        if adapter == kind:
            return kind
    raise ConfigError(f"conformance has oracles for the adapters {', '.join(KINDS)}; got adapter {adapter!r}")


def derive_suite(req: ConformanceRequest, cameras: list[str]) -> SuiteSpec:
    """The cut of ``--suite`` both runs use; ``OUT/suite.yaml`` records it."""
    spec = load_suite(req.suite)
    if spec.backend not in ORACLE_BACKENDS or get_backend(spec.backend).expert is None:
        raise ConfigError(
            f"--suite {req.suite}: conformance needs a privileged expert; backends with one: {sorted(ORACLE_BACKENDS)}"
        )
    data = spec.model_dump(mode="json")
    splits = data["splits"]
    data["splits"] = [s for s in splits if not s.get("out_of_domain")][:1] or splits[:1]
    data["episodes_per_task"] = int(req.episodes)
    data["cameras"] = cameras
    if req.tasks:
        known = [t["name"] for t in data["tasks"]]
        unknown = [t for t in req.tasks if t not in known]
        if unknown:
            raise ConfigError(f"--tasks: {unknown} not in suite {req.suite}; known: {known}")
        data["tasks"] = [t for name in req.tasks for t in data["tasks"] if t["name"] == name]
    if spec.backend == "libero":
        data["backend_options"]["render_quality"] = req.render_quality
    cut = load_suite(SuiteSpec.model_validate(data))
    req.out_dir.mkdir(parents=True, exist_ok=True)
    (req.out_dir / "suite.yaml").write_text(yaml.safe_dump(cut.model_dump(mode="json"), sort_keys=False))
    return cut


def _run(suite: SuiteSpec, policy: PolicyConfig, run_dir: Path, req: ConformanceRequest):
    from vla_eval.execution.runner import RunRequest, run

    resume = req.resume and run_dir.exists()
    return run(
        RunRequest(
            suite=suite,
            policy=policy,
            run_dir=run_dir,
            workers=req.workers,
            resume=resume,
            progress=req.progress,
            dead_policy_episodes=10**6,
        )
    )


def _records(run_dir: Path) -> list:
    store = RunStore(run_dir)
    try:
        return list(store.records())
    finally:
        store.close()


def run_conformance(req: ConformanceRequest) -> ConformanceReport:
    user = resolve_policy(req.policy, req.policy_args)
    kind = adapter_kind(user.adapter)
    ckpt_dir = Path(req.checkpoint_dir) if req.checkpoint_dir else req.out_dir / "checkpoints"
    server = None
    cameras = ["agentview", "wrist"] if kind == "remote" else ["agentview"]
    suite = derive_suite(req, cameras)
    if kind == "vla_r1":
        from vla_eval.conformance.checkpoints import build_qwen_oracle_checkpoint

        args = {
            **user.args,
            "checkpoint": str(build_qwen_oracle_checkpoint(ckpt_dir / "qwen2_5_vl_oracle")),
            "device": "cpu",
            "dtype": "float32",
        }
        if "task_mode" not in parse_overrides(req.policy_args):
            args["task_mode"] = "pick_place"  # every applicable task is a pick-and-place: the place query is part of it
        adapter = "vla_eval.conformance.vla_r1_oracle:VlaR1Oracle"
        execution = user.execution.model_dump(exclude_none=True)
    elif kind == "openvla":
        from vla_eval.conformance.checkpoints import build_llava_oracle_checkpoint

        args = {
            **user.args,
            "checkpoint": str(build_llava_oracle_checkpoint(ckpt_dir / "llava_oracle")),
            "device": "cpu",
            "dtype": "float32",
            "trust_remote_code": False,
            "model_class": "auto",
            "append_token_id": None,
            "unnorm_key": "conformance",
        }
        if user.args.get("norm_stats_path"):  # a real checkpoint's statistics file, with its own unnorm_key
            args["unnorm_key"] = user.args.get("unnorm_key")
        adapter = "vla_eval.conformance.openvla_oracle:OpenVlaOracle"
        execution = user.execution.model_dump(exclude_none=True)
    else:
        from vla_eval.conformance.openpi_oracle import start_oracle_server

        server = start_oracle_server(
            replan_steps=user.execution.replan_steps or 5, chunk=int(user.args.get("max_chunk") or 10)
        )
        args = {**user.args, "uri": server.url, "send_privileged": True, "send_reset": True, "check_health": True}
        args.pop("host", None), args.pop("port", None)
        adapter = "vla_eval.conformance.openpi_oracle:OracleClient"
        execution = user.execution.model_dump(exclude_none=True)
    if req.mutate is not None:
        req.mutate(args)
    oracle_policy = PolicyConfig(
        name=f"{user.name}_oracle", adapter=adapter, args=args, execution=ExecutionConfig.model_validate(execution)
    )
    expert_policy = PolicyConfig(name="expert", adapter=str(get_backend(suite.backend).expert))
    expert_dirs = [Path(d) for d in req.expert_runs] if req.expert_runs else [req.out_dir / "expert"]
    for d in expert_dirs:
        if req.expert_runs and not (d / "run.json").is_file():
            raise ConfigError(f"--expert-run {d}: not a run folder (no run.json)")
    try:
        if not req.expert_runs:
            _run(suite, expert_policy, req.out_dir / "expert", req)
        _run(suite, oracle_policy, req.out_dir / "oracle", req)
    finally:
        if server is not None:
            server.shutdown()
    oracle_recs, expert_recs = _records(req.out_dir / "oracle"), []
    for d in expert_dirs:
        expert_recs += _records(d)
    report = compare(suite.name, user.name, oracle_recs, expert_recs, req.margin_points, [t.name for t in suite.tasks])
    (req.out_dir / "conformance.md").write_text(report.markdown() + "\n")
    (req.out_dir / "conformance.json").write_text(json.dumps(report.as_dict(), indent=2))
    return report
