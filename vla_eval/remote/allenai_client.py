"""Blocking client for allenai model servers (their ``vla_eval/connection.py`` ``Connection``, synchronously).

Every wait has a deadline and every failure is a :class:`~vla_eval.remote.client.RemotePolicyError`
subclass naming the server, so the rollout records it as the episode's ``policy_error``:

* :class:`AllenaiServerError`: the server answered an ERROR frame (their model raised).
* :class:`AllenaiReplyError`: the server sent something that is not allenai's protocol.
* :class:`AllenaiServerLost`: the connection is gone (or never opened) and ``max_retries`` reconnects
  failed.
* a plain :class:`RemotePolicyError`: no answer within ``request_timeout`` (not retried: a slow
  server stays slow, and a late ACTION would be read as the answer to the next observation).

A reconnect opens a new server session, whose per-episode state (their chunk buffer) starts
empty, so the client repeats HELLO and the current EPISODE_START before resending the
observation: the server never sees an observation on a session without an episode.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import websockets
from websockets.sync.client import ClientConnection, connect

from vla_eval.remote import allenai_protocol as ap
from vla_eval.remote.client import PolicyServerLost, RemotePolicyError


class AllenaiServerError(RemotePolicyError):
    """The model server reported a failure in an ERROR frame."""


class AllenaiReplyError(RemotePolicyError):
    """The model server sent a frame that does not follow allenai's protocol."""


class AllenaiConnectError(RemotePolicyError):
    """The websocket to the model server could not be opened."""


class AllenaiServerLost(PolicyServerLost):
    """The model server is unreachable and reconnecting failed."""


class AllenaiClient:
    def __init__(
        self,
        url: str,
        connect_timeout: float = 10.0,
        request_timeout: float = 30.0,
        max_retries: int = 2,
        retry_backoff: float = 0.5,
        image_format: ap.ImageFormat = "png",
        max_frame_bytes: int | None = None,
    ):
        self.url = url if url.startswith("ws") else f"ws://{url}"
        self.connect_timeout = float(connect_timeout)
        self.request_timeout = float(request_timeout)
        self.max_retries = int(max_retries)
        self.retry_backoff = float(retry_backoff)
        self.image_format = image_format
        self.max_frame_bytes = max_frame_bytes
        self.server_info: dict[str, Any] = {}
        self.reconnects = 0
        self._ws: ClientConnection | None = None
        self._seq = itertools.count(1)
        self._episode: dict[str, Any] | None = None

    # -- connection
    def connect(self) -> dict[str, Any]:
        """Open the websocket and exchange HELLO (both within ``connect_timeout``); returns the server's HELLO."""
        self.close()
        try:
            ws = connect(
                self.url,
                open_timeout=self.connect_timeout,
                compression=None,
                max_size=self.max_frame_bytes or ap.protocol.MAX_FRAME_BYTES,
                close_timeout=1.0,
                ping_interval=None,
            )
        except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
            raise AllenaiConnectError(
                f"cannot connect to allenai model server {self.url} within {self.connect_timeout:g}s: {exc}"
            ) from exc
        self._ws = ws
        try:
            seq = self._send(ap.MessageType.HELLO, ap.hello_payload())
            reply = self._recv(self.connect_timeout, "its HELLO")
        except BaseException:
            self.close()
            raise
        if reply.type is not ap.MessageType.HELLO:
            self.close()
            raise AllenaiReplyError(
                f"allenai model server {self.url} answered HELLO (seq {seq}) with {reply.type.value}"
            )
        version = reply.payload.get("protocol_version")
        if version != ap.PROTOCOL_VERSION:
            self.close()
            raise AllenaiReplyError(
                f"allenai model server {self.url} speaks protocol version {version!r}; "
                f"this client speaks {ap.PROTOCOL_VERSION}"
            )
        self.server_info = reply.payload
        return self.server_info

    def close(self) -> None:
        if self._ws is not None:
            try:
                self._ws.close()
            except Exception:
                pass
            self._ws = None

    def health(self, timeout: float | None = None) -> bool:
        """``GET /health`` (their readiness probe); False if unreachable or not 200."""
        from vla_eval.remote.client import http_ok

        return http_ok(self.url, "/health", timeout or self.connect_timeout)

    # -- frames
    def _send(self, kind: ap.MessageType, payload: dict[str, Any]) -> int:
        assert self._ws is not None
        seq = next(self._seq)
        self._ws.send(ap.encode_frame(ap.Frame(kind, payload, seq), self.image_format))
        return seq

    def _recv(self, timeout: float, what: str) -> ap.Frame:
        assert self._ws is not None
        try:
            raw = self._ws.recv(timeout=timeout)
        except TimeoutError as exc:
            self.close()
            raise RemotePolicyError(f"allenai model server {self.url} sent no {what} within {timeout:g}s") from exc
        try:
            return ap.decode_frame(raw, self.max_frame_bytes)
        except ap.AllenaiProtocolError as exc:
            self.close()
            raise AllenaiReplyError(
                f"allenai model server {self.url} sent a malformed frame instead of {what}: {exc}"
            ) from exc

    def _with_reconnect(self, attempt_fn):
        attempt = 0
        while True:
            try:
                if self._ws is None:
                    self.connect()
                    if attempt:
                        self.reconnects += 1
                    if self._episode is not None:
                        self._send(ap.MessageType.EPISODE_START, self._episode)
                return attempt_fn()
            except (websockets.ConnectionClosed, OSError, AllenaiConnectError) as exc:
                self.close()
                if attempt >= self.max_retries:
                    raise AllenaiServerLost(
                        f"allenai model server {self.url} unreachable after {attempt + 1} attempt(s): {exc}"
                    ) from exc
            attempt += 1
            time.sleep(self.retry_backoff * attempt)

    # -- episode lifecycle
    def start_episode(self, payload: dict[str, Any]) -> None:
        """EPISODE_START; their server answers nothing (a failure arrives as ERROR before the next ACTION)."""
        self._episode = None  # a reconnect inside this call must not send the start twice
        self._with_reconnect(lambda: self._send(ap.MessageType.EPISODE_START, payload))
        self._episode = payload

    def end_episode(self, result: dict[str, Any]) -> None:
        """EPISODE_END, best effort: a server that is gone has no episode to end."""
        self._episode = None
        if self._ws is None:
            return
        try:
            self._send(ap.MessageType.EPISODE_END, result)
        except (websockets.ConnectionClosed, OSError):
            self.close()

    def act(self, obs: dict[str, Any]) -> dict[str, Any]:
        """One OBSERVATION, its ACTION payload back (matched by ``seq``)."""

        def once() -> dict[str, Any]:
            seq = self._send(ap.MessageType.OBSERVATION, obs)
            deadline = time.monotonic() + self.request_timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.close()
                    raise RemotePolicyError(
                        f"allenai model server {self.url} did not answer observation {seq} "
                        f"within request_timeout={self.request_timeout:g}s"
                    )
                frame = self._recv(left, f"an ACTION for observation {seq}")
                if frame.type is ap.MessageType.ERROR:
                    detail = frame.payload.get("error", frame.payload)
                    raise AllenaiServerError(
                        f"allenai model server {self.url} failed (frame seq {frame.seq}): {detail}"[:4000]
                    )
                if frame.type is ap.MessageType.ACTION and frame.seq == seq:
                    return frame.payload
                # a late ACTION of an earlier observation or an unsolicited frame: not this answer

        return self._with_reconnect(once)

    def __enter__(self) -> AllenaiClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
