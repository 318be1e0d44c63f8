"""Serve any policy over the openpi websocket protocol, batching requests across connections.

Per connection: send a metadata frame, then answer every request frame (an observation)
with exactly one response frame ``{"actions": (T, D) array, "server_timing": {...},
"action_space": {...}, "extras": {...}}``.  ``GET /healthz`` answers ``OK``.  On a failed
request the server sends the traceback as a *text* frame and closes that connection, as
openpi's server does, so an openpi client raises instead of waiting.

**Batching.**  On a GPU the cost of an evaluation is inference, and a model answers a
batch of B observations in about the time of one; so requests from all connections go
into one queue, and a single batcher thread answers them with one ``predict`` per batch.
A batch closes when it holds ``max_batch`` requests, when every open connection has a
request in it (nobody else can add one, so waiting would only add latency: one client
is never delayed), or ``max_wait_ms`` after its first request arrived or the previous
batch ended, whichever is later.  Each reply carries
``server_timing``: ``batch_size``, ``queue_ms`` (arrival to batch start), ``reset_ms`` and
``infer_ms`` (the batch's ``predict``); openpi clients ignore keys they do not know.

**Per-episode state.**  Each connection is one session; each session's current episode is
one policy *slot* (see :class:`~vla_eval.policies.base.Policy`).  A new episode starts on a
connection's first request, on ``reset: true`` (vla-eval clients) and when the instruction
changes (openpi clients never send a reset); the old slot is released.  A slot-aware
policy is told the slot of every row, so sessions never reset or read each other's state.
A policy that is not slot-aware is reset with the batch's instructions whenever the rows
of a batch differ from the previous call's, which is exact for stateless policies and for
a single client (and is what the unbatched server did).  A policy that keeps state between
calls but is not slot-aware declares ``stateful = True``; it is served to one session at a
time (the others' requests wait until that connection closes), because resetting it for
each session in turn would silently restart the other session's episode.

**Requests are checked before batching.**  Each observation is checked against the policy's
contract (camera images when it ``needs_images``: numeric ``H x W [x C]`` arrays; numeric
state) and refused alone, on its own connection, with a text frame.  Only requests whose
arrays have the same shapes and dtypes share a ``predict``: a 3x3 image is answered (or
fails) in a batch of its own instead of failing the 224x224 frames it would be stacked with.

**Limits.**  Requests held by the server (their frames and decoded arrays) may use at most
``max_inflight_bytes`` in all; one that does not fit is refused alone (a text frame; the
connection stays open).  A connection that sends no complete request for ``idle_timeout_s``
is closed, as is any connection beyond ``max_connections``, so half-open or slow clients
cannot hold threads and memory for ever.

**Faults.**  Connections are handled in threads (``websockets.sync.server``) and never touch
the policy; only the batcher thread does, so the policy needs no locking and a blocking
PyTorch call never stalls other handshakes.  A client that disconnects while its request
is in a batch loses only its own reply.  A policy exception (or malformed output) fails the
requests of that batch only; later batches are served as usual.
"""

from __future__ import annotations

import http
import itertools
import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Hashable

import numpy as np
import websockets
from websockets.sync.server import Server, ServerConnection, serve

from vla_eval.actions.space import validate_chunk
from vla_eval.adapter import Policy, predict_policy, reset_policy
from vla_eval.remote import protocol
from vla_eval.remote.obs_format import decode_obs

log = logging.getLogger(__name__)

CONTROL_KEYS = ("reset", "seed")
"""Request keys that steer the session rather than describe the observation."""

DEFAULT_INFLIGHT_BYTES = 1 << 30
DEFAULT_IDLE_TIMEOUT_S = 300.0
DEFAULT_MAX_CONNECTIONS = 256


def _health(connection: ServerConnection, request) -> Any:
    if request.path == "/healthz":
        return connection.respond(http.HTTPStatus.OK, "OK\n")
    return None


@dataclass
class _Session:
    id: int
    slot: Hashable | None = None
    instruction: str | None = None


