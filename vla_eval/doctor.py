"""``vla-eval doctor --suite S --policy P``: one real reset and predict, then a report of what would go wrong.

A checkpoint that sees an upside-down image, a bridge that cannot find the camera
parameters or an adapter that emits NaN all produce a 0% table after hours of rollouts.
The doctor finds them in seconds: it builds the suite's first task, resets it as a run
would (reset options, settle steps), checks the observation against the env's declared
contract, shows the image the policy will see (PNG files a person can look at), calls the
policy once and checks the chunk (shape, finiteness, range, conversion to the env's
control space), and lists the protocol knobs and versions in force.

Exit code 0 when nothing is wrong, 1 with a list of problems otherwise (2 for bad input).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vla_eval.jsonsafe import json_safe


@dataclass
class DoctorReport:
    suite: str
    policy: str
    task: str = ""
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    protocol: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    images: dict[str, str] = field(default_factory=dict)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append((name, bool(ok), detail))
        return bool(ok)

    @property
    def problems(self) -> list[str]:
        return [f"{name}: {detail}" for name, ok, detail in self.checks if not ok]

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        lines = [f"vla-eval doctor: suite {self.suite}, policy {self.policy}, task {self.task or '?'}", ""]
        for name, ok, detail in self.checks:
            lines.append(f"  [{'ok' if ok else 'FAIL'}] {name}" + (f": {detail}" if detail else ""))
        for w in self.warnings:
            lines.append(f"  [warn] {w}")
        if self.protocol:
            lines += ["", "protocol in force:"] + [f"  {k}: {v}" for k, v in self.protocol.items()]
        if self.images:
            lines += ["", "images (look at them):"] + [f"  {k}: {v}" for k, v in self.images.items()]
        if self.versions:
            lines += ["", "versions: " + ", ".join(f"{k} {v}" for k, v in sorted(self.versions.items()))]
        lines.append("")
        lines.append(
            "nothing wrong found"
            if self.ok
            else f"{len(self.problems)} problem(s):\n  - " + "\n  - ".join(self.problems)
        )
        return "\n".join(lines)


def _save_png(path: Path, img: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(np.asarray(img, dtype=np.uint8))).save(path)


def _model_images(policy: Any) -> list[np.ndarray]:
    """Images an adapter reports it fed its model on the last call (optional ``last_model_images``)."""
    imgs = getattr(policy, "last_model_images", None)
    if imgs is None:
        return []
    if isinstance(imgs, dict):
        imgs = list(imgs.values())
    out = []
    for im in imgs if isinstance(imgs, (list, tuple)) else [imgs]:
        a = np.asarray(im)
        if a.ndim == 3 and a.shape[2] == 3:
            out.append(a.astype(np.uint8) if a.dtype != np.uint8 else a)
    return out


def diagnose(
    suite: str,
    policy: str,
    policy_args: list[str] | None = None,
    out_dir: Path = Path("doctor"),
    task: str | None = None,
    replan_steps: int | None = None,
) -> DoctorReport:
    """Run the doctor's checks; raises only for bad input (unknown suite / policy / task)."""
    from vla_eval import provenance
    from vla_eval.actions.space import LIBERO_DELTA_EEF
    from vla_eval.backends import get_backend
    from vla_eval.errors import ConfigError
    from vla_eval.execution.plan import episode_seed
    from vla_eval.execution.runner import effective_replan_steps
    from vla_eval.policy_config import resolve_policy
    from vla_eval.sims.contract import check_observation, contract_of
    from vla_eval.sims.orientation import conversion, conversion_for
    from vla_eval.spec import load_suite

    spec = load_suite(suite)
    cfg = resolve_policy(policy, policy_args)
    report = DoctorReport(suite=spec.name, policy=cfg.name)
    names = [t.name for t in spec.tasks]
    if task is not None and task not in names:
        raise ConfigError(f"--task {task!r} is not in suite {spec.name}; tasks: {', '.join(names)}")
    report.task = task or names[0]
    backend = get_backend(spec.backend)
    report.versions = {**provenance.package_versions(), **backend.versions()}
    out_dir = Path(out_dir)

    try:
        pol = cfg.create()
    except Exception as exc:
        report.check("policy loads", False, f"{type(exc).__name__}: {exc}")
        return report
    report.check("policy loads", True, f"adapter {cfg.adapter}")
    env = None
    try:
        depth = bool(getattr(pol, "needs_depth", False))
        cameras = list(spec.cameras)
        try:
            env = backend.make_env(spec, report.task, spec.in_domain_split, cameras, depth=depth)
        except Exception as exc:
            report.check("env builds", False, f"{type(exc).__name__}: {exc}")
            return report
        seed = episode_seed(spec.seed, report.task, 0)  # exactly the run's first episode of this task
        opts = backend.episode_reset_options(spec, report.task, 0) or None
        obs, info = env.reset(seed=seed, options=opts)
        for _ in range(spec.settle_steps):
            obs, *_ = env.step(np.asarray(spec.settle_action, dtype=np.float32))
        contract = contract_of(env)
        problems = check_observation(obs, env)
        report.check(
            "observation contract",
            not problems,
            "; ".join(problems)
            if problems
            else f"origin {contract.image_origin}, cameras {list(contract.cameras)}, depth {contract.depth}",
        )

        conv = conversion_for(env, pol)
        origin = contract.image_origin if contract else "top_left"
        if conv is None:
            report.warnings.append("policy needs no images: no orientation conversion, nothing it sees to save")
        else:
            report.check("image orientation", True, f"env {origin} -> policy {conv.target} ({conv.op})")
        upright = conversion(origin, "upright")
        for cam, img in (obs.get("images") or {}).items():
            p = out_dir / f"{cam}_true_view.png"
            _save_png(p, upright.image(img))
            report.images[f"{cam} (true view, for reference)"] = str(p)
            if conv is not None:
                p = out_dir / f"{cam}_policy_input.png"
                _save_png(p, conv.image(img))
                report.images[f"{cam} (what the policy receives, {conv.target})"] = str(p)

        pobs = conv.observation(obs) if conv is not None else dict(obs)
        if pobs is obs:
            pobs = dict(obs)
        if getattr(pol, "needs_privileged", False):
            pobs["privileged"] = env.unwrapped.privileged_state()
        env_space = getattr(env.unwrapped, "native_action_space", LIBERO_DELTA_EEF)
        try:
            pol.reset([str(obs.get("instruction", ""))], seeds=[seed])
            chunk = pol.predict([pobs])
        except Exception as exc:
            report.check("policy predicts", False, f"{type(exc).__name__}: {exc}")
            chunk = None
        if chunk is not None:
            for k, img in enumerate(_model_images(pol)):
                p = out_dir / f"model_input_{k}.png"
                _save_png(p, img)
                report.images[f"model input {k} (after the adapter's own preprocessing)"] = str(p)
            _check_chunk(report, chunk, env_space)
        try:
            replan = effective_replan_steps(replan_steps, cfg)
        except ConfigError as exc:
            report.check("replan_steps", False, str(exc))
            replan = None
        report.protocol = {
            "task": report.task,
            "max_steps": spec.task_max_steps(report.task),
            "settle_steps": spec.settle_steps,
            "settle_action": list(spec.settle_action),
            "replan_steps": replan if replan is not None else "whole chunk",
            "image_size": list(spec.image_size),
            "cameras": cameras,
            "image_conversion": conv.describe() if conv is not None else "none (policy sees no images)",
            "episode_seed": seed,
            "reset_options": {k: v for k, v in (opts or {}).items()},
            "backend_options": dict(spec.backend_options),
            "suite_hash": spec.spec_hash(),
            "rendering": _rendering(env, pol, chunk, replan, spec),
        }
        report.protocol.update(backend.protocol_facts(spec))
    finally:
        if env is not None:
            env.close()
        pol.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "doctor.json").write_text(
        json.dumps(json_safe(asdict(report) | {"problems": report.problems}), indent=2)
    )
    return report


