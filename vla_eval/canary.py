"""Render-drift canary: does this machine draw the built-in scenes as the reference numbers were made?

LIBERO's published scores moved when a MuJoCo release rendered floors darker; only an
image-based policy notices such a change, and only if someone compares. The canary runs
the shipped reference checkpoint on a fixed small plan (the first episodes of
``tabletop_basic``'s in-domain split) and compares with values stored beside the checkpoint:

* the first frame of every episode and camera, as the policy sees it (64x64): an exact
  SHA-256 of the full-resolution frames *and* the mean absolute pixel difference against
  stored thumbnails, because exact hashes legitimately differ across llvmpipe / GPU drivers
  while a real lighting or material change moves many pixels;
* each episode's success and step count under the deterministic reference policy.

Levels: ``ok`` (bit-identical), ``notice`` (frames differ slightly or step counts moved but
every outcome matches: numbers stay comparable), ``warn`` (frames differ beyond the
tolerance or an outcome changed: do not compare success rates with ones made elsewhere).
``doctor`` can call :func:`run_canary` and print :meth:`CanaryReport.text`.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vla_eval.errors import ConfigError

CANARY_FORMAT = "vla-eval-canary"
CANARY_VERSION = 1
SUITE = "tabletop_basic"
EPISODES_PER_TASK = 3
WARN_MAD = 2.0
"""Mean absolute difference (0-255 units, 64x64 thumbnails) above which frames count as redrawn.
Measured here: dimming the lights by 5% moves the thumbnails by 8.5 on average, by 30% by
~52. How far two rasterisers (llvmpipe versions, GPU drivers) drift on an unchanged scene
was not measured on these machines; edge antialiasing alone touches few pixels."""
LEVELS = ("ok", "notice", "warn")


def canary_paths(folder: Path | None = None) -> tuple[Path, Path]:
    from vla_eval.policies.reference import CHECKPOINT_DIR

    folder = Path(folder) if folder else CHECKPOINT_DIR
    return folder / "canary.json", folder / "canary_frames.safetensors"


@dataclass
class CanaryMeasurement:
    checkpoint: str
    weights_sha256_16: str
    episodes: list[dict[str, Any]] = field(default_factory=list)
    frames_sha256: str = ""
    thumbnails: np.ndarray | None = None
    versions: dict[str, str] = field(default_factory=dict)


@dataclass
class CanaryReport:
    level: str
    lines: list[str]
    max_mad: float
    outcome_changes: int
    step_changes: int
    frames_identical: bool

    def text(self) -> str:
        return "\n".join([f"render canary: {self.level.upper()}", *self.lines])

    @property
    def exit_code(self) -> int:
        return 1 if self.level == "warn" else 0


def _versions() -> dict[str, str]:
    import os

    import mujoco

    out = {
        "mujoco": mujoco.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "system": platform.system(),
        "MUJOCO_GL": os.environ.get("MUJOCO_GL", ""),
    }
    try:
        import torch

        out["torch"] = torch.__version__
    except ImportError:
        pass
    return out


def _with_extra_perturbations(spec, split: str, extra: list[dict] | None):
    if not extra:
        return spec
    splits = [
        s.model_copy(update={"perturbations": [*s.perturbations, *extra]}) if s.name == split else s
        for s in spec.splits
    ]
    return spec.model_copy(update={"splits": splits})


def measure(
    checkpoint: str = "final",
    episodes: int = EPISODES_PER_TASK,
    rollouts: bool = True,
    extra_perturbations: list[dict] | None = None,
) -> CanaryMeasurement:
    """First frames (and, with ``rollouts``, outcomes) of the canary plan on this machine.

    ``extra_perturbations`` are added to the in-domain split: how a test makes the scene
    draw differently without touching the scene files.
    """
    from vla_eval.execution.settings import episode_setup
    from vla_eval.policies.reference import ReferencePolicy
    from vla_eval.policies.reference_model import downsample
    from vla_eval.spec import load_suite

    spec = load_suite(SUITE, {"episodes_per_task": episodes})
    split = spec.in_domain_split
    spec = _with_extra_perturbations(spec, split, extra_perturbations)
    setup = episode_setup(spec, "canary")
    policy = ReferencePolicy(checkpoint=checkpoint)
    out = CanaryMeasurement(checkpoint=str(checkpoint), weights_sha256_16=policy.weights_sha, versions=_versions())
    digest = hashlib.sha256()
    thumbs = []
    cameras = list(policy.cfg.cameras)
    items = setup.plan(split)
    try:
        for task in [t.name for t in spec.tasks]:
            env = setup.backend.make_env(spec, task, split, cameras)
            try:
                for item in [i for i in items if i.task == task]:
                    obs, _ = env.reset(seed=item.seed, options=setup.reset_options(item))
                    for cam in cameras:
                        frame = np.ascontiguousarray(obs["images"][cam])
                        digest.update(frame.tobytes())
                        thumbs.append(downsample(frame[None], policy.cfg.image_size)[0])
                    ep = {"task": task, "episode_index": item.episode_index, "seed": item.seed}
                    if rollouts:
                        record, _ = setup.run(env, policy, item)
                        ep.update(success=bool(record.success), steps=int(record.steps), termination=record.termination)
                    out.episodes.append(ep)
            finally:
                env.close()
    finally:
        policy.close()
    out.frames_sha256 = digest.hexdigest()
    out.thumbnails = np.stack(thumbs)
    return out


def save_reference(m: CanaryMeasurement, folder: Path | None = None) -> tuple[Path, Path]:
    """Store a measurement (made with rollouts) as the values future runs are compared with."""
    from safetensors.numpy import save_file

    if any("success" not in e for e in m.episodes):
        raise ConfigError("canary reference values need rollouts (run without --frames-only)")
    json_path, frames_path = canary_paths(folder)
    save_file({"thumbnails": np.ascontiguousarray(m.thumbnails)}, str(frames_path))  # safetensors writes the raw buffer
    json_path.write_text(
        json.dumps(
            {
                "format": CANARY_FORMAT,
                "version": CANARY_VERSION,
                "suite": SUITE,
                "checkpoint": m.checkpoint,
                "weights_sha256_16": m.weights_sha256_16,
                "episodes": m.episodes,
                "frames_sha256": m.frames_sha256,
                "warn_mad": WARN_MAD,
                "recorded_with": m.versions,
            },
            indent=1,
        )
        + "\n"
    )
    return json_path, frames_path


def load_reference(folder: Path | None = None) -> tuple[dict[str, Any], np.ndarray]:
    from safetensors.numpy import load_file

    json_path, frames_path = canary_paths(folder)
    for p in (json_path, frames_path):
        if not p.is_file():
            raise ConfigError(f"canary: reference file {p} does not exist (write it with `vla-eval canary --record`)")
    try:
        ref = json.loads(json_path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"canary: {json_path}: not valid JSON ({exc})") from exc
    if ref.get("format") != CANARY_FORMAT or ref.get("version") != CANARY_VERSION:
        raise ConfigError(f"canary: {json_path}: expected format {CANARY_FORMAT!r} version {CANARY_VERSION}")
    return ref, load_file(str(frames_path))["thumbnails"]


def compare(m: CanaryMeasurement, ref: dict[str, Any], ref_thumbs: np.ndarray) -> CanaryReport:
    if m.weights_sha256_16 != ref["weights_sha256_16"]:
        raise ConfigError(
            f"canary: reference values were recorded for weights {ref['weights_sha256_16']}, "
            f"checkpoint {m.checkpoint!r} has {m.weights_sha256_16}; re-record with `vla-eval canary --record`"
        )
    if m.thumbnails is None or m.thumbnails.shape != ref_thumbs.shape:
        raise ConfigError(
            f"canary: measured {None if m.thumbnails is None else m.thumbnails.shape} thumbnails, "
            f"reference has {ref_thumbs.shape}; the canary plan changed, re-record"
        )
    mad = np.abs(m.thumbnails.astype(np.float32) - ref_thumbs.astype(np.float32)).mean(axis=(1, 2, 3))
    identical = m.frames_sha256 == ref["frames_sha256"]
    warn_mad = float(ref.get("warn_mad", WARN_MAD))
    lines = [
        f"frames: {'bit-identical' if identical else 'differ from the reference'} "
        f"(mean abs pixel diff max {mad.max():.2f}, mean {mad.mean():.2f}; warn above {warn_mad})"
    ]
    level = 0 if identical else 1
    if mad.max() > warn_mad:
        level = 2
        lines.append(
            "  the scenes draw differently here than where the reference numbers were made "
            "(renderer, MuJoCo version, lighting or materials): success rates are not comparable"
        )
    outcome_changes = step_changes = 0
    by_key = {(e["task"], e["episode_index"]): e for e in ref["episodes"]}
    rolled = [e for e in m.episodes if "success" in e]
    for e in rolled:
        r = by_key.get((e["task"], e["episode_index"]))
        if r is None:
            continue
        if e["success"] != r["success"]:
            outcome_changes += 1
            lines.append(f"  {e['task']} episode {e['episode_index']}: success {r['success']} -> {e['success']}")
        elif e["steps"] != r["steps"]:
            step_changes += 1
    if rolled:
        k_ref = sum(
            int(by_key[(e["task"], e["episode_index"])]["success"])
            for e in rolled
            if (e["task"], e["episode_index"]) in by_key
        )
        lines.append(
            f"reference policy: {sum(int(e['success']) for e in rolled)}/{len(rolled)} successes here, "
            f"{k_ref}/{len(rolled)} in the reference; {outcome_changes} outcomes and {step_changes} step counts changed"
        )
        if outcome_changes:
            level = 2
        elif step_changes:
            level = max(level, 1)
    else:
        lines.append("reference policy: not rolled out (frames only)")
    here, there = m.versions, ref.get("recorded_with", {})
    diffs = [
        f"{k} {there.get(k)} -> {here.get(k)}" for k in sorted(set(here) | set(there)) if here.get(k) != there.get(k)
    ]
    lines.append("versions: " + ("same as the reference" if not diffs else "; ".join(diffs)))
    return CanaryReport(
        level=LEVELS[level],
        lines=lines,
        max_mad=float(mad.max()),
        outcome_changes=outcome_changes,
        step_changes=step_changes,
        frames_identical=identical,
    )


def run_canary(
    checkpoint: str = "final",
    rollouts: bool = True,
    extra_perturbations: list[dict] | None = None,
    folder: Path | None = None,
) -> CanaryReport:
    ref, thumbs = load_reference(folder)
    episodes = len({e["episode_index"] for e in ref["episodes"]})
    m = measure(checkpoint=checkpoint, episodes=episodes, rollouts=rollouts, extra_perturbations=extra_perturbations)
    return compare(m, ref, thumbs)