@dataclass
class _Request:
    session: _Session
    slot: Hashable
    obs: dict[str, Any]
    instruction: str
    new_episode: bool
    seed: int | None
    signature: tuple = ()
    t_in: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    reply: dict[str, Any] | None = None
    error: str | None = None

    def fail(self, text: str) -> None:
        self.error = text
        self.done.set()


class PolicyServer:
    """Expose ``policy`` on ``ws://host:port`` (loopback by default: a policy server runs models
    on whatever it is sent, so exposing it beyond the machine must be a deliberate choice)."""

    def __init__(
        self,
        policy: Policy,
        host: str = "127.0.0.1",
        port: int = 8000,
        metadata: dict[str, Any] | None = None,
        max_batch: int = 16,
        max_wait_ms: float = 5.0,
        max_frame_bytes: int | None = None,
        max_inflight_bytes: int | None = None,
        idle_timeout_s: float | None = DEFAULT_IDLE_TIMEOUT_S,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self.policy = policy
        self.max_frame_bytes = int(max_frame_bytes or protocol.MAX_FRAME_BYTES)
        # a request holds its frame and then its decoded arrays: charged twice its frame size
        self.max_inflight_bytes = int(max_inflight_bytes or max(DEFAULT_INFLIGHT_BYTES, 2 * self.max_frame_bytes))
        if idle_timeout_s is not None and not idle_timeout_s > 0:
            raise ValueError(f"idle_timeout_s must be > 0 or None, got {idle_timeout_s}")
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {max_connections}")
        self.idle_timeout_s = idle_timeout_s
        self.max_connections = int(max_connections)
        self.exclusive = bool(getattr(policy, "stateful", False)) and not policy.slot_aware
        self.host = host
        self.port = port
        self.max_batch = int(max_batch)
        self.max_wait_s = float(max_wait_ms) / 1000.0
        space = getattr(policy, "action_space", None)
        self.metadata = {
            "server": "vla-eval",
            "policy": policy.describe(),
            "action_space": dict(space.__dict__) if space is not None else None,
            # clients must send images in this orientation (vla_eval.sims.orientation); RemotePolicy checks it
            "image_orientation": getattr(policy, "image_orientation", "upright")
            if getattr(policy, "needs_images", True)
            else None,
            "batching": {"max_batch": self.max_batch, "max_wait_ms": float(max_wait_ms)},
            "sessions": "one at a time" if self.exclusive else "batched",
            **(metadata or {}),
        }
        self._server: Server | None = None
        self._cond = threading.Condition()
        self._queue: list[_Request] = []
        self._releases: list[Hashable] = []
        self._sessions: dict[int, _Session] = {}
        self._ids = itertools.count(1)
        self._slots = itertools.count(1)
        self._stopping = False
        self._batcher: threading.Thread | None = None
        self._last_rows: list[Hashable] | None = None
        self._free_since = 0.0
        self._warned_unaware = False
        self._warned_waiting = False
        self._owner: int | None = None
        self._inflight = 0
        self.stats = {"batches": 0, "requests": 0, "failed_batches": 0}

    # -- lifecycle
    def start(self) -> "PolicyServer":
        """Bind now (so ``port=0`` resolves to a real port) and start the batcher, without blocking."""
        # max_queue: a client sends one request and waits; more frames buffered per connection are only memory
        self._server = serve(
            self._handle,
            self.host,
            self.port,
            compression=None,
            max_size=self.max_frame_bytes,
            process_request=_health,
            max_queue=2,
        )
        self.port = self._server.socket.getsockname()[1]
        self._batcher = threading.Thread(target=self._batch_loop, name="vla-eval-batcher", daemon=True)
        self._batcher.start()
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
        with self._cond:
            self._stopping = True
            pending, self._queue = self._queue, []
            self._cond.notify_all()
        for req in pending:
            req.fail("policy server is shutting down")
        if self._server is not None:
            self._server.shutdown()
        if self._batcher is not None:
            self._batcher.join(timeout=10)

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def mean_batch_size(self) -> float:
        return self.stats["requests"] / self.stats["batches"] if self.stats["batches"] else 0.0

    # -- connections (one thread each; never touch the policy)
    def _handle(self, ws: ServerConnection) -> None:
        packer = protocol.Packer()
        session = _Session(next(self._ids))
        with self._cond:
            full = len(self._sessions) >= self.max_connections
            if not full:
                self._sessions[session.id] = session
        if full:
            log.warning("policy server: refused a connection, %d are open (max_connections)", self.max_connections)
            _close(ws, 1013, f"server busy: {self.max_connections} connections open (max_connections)")
            return
        try:
            ws.send(packer.pack(self.metadata))
            while True:
                try:
                    raw = ws.recv(timeout=self.idle_timeout_s)
                except TimeoutError:
                    log.info("policy server: closing session %d, idle for %g s", session.id, self.idle_timeout_s)
                    _close(ws, 1001, f"idle for {self.idle_timeout_s:g} s (idle_timeout_s)")
                    return
                charge = 2 * len(raw)
                if not self._reserve(charge):
                    del raw
                    log.warning(
                        "policy server: refused a %d-byte frame, %d bytes in flight", charge // 2, self._inflight
                    )
                    ws.send(
                        f"rejected frame: server busy: a {charge // 2}-byte frame would put the requests in "
                        f"flight over {self.max_inflight_bytes} bytes (max_inflight_bytes); retry later"
                    )
                    continue
                try:
                    if not self._serve_one(ws, packer, session, raw):
                        return
                finally:
                    del raw
                    self._unreserve(charge)
        except websockets.ConnectionClosed:
            return
        finally:
            with self._cond:
                self._sessions.pop(session.id, None)
                if session.slot is not None:
                    self._releases.append(session.slot)
                if self._owner == session.id:
                    self._owner = None
                self._cond.notify_all()

    def _serve_one(self, ws: ServerConnection, packer: Any, session: _Session, raw: Any) -> bool:
        """Answer one request frame; False when the connection must close (a failed request, as openpi does)."""
        try:
            req = self._request(session, raw)
        except protocol.ProtocolError as exc:
            # a malformed frame or an observation the policy cannot take is this client's fault alone:
            # answer with an error frame and keep serving the connection
            log.warning("policy server: rejected a request: %s", exc)
            ws.send(f"rejected frame: {exc}")
            return True
        except Exception:
            log.exception("policy server: bad request")
            self._send_error(ws, traceback.format_exc())
            return False
        self._submit(req)
        req.done.wait()
        if req.error is not None:
            self._send_error(ws, req.error)
            return False
        ws.send(packer.pack(req.reply))
        return True

    def _reserve(self, nbytes: int) -> bool:
        with self._cond:
            if self._inflight + nbytes > self.max_inflight_bytes:
                return False
            self._inflight += nbytes
            return True

    def _unreserve(self, nbytes: int) -> None:
        with self._cond:
            self._inflight -= nbytes

    @staticmethod
    def _send_error(ws: ServerConnection, text: str) -> None:
        try:
            ws.send(text)
            ws.close(code=1011, reason="Internal server error. Traceback included in previous frame.")
        except websockets.ConnectionClosed:
            pass

    def _request(self, session: _Session, raw: Any) -> _Request:
        if isinstance(raw, str):
            raise protocol.ProtocolError("expected a binary msgpack frame, got text")
        msg = protocol.unpackb(raw, self.max_frame_bytes)
        if not isinstance(msg, dict):
            raise protocol.ProtocolError(f"expected a map, got {type(msg).__name__}")
        seed = msg.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"request field 'seed' must be an integer, got {seed!r}")
        obs = decode_obs({k: v for k, v in msg.items() if k not in CONTROL_KEYS})
        signature = self._check_obs(obs)
        instruction = str(obs.get("instruction", ""))
        new_episode = bool(msg.get("reset")) or session.slot is None or session.instruction != instruction
        if new_episode:
            with self._cond:
                if session.slot is not None:
                    self._releases.append(session.slot)
            session.slot = next(self._slots)
            session.instruction = instruction
        return _Request(
            session, session.slot, obs, instruction, new_episode, None if seed is None else int(seed), signature
        )

    def _check_obs(self, obs: dict[str, Any]) -> tuple:
        """Refuse an observation this policy cannot take; returns the shapes that decide whom it may batch with."""
        images = obs.get("images")
        if not images and getattr(self.policy, "needs_images", True):
            raise protocol.ProtocolError(f"policy {self.policy.name!r} needs camera images: the observation has none")
        if images is not None:
            if not isinstance(images, dict):
                raise protocol.ProtocolError("'images' must be a map of camera name to an H x W x C array")
            for cam, img in images.items():
                if (
                    not isinstance(img, np.ndarray)
                    or img.dtype.kind not in "biuf"
                    or img.ndim not in (2, 3)
                    or 0 in img.shape
                ):
                    got = f"shape {img.shape} dtype {img.dtype}" if isinstance(img, np.ndarray) else type(img).__name__
                    raise protocol.ProtocolError(
                        f"image {str(cam)[:80]!r}: expected a numeric H x W x C array, got {got}"
                    )
        state = obs.get("state")
        if state is not None:
            if not isinstance(state, dict):
                raise protocol.ProtocolError(
                    f"'state' must be a map of name to numeric array, got {type(state).__name__}"
                )
            for key, value in state.items():
                arr = value if isinstance(value, np.ndarray) else None
                if arr is None:
                    try:
                        arr = np.asarray(value)
                    except (ValueError, TypeError):
                        arr = np.asarray(None)
                if arr.dtype.kind not in "biuf":
                    raise protocol.ProtocolError(
                        f"state {str(key)[:80]!r}: expected numbers, got {type(value).__name__}"
                    )
        return _signature(obs)

    def _submit(self, req: _Request) -> None:
        with self._cond:
            if self._stopping:
                req.fail("policy server is shutting down")
                return
            self._queue.append(req)
            self._cond.notify_all()

    # -- the batcher (the only thread that calls the policy)
    def _eligible(self) -> list[_Request]:
        """Queued requests that may be answered now: all of them, or the owning session's for a stateful policy."""
        if not self.exclusive or not self._queue:
            return self._queue
        if self._owner is None or self._owner not in self._sessions:
            self._owner = self._queue[0].session.id
        mine = [r for r in self._queue if r.session.id == self._owner]
        if len(mine) < len(self._queue) and not self._warned_waiting:
            self._warned_waiting = True
            log.warning(
                "policy %s keeps state (stateful = True) and is not slot-aware: sessions are served one at a "
                "time, others wait until session %d disconnects",
                self.policy.name,
                self._owner,
            )
        return mine

    def _gather(self) -> tuple[list[_Request], list[Hashable]] | None:
        with self._cond:
            while not self._stopping and not self._eligible():
                self._cond.wait()
            if self._stopping:
                return None
            # The window opens when the batcher is free, not when the oldest request arrived: a
            # request that queued behind the previous batch would otherwise close its batch at
            # once, and clients that were just answered (back within an env step) would lock
            # into alternating batches of one.
            deadline = max(self._eligible()[0].t_in, self._free_since) + self.max_wait_s
            want = 1 if self.exclusive else min(self.max_batch, len(self._sessions))
            while len(self._queue) < want:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopping:
                    break
                self._cond.wait(remaining)
            eligible = self._eligible()
            if not eligible:  # the owner left while the window was open
                return [], []
            head = eligible[0].signature
            batch = [r for r in eligible if r.signature == head][: self.max_batch]
            taken = {id(r) for r in batch}
            self._queue = [r for r in self._queue if id(r) not in taken]
            releases, self._releases = self._releases, []
        return batch, releases

    def _batch_loop(self) -> None:
        while True:
            got = self._gather()
            if got is None:
                return
            batch, releases = got
            if not batch and not releases:
                continue
            try:
                self._run_batch(batch, releases)
            except Exception:  # never lose the batcher: fail this batch, serve the next
                log.exception("policy server: batch failed")
                text = traceback.format_exc()
                for req in batch:
                    if not req.done.is_set():
                        req.fail(text)
            self._free_since = time.monotonic()
            del got, batch, releases  # the answered observations must not stay alive while the queue is empty

    def _run_batch(self, batch: list[_Request], releases: list[Hashable]) -> None:
        policy = self.policy
        t0 = time.monotonic()
        if releases and policy.slot_aware:
            policy.release(releases)
        live = self._reset(batch)
        t1 = time.monotonic()
        if not live:
            return
        try:
            chunk = predict_policy(policy, [r.obs for r in live], [r.slot for r in live])
            actions = validate_chunk(chunk, batch_size=len(live), action_dim=chunk.space.dim, per_row=True)
        except Exception:
            log.exception("policy server: predict failed on a batch of %d", len(live))
            self.stats["failed_batches"] += 1
            self._last_rows = None
            text = traceback.format_exc()
            for req in live:
                req.fail(text)
            return
        t2 = time.monotonic()
        self.stats["batches"] += 1
        self.stats["requests"] += len(live)
        space = dict(chunk.space.__dict__)
        for i, req in enumerate(live):
            reply: dict[str, Any] = {
                "actions": np.asarray(actions[i], dtype=np.float64),
                "server_timing": {
                    "infer_ms": (t2 - t1) * 1000.0,
                    "reset_ms": (t1 - t0) * 1000.0,
                    "queue_ms": max(0.0, (t0 - req.t_in) * 1000.0),
                    "batch_size": len(live),
                },
                "action_space": space,
            }
            if chunk.extras and i < len(chunk.extras) and chunk.extras[i]:
                reply["extras"] = protocol.to_wire(chunk.extras[i])
            req.reply = reply
            req.done.set()

    def _reset(self, batch: list[_Request]) -> list[_Request]:
        """Start the batch's new episodes; returns the requests still to be answered."""
        policy = self.policy
        if policy.slot_aware:
            fresh = [r for r in batch if r.new_episode]
            if not fresh:
                return batch
            seeds = [r.seed for r in fresh]
            try:
                reset_policy(
                    policy,
                    [r.instruction for r in fresh],
                    seeds if any(s is not None for s in seeds) else None,
                    [r.slot for r in fresh],
                )
            except Exception:
                log.exception("policy server: reset failed")
                text = traceback.format_exc()
                for req in fresh:
                    req.fail(text)
                return [r for r in batch if not r.new_episode]
            return batch
        rows = [r.slot for r in batch]
        if rows == self._last_rows and not any(r.new_episode for r in batch):
            return batch
        if not self._warned_unaware and len({r.session.id for r in batch}) > 1:
            self._warned_unaware = True
            log.warning(
                "policy %s is not slot-aware: it is reset for every new mix of sessions in a batch, which is "
                "only correct if it keeps no state between calls (else declare stateful = True)",
                policy.name,
            )
        seeds = [r.seed for r in batch]
        try:
            policy.reset([r.instruction for r in batch], seeds if any(s is not None for s in seeds) else None)
        except Exception:
            log.exception("policy server: reset failed")
            self._last_rows = None
            text = traceback.format_exc()
            for req in batch:
                req.fail(text)
            return []
        self._last_rows = rows
        return batch


def _close(ws: ServerConnection, code: int, reason: str) -> None:
    try:
        ws.close(code=code, reason=reason)
    except websockets.ConnectionClosed:
        pass


def _signature(obs: dict[str, Any]) -> tuple:
    """Where each array sits in the observation, with its shape and dtype: requests batch only with equals."""
    out: list[tuple] = []
    pending: list[tuple[tuple, Any]] = [((), obs)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, dict):
            pending.extend(((*path, str(k)), v) for k, v in value.items())
        elif isinstance(value, np.ndarray):
            out.append((path, value.shape, value.dtype.str))
    return tuple(sorted(out))
