"""Episode videos: MP4 with the instruction and step counter burnt in.

Frames: with on-demand rendering (the default) only the video camera is drawn for the
video, at the suite's image size, on every ``video_stride``-th step (2: half the control
rate); the MP4 plays at ``control_hz / stride`` fps so it keeps real time, and the record's
``extras["video_frame_stride"]`` says which steps it shows (docs/scaling.md).

Encoding runs on a background thread of the worker so the next episode's rollout does
not wait for ffmpeg.
"""

from __future__ import annotations

import queue
import re
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_MODE = re.compile(r"^(none|failures|all|first:(\d+))$")


@dataclass(frozen=True)
class VideoPolicy:
    """Which episodes get a video: ``none``, ``failures``, ``all`` or ``first:N`` (per task and split)."""

    mode: str = "none"
    first_n: int = 0

    @classmethod
    def parse(cls, text: str) -> "VideoPolicy":
        m = _MODE.match(text.strip())
        if not m:
            raise ValueError(f"--videos {text!r}: expected none, failures, all or first:N")
        if m.group(2) is not None:
            return cls("first", int(m.group(2)))
        return cls(m.group(1))

    @property
    def enabled(self) -> bool:
        return self.mode != "none" and not (self.mode == "first" and self.first_n == 0)

    def wants(self, episode_index: int, success: bool) -> bool:
        if self.mode == "all":
            return True
        if self.mode == "failures":
            return not success
        if self.mode == "first":
            return episode_index < self.first_n
        return False

    def may_want(self, episode_index: int) -> bool:
        """Whether frames must be collected before the outcome is known."""
        return self.enabled and (self.mode != "first" or episode_index < self.first_n)


def annotate(frame: np.ndarray, lines: list[str]) -> np.ndarray:
    from PIL import Image, ImageDraw

    scale = max(1, 256 // max(frame.shape[0], 1))
    img = Image.fromarray(frame).resize((frame.shape[1] * scale, frame.shape[0] * scale), Image.NEAREST)
    draw = ImageDraw.Draw(img)
    y = 2
    for line in lines:
        draw.rectangle([0, y, img.width, y + 11], fill=(0, 0, 0))
        draw.text((2, y), line, fill=(255, 255, 255))
        y += 12
    return np.asarray(img)


def write_video(path: Path, frames: list[np.ndarray], instruction: str, outcome: str, fps: int = 20) -> None:
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.mp4")
    try:
        with imageio.get_writer(tmp, fps=fps, codec="libx264", macro_block_size=1, quality=7) as writer:
            for i, frame in enumerate(frames):
                writer.append_data(annotate(frame, [instruction[:60], f"step {i}/{len(frames) - 1}  {outcome}"]))
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk must not leave a truncated video behind
        raise


class BackgroundVideoWriter:
    """A single non-daemon thread per worker; :meth:`close` drains the queue before exit."""

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=8)
        self._thread = threading.Thread(target=self._loop, name="video-writer", daemon=False)
        self._thread.start()
        self.errors: list[str] = []

    def submit(self, path: Path, frames: list[np.ndarray], instruction: str, outcome: str, fps: int = 20) -> Future:
        """Queue a video; the future completes (or fails) once ``path`` is written whole."""
        done: Future = Future()
        self._queue.put((done, (path, frames, instruction, outcome, fps)))
        return done

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            done, args = job
            try:
                write_video(*args)
                done.set_result(args[0])
            except Exception as exc:
                self.errors.append(f"{args[0]}: {exc}")
                done.set_exception(exc)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