def _rendering(env: Any, pol: Any, chunk: Any, replan: int | None, spec: Any) -> dict[str, Any]:
    """What a run renders on each step (render on demand, docs/scaling.md)."""
    from vla_eval.execution.rollout import EpisodeSettings, policy_cameras
    from vla_eval.sims.contract import supports_on_demand

    declared = list(getattr(env.unwrapped, "cameras", ()) or ())
    if not supports_on_demand(env):
        return {"mode": "eager (this env draws every declared camera every step)", "cameras": declared}
    period = None
    if chunk is not None and getattr(chunk, "actions", None) is not None:
        period = int(np.asarray(chunk.actions).shape[1])
        period = min(period, replan) if replan else period
    cams = list(policy_cameras(pol, tuple(declared)))
    when = (
        "never"
        if not cams
        else (
            f"after reset{' and settling' if spec.settle_steps else ''} and every "
            f"{period if period else '?'} step(s), when the policy is queried"
        )
    )
    if cams and getattr(pol, "lazy_images", False) and getattr(env.unwrapped, "late_render_exact", True):
        when = "only on the calls where the policy reads them (lazy_images), drawn on first read"
    stride = EpisodeSettings(run_id="", suite="", max_steps={}, settle_steps=0, settle_action=()).frame_stride
    return {
        "mode": "on_demand (--render eager draws every camera every step)",
        "policy_cameras": cams,
        "policy_cameras_drawn": when,
        "not_drawn": sorted(set(declared) - set(cams)) or "-",
        "settle_steps_and_success_checks": "nothing drawn",
        "videos": f"{declared[0] if declared else 'none'} at {list(spec.image_size)}, every {stride} step(s), "
        "only with --videos",
    }


