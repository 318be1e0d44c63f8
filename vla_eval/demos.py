"""Demonstrations: roll a policy (usually the scripted expert) out and keep (observation, action) pairs.

Episodes are set up by the same builder as an evaluation (:func:`vla_eval.execution.settings.episode_setup`:
reset options, settle phase, step limits, success rule, chunk execution) and go through the same
rollout loop, so what a demo holds is exactly what a policy under evaluation would see and what
the env executed, and a demo counts as successful exactly when ``vla-eval run`` would say so.
The capture is a gymnasium wrapper around each env: it stores the observation
before every ``step`` and the action the env actually received (after the harness's action
conversion), so nothing in the rollout loop changes for recording.

Files follow the robomimic / LIBERO HDF5 layout (LIBERO ``scripts/create_dataset.py``), one
file per task, so loaders written for LIBERO datasets read them::

    data.attrs: env_args (json), problem_info (json: suite, task, split, instruction), num_demos, total
    data/demo_<i>/actions              (T, 7) float32, env-native delta EEF + gripper
    data/demo_<i>/executed_actions     (T, 7) only with --action-noise: what the env received
    data/demo_<i>/rewards, dones       (T,) uint8, 1 on the last step of a successful demo
    data/demo_<i>/obs/agentview_rgb    (T, H, W, 3) uint8, rows top-down as rendered
    data/demo_<i>/obs/eye_in_hand_rgb  (T, H, W, 3) uint8 (the ``wrist`` camera)
    data/demo_<i>/obs/ee_pos (T,3)  ee_ori (T,4 quat wxyz)  ee_states (T,7)
    data/demo_<i>/obs/gripper_states (T,2)  joint_states (T,7)
    data/demo_<i>.attrs: num_samples, seed, episode_index, init_state_id, instruction, success,
                         success_rule, final_state_digest (as in the evaluation's episode record)

Unlike LIBERO's files, images here are stored top-down (as this env renders) and the
quaternion is wxyz; ``data.attrs["image_convention"]`` and ``["quat_convention"]`` say so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from vla_eval.actions.space import ActionChunk
from vla_eval.adapter import Policy
from vla_eval.errors import ConfigError

if TYPE_CHECKING:
    from vla_eval.policy_config import PolicyConfig
    from vla_eval.spec import SuiteSpec

CAMERA_KEYS = {"agentview": "agentview_rgb", "wrist": "eye_in_hand_rgb"}
DEMO_SEED_OFFSET = 1000
"""Demos are recorded under suite seed + this offset by default, so on seeded backends (tabletop)
no demo shares a layout with the evaluation plan (whose episode seeds hash the suite seed itself).
Backends with fixed initial states choose them by episode index, not seed (LIBERO's init states,
SimplerEnv's configuration grid): there demo *i* starts where evaluation episode *i* starts."""
NOISE_DIMS = (0, 1, 2, 5)
"""Action dimensions perturbed by ``--action-noise``: the position deltas and the yaw delta."""


class NoisyPolicy(Policy):
    """Executes the inner policy's actions plus gaussian noise, and remembers the clean ones.

    DART-style data collection (Laskey et al., 2017): the demos then visit states off the
    expert's own path, each labelled with what the expert would do there, so a cloned policy
    learns to recover from its own small errors instead of compounding them. Batch of one.
    """

    def __init__(self, inner: Policy, sigma: float, dims: tuple[int, ...] = NOISE_DIMS, seed: int = 0):
        self.inner, self.sigma, self.dims = inner, float(sigma), list(dims)
        self.needs_images, self.needs_privileged = inner.needs_images, inner.needs_privileged
        self.action_space = inner.action_space
        self.clean_queue: list[np.ndarray] = []
        self._rng = np.random.default_rng(seed)

    def reset(self, instructions, seeds=None):
        self.inner.reset(instructions, seeds)
        self.clean_queue = []
        self._rng = np.random.default_rng([int(s) for s in (seeds or [0])])

    def predict(self, obs_batch):
        chunk = self.inner.predict(obs_batch)
        clean = np.asarray(chunk.actions, dtype=np.float64)
        self.clean_queue = list(clean[0])
        noisy = clean.copy()
        noisy[..., self.dims] += self._rng.normal(0.0, self.sigma, noisy[..., self.dims].shape)
        noisy[..., self.dims] = np.clip(noisy[..., self.dims], -1.0, 1.0)
        return ActionChunk(actions=noisy, space=chunk.space, extras=chunk.extras)

    def close(self):
        self.inner.close()


class StepRecorder(gym.Wrapper):
    """Keeps every (observation, executed action) pair of the current episode.

    With a :class:`NoisyPolicy` it also keeps the clean action behind each executed one
    (the label a cloned policy should learn).
    """

    def __init__(self, env: gym.Env, labels: NoisyPolicy | None = None):
        super().__init__(env)
        self.labels = labels
        self.observations: list[dict[str, Any]] = []
        self.actions: list[np.ndarray] = []
        self.clean: list[np.ndarray] = []
        self._last: dict[str, Any] | None = None

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.observations, self.actions, self.clean, self._last = [], [], [], obs
        return obs, info

    def step(self, action):
        self.observations.append(self._last)
        self.actions.append(np.asarray(action, dtype=np.float32).copy())
        if self.labels is not None:
            queue = self.labels.clean_queue
            self.clean.append(np.asarray(queue.pop(0) if queue else action, dtype=np.float32))
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._last = obs
        return obs, reward, terminated, truncated, info


@dataclass
class DemoSummary:
    files: dict[str, Path] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)
    attempted: dict[str, int] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)


