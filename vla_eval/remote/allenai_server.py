"""Serve any of our policies to allenai's harness (``vla-eval serve --protocol allenai``).

Their orchestrator connects one websocket per shard with its ``Connection`` and speaks the
protocol of :mod:`vla_eval.remote.allenai_protocol`.  Per connection (one session):

* HELLO is answered with HELLO: ``model_server`` names the policy, ``observation_params`` asks
  their benchmark for what our observation contract carries (state, the wrist image, and the
  robosuite axis-angle ``quat_no_antipodal`` so the state's rotation decodes exactly), and
  ``action_spec`` / ``observation_spec`` describe the policy's native action space and inputs;
  their orchestrator compares these with the benchmark's and warns on a mismatch.
* EPISODE_START opens a new policy slot; the policy is reset on the episode's first
  observation, with its ``task_description`` (and again whenever the instruction changes
  mid-episode, as SimplerEnv's wrappers reset on a new subtask).
* Each OBSERVATION is answered by exactly one ACTION echoing its ``seq``, ``{"actions": (D,)
  float32}`` in the policy's native space.  Chunking happens here, as on their servers: a
  chunk of T actions is served over the next T observations with one ``predict`` call.
* EPISODE_END (or the connection closing) releases the slot.
* A policy failure answers that observation with an ERROR frame ``{"error":
  "observation_failed: ..."}`` and keeps the connection, as their server does; a malformed
  frame gets an ERROR frame and the session goes on.  ``GET /health`` answers 200.

Only one thread calls the policy at a time (a lock), so the policy needs no locking of its own;
batching across connections is the openpi server's job (:mod:`vla_eval.remote.server`).
Images are handed to the policy as they arrive (their LIBERO benchmark sends ``libero_rot180``
views, their SimplerEnv benchmark upright ones) unless ``client_orientation`` says what the
client sends, in which case they are converted to the policy's declared orientation.
"""

from __future__ import annotations

import http
import itertools
import json
import logging
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import websockets
from websockets.sync.server import Server, ServerConnection, serve

from vla_eval.actions.space import ActionSpace, validate_chunk
from vla_eval.adapter import Policy, predict_policy, reset_policy
from vla_eval.jsonsafe import json_safe
from vla_eval.remote import allenai_protocol as ap
from vla_eval.remote import protocol
from vla_eval.remote.obs_format import axis_angle_to_quat_wxyz

log = logging.getLogger(__name__)

CAMERA_NAMES = {"agentview": "agentview", "primary": "agentview", "image": "agentview", "wrist": "wrist"}
"""Their benchmarks' camera keys -> ours (LIBERO: agentview / wrist; SimplerEnv: primary)."""

_ROTATION_FORMAT = {
    "axis_angle": "axis_angle",
    "euler_xyz": "euler_xyz",
    "quat_xyzw": "quaternion_xyzw",
    "quat_wxyz": "quaternion_wxyz",
}
_GRIPPER_FORMAT = {
    "close_positive": ("binary_close_positive", (-1.0, 1.0)),
    "open_positive": ("binary_close_negative", (-1.0, 1.0)),
    "close_01": ("binary_close_01", (0.0, 1.0)),
    "open_01": ("open_01", (0.0, 1.0)),
}


def action_spec(space: ActionSpace) -> dict[str, Any]:
    """Their ``DimSpec`` dicts for our action space (formats named as in their ``vla_eval/specs.py``)."""
    rot_dims = {"axis_angle": 3, "euler_xyz": 3, "quat_xyzw": 4, "quat_wxyz": 4}.get(space.rotation)
    if space.kind == "joint" or rot_dims is None or space.dim != 3 + rot_dims + 1:
        return {"actions": ap.dim_spec("actions", space.dim, "raw", description=f"vla-eval {space.kind} space")}
    normalized = space.position_units == "normalized"
    position = (
        ap.dim_spec("position", 3, "delta_xyz", (-1.0, 1.0) if normalized else None)
        if space.kind == "delta_eef"
        else ap.dim_spec("position", 3, "absolute_xyz")
    )
    grip_fmt, grip_range = _GRIPPER_FORMAT[space.gripper]
    return {
        "position": position,
        "rotation": ap.dim_spec("rotation", rot_dims, _ROTATION_FORMAT[space.rotation]),
        "gripper": ap.dim_spec("gripper", 1, grip_fmt, grip_range),
    }


