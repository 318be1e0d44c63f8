"""Serve any policy over the openpi websocket protocol.

Per connection: send a metadata frame, then answer every request frame (an observation)
with exactly one response frame ``{"actions": (T, D) array, "server_timing": {...},
"extras": {...}}``.  ``GET /healthz`` answers ``OK``.  On a policy exception the server
sends the traceback as a *text* frame and closes the connection, as openpi's server does,
so an openpi client raises instead of waiting.

Policies are not thread-safe, so inference is serialised with a lock; connections are
handled in threads (``websockets.sync.server``), which keeps the serving code free of
asyncio and lets a blocking PyTorch call run without stalling other handshakes.
"""

from __future__ import annotations

import http
import logging
import threading
import time
import traceback
from typing import Any

import numpy as np
import websockets
from websockets.sync.server import Server, ServerConnection, serve

from vla_eval.policies.base import Policy, validate_chunk
from vla_eval.remote import protocol
from vla_eval.remote.obs_format import decode_obs

log = logging.getLogger(__name__)


def _health(connection: ServerConnection, request) -> Any:
    if request.path == "/healthz":
        return connection.respond(http.HTTPStatus.OK, "OK\n")
    return None


class PolicyServer:
    """Expose ``policy`` on ``ws://host:port`` (loopback by default: a policy server runs models
    on whatever it is sent, so exposing it beyond the machine must be a deliberate choice)."""

    def __init__(self, policy: Policy, host: str = "127.0.0.1", port: int = 8000, metadata: dict[str, Any] | None = None,
                 max_frame_bytes: int | None = None):
        self.policy = policy
        self.max_frame_bytes = int(max_frame_bytes or protocol.MAX_FRAME_BYTES)
        self.host = host
        self.port = port
        space = getattr(policy, "action_space", None)
        self.metadata = {
            "server": "vla-eval",
            "policy": policy.describe(),
            "action_space": dict(space.__dict__) if space is not None else None,
            # clients must send images in this orientation (vla_eval.envs.orientation); RemotePolicy checks it
            "image_orientation": getattr(policy, "image_orientation", "upright") if getattr(policy, "needs_images", True) else None,
            **(metadata or {}),
        }
        self._lock = threading.Lock()
        self._server: Server | None = None
        self._ready = threading.Event()

    # -- lifecycle
    def start(self) -> "PolicyServer":
        """Bind now (so ``port=0`` resolves to a real port) without blocking."""
        self._server = serve(
            self._handle, self.host, self.port, compression=None, max_size=self.max_frame_bytes, process_request=_health
        )
        self.port = self._server.socket.getsockname()[1]
        self._ready.set()
        return self

    def serve_forever(self) -> None:
        if self._server is None:
            self.start()
        assert self._server is not None
        self._server.serve_forever()

    def start_in_thread(self) -> threading.Thread:
        self.start()
        t = threading.Thread(target=self.serve_forever, name="vla-eval-policy-server", daemon=True)
        t.start()
        return t

    def shutdown(self) -> None:
        if self._server is not None:
            self._server.shutdown()

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    # -- protocol
    def infer(self, msg: dict[str, Any], session: dict[str, Any]) -> dict[str, Any]:
        obs = decode_obs(msg)
        instruction = obs.get("instruction", "")
        with self._lock:
            # openpi clients never send a reset; a new instruction (or an explicit flag) starts an episode
            if msg.get("reset") or session.get("instruction") != instruction:
                self.policy.reset([instruction])
                session["instruction"] = instruction
            t = time.monotonic()
            chunk = self.policy.predict([obs])
            infer_s = time.monotonic() - t
        actions = validate_chunk(chunk, batch_size=1, action_dim=chunk.space.dim)[0]
        reply: dict[str, Any] = {"actions": np.asarray(actions, dtype=np.float64), "server_timing": {"infer_ms": infer_s * 1000.0}}
        if chunk.extras and chunk.extras[0]:
            reply["extras"] = protocol.to_wire(chunk.extras[0])
        reply["action_space"] = dict(chunk.space.__dict__)
        return reply

    def _handle(self, ws: ServerConnection) -> None:
        packer = protocol.Packer()
        ws.send(packer.pack(self.metadata))
        session: dict[str, Any] = {}
        while True:
            try:
                raw = ws.recv()
            except websockets.ConnectionClosed:
                return
            try:
                if isinstance(raw, str):
                    raise protocol.ProtocolError("expected a binary msgpack frame, got text")
                msg = protocol.unpackb(raw, self.max_frame_bytes)
                if not isinstance(msg, dict):
                    raise protocol.ProtocolError(f"expected a map, got {type(msg).__name__}")
            except protocol.ProtocolError as exc:
                # a malformed frame is the client's fault: answer with an error frame, keep serving
                log.warning("policy server: rejected a malformed frame: %s", exc)
                try:
                    ws.send(f"rejected frame: {exc}")
                except websockets.ConnectionClosed:
                    return
                continue
            try:
                reply = self.infer(msg, session)
                ws.send(packer.pack(reply))
            except websockets.ConnectionClosed:
                return
            except Exception:
                log.exception("policy server: request failed")
                try:
                    ws.send(traceback.format_exc())
                    ws.close(code=1011, reason="Internal server error. Traceback included in previous frame.")
                except websockets.ConnectionClosed:
                    pass
                return
