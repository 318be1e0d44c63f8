"""The worker side of a run: one policy and one live env per process.

The same :class:`EpisodeWorker` serves the local process pool and (later) Ray actors,
so every executor produces identical records.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from vla_eval.plan import PlanItem
from vla_eval.policy_config import PolicyConfig
from vla_eval.record import EpisodeRecord
from vla_eval.rollout import EpisodeSettings, run_episode
from vla_eval.spec import SuiteSpec
from vla_eval.video import BackgroundVideoWriter, VideoPolicy

WORKER_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "LP_NUM_THREADS": "1",
    "MUJOCO_GL": "egl",
    "PYOPENGL_PLATFORM": "egl",
}
"""Set in every worker before numpy/mujoco load: one BLAS and one llvmpipe thread per
process, so N workers scale on N cores instead of fighting over them."""


@dataclass(frozen=True)
class WorkerConfig:
    spec: SuiteSpec
    policy: PolicyConfig
    settings: EpisodeSettings
    run_dir: str
    videos: VideoPolicy
    cameras: tuple[str, ...]


class EpisodeWorker:
    def __init__(self, config: WorkerConfig):
        from vla_eval.backends import get_backend

        self.config = config
        self.backend = get_backend(config.spec.backend)
        self.policy = config.policy.create()
        self._env = None
        self._env_key: tuple[str, str] | None = None
        self._videos = BackgroundVideoWriter() if config.videos.enabled else None

    def _env_for(self, item: PlanItem):
        if self._env_key != item.env_key:
            self._drop_env()
            self._env = self.backend.make_env(self.config.spec, item.task, item.split, list(self.config.cameras))
            self._env_key = item.env_key
        return self._env

    def _drop_env(self) -> None:
        if self._env is not None:
            try:
                self._env.close()
            except Exception:
                pass
        self._env, self._env_key = None, None

    def run(self, item: PlanItem) -> EpisodeRecord:
        from vla_eval.rollout import _error_text

        settings = self.config.settings
        opts = self.backend.episode_reset_options(self.config.spec, item.task, item.episode_index)
        if opts:
            settings = EpisodeSettings(**{**settings.__dict__, "reset_options": opts})
        try:
            env = self._env_for(item)
        except Exception as exc:
            self._drop_env()
            return EpisodeRecord(
                run_id=settings.run_id, suite=settings.suite, task=item.task, split=item.split,
                episode_index=item.episode_index, init_state_id=item.init_state_id, seed=item.seed,
                success=False, steps=0, termination="env_error", error=f"env creation failed: {_error_text(exc)}",
            )
        frames: list | None = [] if self._videos and self.config.videos.may_want(item.episode_index) else None
        record, env_ok = run_episode(env, self.policy, item, settings, frames)
        if not env_ok:
            self._drop_env()
        if frames and self.config.videos.wants(item.episode_index, record.success):
            rel = Path("videos") / f"{item.task}__{item.split}__{item.episode_index:04d}.mp4"
            self._videos.submit(Path(self.config.run_dir) / rel, frames, record.instruction, record.termination)
            record.video_path = str(rel)
        return record

    def close(self) -> None:
        self._drop_env()
        if self._videos:
            self._videos.close()
        self.policy.close()


def worker_main(conn, config: WorkerConfig) -> None:
    """Process entry point: serve ``("run", item)`` requests until ``("stop",)``."""
    for key, value in WORKER_ENV.items():
        os.environ.setdefault(key, value)
    try:
        worker = EpisodeWorker(config)
    except Exception as exc:
        from vla_eval.rollout import _error_text

        conn.send(("fatal", f"could not start worker: {_error_text(exc)}"))
        return
    conn.send(("ready", os.getpid()))
    try:
        while True:
            try:
                msg = conn.recv()
            except EOFError:
                break
            if msg[0] == "stop":
                break
            item: PlanItem = msg[1]
            record = worker.run(item)
            conn.send(("done", record.model_dump(mode="json")))
    finally:
        worker.close()