def _check_chunk(report: DoctorReport, chunk: Any, env_space: Any) -> None:
    from vla_eval.actions import to_env_actions
    from vla_eval.actions.space import PolicyOutputError, validate_chunk

    space = getattr(chunk, "space", None)
    try:
        actions = validate_chunk(chunk, batch_size=1, action_dim=space.dim, per_row=True)
    except (PolicyOutputError, AttributeError) as exc:
        report.check("chunk shape", False, str(exc))
        return
    report.check(
        "chunk shape",
        True,
        f"{actions.shape[1]} action(s) of {actions.shape[2]} dims, {space.kind}/{space.rotation}/{space.gripper}",
    )
    finite = bool(np.all(np.isfinite(actions)))
    report.check("chunk finite", finite, "" if finite else f"{int((~np.isfinite(actions)).sum())} NaN/inf value(s)")
    if not finite:
        return
    lo, hi = float(actions.min()), float(actions.max())
    in_range = lo >= space.low - 1e-6 and hi <= space.high + 1e-6
    report.check("chunk range", in_range, f"values in [{lo:.3f}, {hi:.3f}], declared [{space.low:g}, {space.high:g}]")
    try:
        env_actions = to_env_actions(actions[0], space, env_space)
    except PolicyOutputError as exc:
        report.check("action space compatible", False, str(exc))
        return
    report.check(
        "action space compatible",
        True,
        f"policy {space.kind} -> env {env_space.kind}, first action {np.round(env_actions[0], 3).tolist()}",
    )
    extras = (chunk.extras or [{}])[0] if chunk.extras else {}
    if extras.get("bridge_failure"):
        report.check("planner bridge", False, str(extras.get("bridge_error", "bridge_failure")))
    if extras.get("parse_failure"):
        report.warnings.append(
            f"model output did not parse: {extras.get('parse_error', '')} "
            f"(raw: {str(extras.get('raw_text', ''))[:200]!r})"
        )