def our_obs(payload: dict[str, Any]) -> dict[str, Any]:
    """Their OBSERVATION payload -> our observation dict (images, state, instruction)."""
    images = payload.get("images") or {}
    if not isinstance(images, dict):
        raise ValueError(f"observation 'images' must be a map of camera -> image, got {type(images).__name__}")
    obs: dict[str, Any] = {"images": {}, "instruction": str(payload.get("task_description", ""))}
    for name, img in images.items():
        arr = np.asarray(img)
        if arr.ndim != 3 or arr.dtype != np.uint8:
            raise ValueError(f"observation image {name!r} must be HWC uint8, got {arr.dtype} {arr.shape}")
        obs["images"][CAMERA_NAMES.get(str(name), str(name))] = arr
    raw = payload.get("states", payload.get("state"))
    if raw is not None:
        st = np.asarray(raw, dtype=np.float64).reshape(-1)
        if st.size < 7:
            raise ValueError(
                f"observation 'states' must hold [eef pos 3, axis-angle 3, gripper 1-2], got {st.size} values"
            )
        obs["state"] = {"eef_pos": st[:3], "eef_quat": axis_angle_to_quat_wxyz(st[3:6]), "gripper_qpos": st[6:8]}
    return obs


@dataclass
class _Session:
    id: int
    slot: Hashable | None = None
    instruction: str | None = None
    seed: int | None = None
    fresh: bool = False
    queue: list[np.ndarray] = field(default_factory=list)
    steps: int = 0


