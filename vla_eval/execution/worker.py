"""The worker side of a run: one policy and its live envs per process.

The same :class:`EpisodeWorker` serves the local worker processes and the Ray actors, so
every executor produces identical records.  A worker never decides retries: it reports
what happened (``done``, ``recycle``, ``lost``) and the driver's
:class:`~vla_eval.execution.scheduler.Scheduler` decides.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vla_eval.errors import RetryEpisode
from vla_eval.execution.limits import Limits, TimedPolicy, Watchdog, needs_recycling
from vla_eval.execution.plan import PlanItem
from vla_eval.execution.rollout import EpisodeSettings, error_text, failed_record, run_episodes
from vla_eval.execution.settings import EpisodeSetup
from vla_eval.policy_config import PolicyConfig
from vla_eval.record import EpisodeRecord
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
    depth: bool = False
    limits: Limits = field(default_factory=Limits)


class EpisodeWorker:
    """Holds the policy and up to K live envs of one (task, split); runs batches of episodes."""

    def __init__(self, config: WorkerConfig, watchdog: Watchdog | None = None):
        from vla_eval.backends import get_backend

        self.config = config
        self.backend = get_backend(config.spec.backend)
        self.policy = config.policy.create()
        self._watchdog = watchdog
        if watchdog is not None:
            self.policy = TimedPolicy(self.policy, watchdog)
        self._envs: list = []
        self._env_key: tuple[str, str] | None = None
        self._videos = BackgroundVideoWriter() if config.videos.enabled else None
        self.progress: dict[tuple, dict[str, Any]] = {}
        """Live step counters of the batch in flight, read by the watchdog when it ends the batch."""

    def _envs_for(self, item: PlanItem, count: int) -> list:
        if self._env_key != item.env_key:
            self._drop_envs()
            self._env_key = item.env_key
        while len(self._envs) < count:
            self._envs.append(
                self.backend.make_env(
                    self.config.spec, item.task, item.split, list(self.config.cameras), depth=self.config.depth
                )
            )
        return self._envs[:count]

    def _drop_envs(self, which: list | None = None) -> None:
        for env in list(self._envs if which is None else which):
            try:
                env.close()
            except Exception:
                pass
            self._envs.remove(env)
        if not self._envs:
            self._env_key = None

    def run_batch(self, items: list[PlanItem]) -> list[EpisodeRecord]:
        """Run episodes of one (task, split) in lock-step, one env each."""
        settings = self.config.settings
        try:
            envs = self._envs_for(items[0], len(items))
        except Exception as exc:
            self._drop_envs()
            return [failed_record(settings, item, f"env creation failed: {error_text(exc)}") for item in items]
        setup = EpisodeSetup(self.config.spec, settings)
        options = [setup.reset_options(i) for i in items]
        videos = self.config.videos
        frames = [[] if self._videos and videos.may_want(i.episode_index) else None for i in items]
        self.progress = {}
        if self._watchdog is not None:
            with self._watchdog.batch():
                results = run_episodes(envs, self.policy, items, settings, frames, options, self.progress)
        else:
            results = run_episodes(envs, self.policy, items, settings, frames, options, self.progress)
        self._drop_envs([env for env, (_, ok) in zip(envs, results) if not ok])
        records, written = [], []
        for item, f, (record, _) in zip(items, frames, results):
            if f and videos.wants(item.episode_index, record.success):
                rel = Path("videos") / f"{item.task}__{item.split}__{item.episode_index:04d}.mp4"
                written.append(
                    (
                        record,
                        rel,
                        self._videos.submit(
                            Path(self.config.run_dir) / rel,
                            f,
                            record.instruction,
                            record.termination,
                            fps=_video_fps(envs[0], record),
                        ),
                    )
                )
            records.append(_storable(record))
        for record, rel, done in written:  # a record names its video only once the file is complete
            error = done.exception()
            if error is None:
                record.video_path = str(rel)
            else:
                record.extras["video_error"] = f"{rel}: {error_text(error)}"[:300]
        return records

    def close(self) -> None:
        self._drop_envs()
        if self._videos:
            self._videos.close()
        self.policy.close()


def _video_fps(env: Any, record: EpisodeRecord) -> int:
    """Real-time playback of frames kept every ``video_frame_stride`` control steps."""
    hz = getattr(getattr(env, "unwrapped", env), "metadata", {}).get("render_fps") or 20
    return max(1, round(float(hz) / int(record.extras.get("video_frame_stride", 1))))


def start_error(exc: BaseException) -> str:
    """The ``fatal`` message of a worker whose policy or backend could not be created."""
    return f"could not start worker: {error_text(exc)}"


def worker_main(conn, config: WorkerConfig) -> None:
    """Process entry point: serve ``("run", items)`` requests until ``("stop",)``.

    A batch whose policy server was lost (:class:`~vla_eval.errors.RetryEpisode`) is given
    back with ``("lost", reason)`` and the process ends: its connections to the old server
    are useless, and the driver reruns those episodes on a fresh worker without charging them."""
    for key, value in WORKER_ENV.items():
        os.environ.setdefault(key, value)
    send_lock = threading.Lock()
    in_flight: dict[str, list[PlanItem] | None] = {"items": None}

    def on_overrun(termination: str, message: str) -> None:
        # runs on the watchdog thread while the main thread is stuck in the policy or env
        with send_lock:
            items = in_flight["items"]
            if items is None:
                return
            live = worker.progress if worker is not None else {}
            records = [timeout_record(config, item, termination, message, live.get(item.key)) for item in items]
            conn.send(("recycle", message))  # first, so the driver sends nothing more to this worker
            conn.send(("done", [r.model_dump(mode="json") for r in records]))
            os._exit(0)

    worker: EpisodeWorker | None = None
    watchdog = Watchdog(config.limits, on_overrun) if config.limits.timed else None
    try:
        worker = EpisodeWorker(config, watchdog)
    except Exception as exc:
        conn.send(("fatal", start_error(exc)))
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
            with send_lock:
                in_flight["items"] = msg[1]
            try:
                records = worker.run_batch(msg[1])
            except RetryEpisode as exc:
                with send_lock:
                    in_flight["items"] = None
                    conn.send(("lost", str(exc)))
                break
            reason = needs_recycling(config.limits, records)
            with send_lock:
                in_flight["items"] = None
                if reason:
                    conn.send(("recycle", reason))  # before "done": no new batch may be sent here
                conn.send(("done", [r.model_dump(mode="json") for r in records]))
            if reason:
                break
    finally:
        if watchdog is not None:
            watchdog.close()
        worker.close()


def _storable(record: EpisodeRecord) -> EpisodeRecord:
    """The record with extras that survive JSON (and so pickling, pipes and Ray) on every executor."""
    try:
        record.model_dump_json()
        return record
    except Exception:
        from vla_eval.jsonsafe import json_safe

        record.extras = json_safe(record.extras)
        return record


def timeout_record(
    config: WorkerConfig, item: PlanItem, termination: str, message: str, progress: dict[str, Any] | None = None
) -> EpisodeRecord:
    """The record of an episode ended by a wall-clock limit; ``progress`` (the live step
    counters, when the worker's own watchdog fired) says how far it got. The driver's backstop
    kills a silent process and cannot know, so its records keep ``steps=0``."""
    record = failed_record(config.settings, item, message)
    record.termination = termination
    if progress:
        record.steps = int(progress.get("steps", 0))
        record.policy_calls = int(progress.get("policy_calls", 0))
        record.policy_time_s = float(progress.get("policy_time_s", 0.0))
        record.sim_time_s = float(progress.get("sim_time_s", 0.0))
    return record