def _stack_episode(rec: StepRecorder, cameras: tuple[str, ...]) -> dict[str, np.ndarray]:
    obs = rec.observations
    state = {k: np.stack([o["state"][k] for o in obs]).astype(np.float32) for k in obs[0]["state"]}
    executed = np.stack(rec.actions).astype(np.float32)
    out = {
        "actions": np.stack(rec.clean).astype(np.float32) if rec.clean else executed,
        "obs/ee_pos": state["eef_pos"],
        "obs/ee_ori": state["eef_quat"],
        "obs/ee_states": np.concatenate([state["eef_pos"], state["eef_quat"]], axis=1),
        "obs/gripper_states": state["gripper_qpos"],
        "obs/joint_states": state["joint_pos"],
    }
    if rec.clean:
        out["executed_actions"] = executed
    for cam in cameras:
        out[f"obs/{CAMERA_KEYS.get(cam, cam + '_rgb')}"] = np.stack([o["images"][cam] for o in obs])
    return out


def record_demos(
    suite: "str | Path | SuiteSpec",
    policy: "str | Path | PolicyConfig | Policy",
    out_dir: Path,
    episodes: int | None = None,
    split: str | None = None,
    seed: int | None = None,
    policy_args: list[str] | None = None,
    keep_failures: bool = False,
    action_noise: float = 0.0,
    progress: bool = True,
) -> DemoSummary:
    """Record ``episodes`` per task of ``split`` (default: the in-domain split) into ``out_dir``.

    Only successful episodes are kept unless ``keep_failures``: behaviour cloning learns
    whatever it is shown. ``action_noise`` > 0 records DART-style demos (:class:`NoisyPolicy`):
    ``actions`` then holds the clean expert actions (the labels) and ``executed_actions``
    what the env received. Returns where each task's file went and how many demos it holds.
    """
    import h5py

    from vla_eval.execution.runner import resolve_request_policy
    from vla_eval.execution.settings import episode_setup
    from vla_eval.spec import load_suite

    base = load_suite(suite, {"episodes_per_task": episodes})
    spec = load_suite(base, {"seed": base.seed + DEMO_SEED_OFFSET if seed is None else seed})
    split_name = split or spec.in_domain_split
    split_names = [s.name for s in spec.splits]
    if split_name not in split_names:
        raise ConfigError(f"--split {split_name!r}: suite {spec.name} has splits {split_names}")
    if action_noise < 0:
        raise ConfigError(f"--action-noise {action_noise}: expected a standard deviation >= 0")
    cfg = resolve_request_policy(policy, policy_args)
    setup = episode_setup(spec, f"demos-{spec.name}", cfg, render="eager")  # a demo stores every frame of every camera
    backend = setup.backend
    cameras = tuple(spec.cameras)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = DemoSummary()
    plan = setup.plan(split_name)
    pol = cfg.create()
    noisy = NoisyPolicy(pol, action_noise) if action_noise > 0 else None
    pol = noisy or pol
    try:
        for task in [t.name for t in spec.tasks]:
            items = [i for i in plan if i.task == task]
            env = StepRecorder(backend.make_env(spec, task, split_name, list(cameras)), labels=noisy)
            path = out_dir / f"{task}_demo.hdf5"
            tmp = path.with_suffix(".hdf5.part")
            kept = total = 0
            try:
                with h5py.File(tmp, "w") as f:
                    grp = f.create_group("data")
                    for item in items:
                        record, _ = setup.run(env, pol, item)
                        if not env.actions or not (record.success or keep_failures):
                            continue
                        arrays = _stack_episode(env, cameras)
                        demo = grp.create_group(f"demo_{kept}")
                        for key, value in arrays.items():
                            opts = (
                                {"compression": "gzip", "compression_opts": 4, "chunks": (1, *value.shape[1:])}
                                if value.ndim == 4
                                else {}
                            )
                            demo.create_dataset(key, data=value, **opts)
                        n = len(arrays["actions"])
                        done = np.zeros(n, dtype=np.uint8)
                        done[-1] = int(record.success)
                        demo.create_dataset("rewards", data=done)
                        demo.create_dataset("dones", data=done)
                        demo.attrs.update(
                            num_samples=n,
                            seed=item.seed,
                            episode_index=item.episode_index,
                            init_state_id=item.init_state_id,
                            instruction=record.instruction,
                            success=bool(record.success),
                            success_rule=record.success_rule,
                            final_state_digest=record.final_state_digest,
                        )
                        kept += 1
                        total += n
                        if progress:
                            print(f"\r{task}: {kept} demos / {item.episode_index + 1} episodes", end="", flush=True)
                    grp.attrs["num_demos"] = kept
                    grp.attrs["total"] = total
                    grp.attrs["env_args"] = json.dumps(
                        {
                            "backend": spec.backend,
                            "task": task,
                            "split": split_name,
                            "cameras": list(cameras),
                            "image_size": list(spec.image_size),
                            "perturbations": spec.split(split_name).perturbations_for(task),
                            "control": "delta_eef_7d_close_positive",
                            "action_noise": {"sigma": action_noise, "dims": list(NOISE_DIMS)}
                            if action_noise > 0
                            else None,
                        }
                    )
                    grp.attrs["problem_info"] = json.dumps(
                        {
                            "suite": spec.name,
                            "suite_hash": spec.spec_hash(),
                            "task": task,
                            "split": split_name,
                            "suite_seed": spec.seed,
                            "policy": cfg.model_dump(mode="json", exclude={"source"}),
                        }
                    )
                    grp.attrs["image_convention"] = "top_down"
                    grp.attrs["quat_convention"] = "wxyz"
                tmp.replace(path)
            finally:
                env.close()
                tmp.unlink(missing_ok=True)
            if progress:
                print()
            summary.files[task], summary.kept[task], summary.attempted[task], summary.samples[task] = (
                path,
                kept,
                len(items),
                total,
            )
    finally:
        pol.close()
    return summary