class AllenaiPolicyServer:
    """Expose ``policy`` to allenai's harness on ``ws://host:port`` (loopback by default)."""

    def __init__(
        self,
        policy: Policy,
        host: str = "127.0.0.1",
        port: int = 8000,
        metadata: dict[str, Any] | None = None,
        max_frame_bytes: int | None = None,
        client_orientation: str | None = None,
    ):
        self.policy = policy
        self.host, self.port = host, port
        self.max_frame_bytes = int(max_frame_bytes or protocol.MAX_FRAME_BYTES)
        self.client_orientation = client_orientation
        self.metadata = dict(metadata or {})
        self._server: Server | None = None
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._slots = itertools.count(1)
        self._last_slot: Hashable | None = None
        self.stats = {"observations": 0, "predicts": 0, "errors": 0, "episodes": 0}

    def hello(self) -> dict[str, Any]:
        p = self.policy
        images = bool(getattr(p, "needs_images", True))
        obs_spec: dict[str, Any] = {
            "language": ap.dim_spec("language", 0, "language"),
            "state": ap.dim_spec("state", 8, "eef_pos3_axisangle3_gripper2"),
        }
        if images:
            obs_spec["agentview"] = ap.dim_spec("image", 0, "rgb_hwc_uint8")
            obs_spec["wrist"] = ap.dim_spec("image", 0, "rgb_hwc_uint8")
        return ap.hello_payload(
            model_server=f"vla-eval:{self.metadata.get('policy_name', p.name)}",
            capabilities={},
            observation_params={"send_state": True, "send_wrist_image": images, "quat_no_antipodal": True},
            action_spec=action_spec(p.action_space),
            observation_spec=obs_spec,
            image_orientation=getattr(p, "image_orientation", "upright") if images else None,
            **{k: json_safe(v) for k, v in self.metadata.items()},
        )

    # -- lifecycle (same surface as vla_eval.remote.server.PolicyServer)
    def start(self) -> AllenaiPolicyServer:
        self._server = serve(
            self._handle,
            self.host,
            self.port,
            compression=None,
            max_size=self.max_frame_bytes,
            process_request=_health,
            ping_interval=None,
        )
        self.port = self._server.socket.getsockname()[1]
        return self

    def serve_forever(self) -> None:
        if self._server is None:
            self.start()
        assert self._server is not None
        self._server.serve_forever()

    def start_in_thread(self) -> threading.Thread:
        self.start()
        t = threading.Thread(target=self.serve_forever, name="vla-eval-allenai-server", daemon=True)
        t.start()
        return t

    def shutdown(self) -> None:
        if self._server is not None:
            self._server.shutdown()

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    # -- one connection
    def _handle(self, ws: ServerConnection) -> None:
        session = _Session(next(self._ids))
        try:
            for raw in ws:
                try:
                    frame = ap.decode_frame(raw, self.max_frame_bytes)
                except ap.AllenaiProtocolError as exc:
                    log.warning("allenai server: rejected a malformed frame: %s", exc)
                    self.stats["errors"] += 1
                    ws.send(self._encode(ap.MessageType.ERROR, {"error": f"malformed_frame: {exc}"}, 0))
                    continue
                self._dispatch(ws, session, frame)
        except websockets.ConnectionClosed:
            pass
        finally:
            self._end_episode(session)

    def _encode(self, kind: ap.MessageType, payload: dict[str, Any], seq: int) -> bytes:
        return ap.encode_frame(ap.Frame(kind, payload, seq), "raw")

    def _dispatch(self, ws: ServerConnection, session: _Session, frame: ap.Frame) -> None:
        if frame.type is ap.MessageType.HELLO:
            ws.send(self._encode(ap.MessageType.HELLO, self.hello(), frame.seq))
        elif frame.type is ap.MessageType.EPISODE_START:
            self._end_episode(session)
            self._start_episode(session, frame.payload)
        elif frame.type is ap.MessageType.EPISODE_END:
            self._end_episode(session)
        elif frame.type is ap.MessageType.OBSERVATION:
            self.stats["observations"] += 1
            try:
                action = self._observe(session, frame.payload)
            except Exception as exc:
                log.exception("allenai server: observation failed")
                self.stats["errors"] += 1
                detail = f"observation_failed: {type(exc).__name__}: {exc}"[:4000]
                ws.send(self._encode(ap.MessageType.ERROR, {"error": detail}, frame.seq))
                return
            ws.send(self._encode(ap.MessageType.ACTION, action, frame.seq))
        elif frame.type is ap.MessageType.ERROR:
            log.error("allenai server: client reported an error: %s", frame.payload)
        # an ACTION from a client has no meaning here; ignored like their server ignores it

    def _start_episode(self, session: _Session, payload: dict[str, Any]) -> None:
        task = payload.get("task") if isinstance(payload.get("task"), dict) else {}
        seed = task.get("seed", payload.get("seed"))
        session.slot = next(self._slots)
        session.instruction = None
        session.seed = int(seed) if isinstance(seed, int) and not isinstance(seed, bool) else None
        session.fresh = True
        session.queue.clear()
        session.steps = 0
        self.stats["episodes"] += 1

    def _end_episode(self, session: _Session) -> None:
        slot, session.slot = session.slot, None
        session.queue.clear()
        if slot is not None and self.policy.slot_aware:
            with self._lock:
                self.policy.release([slot])

    def _observe(self, session: _Session, payload: dict[str, Any]) -> dict[str, Any]:
        obs = our_obs(payload)
        self._orient(obs)
        if session.slot is None:  # an observation without EPISODE_START starts one
            self._start_episode(session, {})
        if session.instruction is not None and obs["instruction"] != session.instruction:
            session.fresh = True  # a new subtask: reset and drop the old subtask's queued actions
            session.queue.clear()
        if not session.queue:
            session.queue = self._predict(session, obs)
        session.steps += 1
        return {"actions": session.queue.pop(0).astype(np.float32)}

    def _predict(self, session: _Session, obs: dict[str, Any]) -> list[np.ndarray]:
        policy, slot = self.policy, session.slot
        assert slot is not None
        with self._lock:
            if session.fresh or (not policy.slot_aware and self._last_slot != slot):
                seeds = [session.seed] if session.seed is not None else None
                reset_policy(policy, [obs["instruction"]], seeds, [slot])
                session.instruction, session.fresh = obs["instruction"], False
            self._last_slot = slot
            t0 = time.monotonic()
            chunk = predict_policy(policy, [obs], [slot])
            self.stats["predicts"] += 1
            log.debug("allenai server: predict %.1f ms", (time.monotonic() - t0) * 1000)
        actions = validate_chunk(chunk, batch_size=1, action_dim=chunk.space.dim)
        return list(actions[0])

    def _orient(self, obs: dict[str, Any]) -> None:
        """Flip columns when the client's view and the policy's differ (the two orientations are mirror images)."""
        want = getattr(self.policy, "image_orientation", "upright")
        if self.client_orientation is None or self.client_orientation == want:
            return
        obs["images"] = {k: np.ascontiguousarray(v[:, ::-1]) for k, v in obs["images"].items()}


def _health(connection: ServerConnection, request) -> Any:
    if request.path.split("?")[0] == "/health":
        resp = connection.respond(http.HTTPStatus.OK, json.dumps({"status": "ok"}) + "\n")
        del resp.headers["Content-Type"]
        resp.headers["Content-Type"] = "application/json"
        return resp
    return None
