"""Blocking client for openpi-protocol policy servers, with timeouts and reconnects.

A remote policy must never hang a run: every connect and every response has a deadline,
and every failure raises :class:`RemotePolicyError` with the server address and what went
wrong, which the rollout records as the episode's ``policy_error``.

* Connection lost (server restarted, network blip): reconnect with backoff and resend the
  request, up to ``max_retries`` times.  Inference requests are stateless in openpi, so a
  resend is safe.
* Response too slow: raise at once (no retry: a slow server stays slow) and drop the
  connection, because a late answer would otherwise be read as the reply to the *next*
  request.
* Text frame from the server: the server's traceback; raised as the error message.
"""

from __future__ import annotations

import http.client
import time
from typing import Any
from urllib.parse import urlparse

import websockets
from websockets.sync.client import ClientConnection, connect

from vla_eval.remote import protocol


class RemotePolicyError(RuntimeError):
    """The remote policy server is unreachable, too slow, or failed on a request."""


class PolicyServerLost(RemotePolicyError):
    """The connection is gone and reconnecting failed: the server process is down (or restarting)."""


class RemotePolicyClient:
    def __init__(
        self,
        uri: str,
        connect_timeout: float = 10.0,
        request_timeout: float = 30.0,
        max_retries: int = 2,
        retry_backoff: float = 0.5,
        api_key: str | None = None,
        max_frame_bytes: int | None = None,
    ):
        self.uri = uri if uri.startswith("ws") else f"ws://{uri}"
        self.connect_timeout = float(connect_timeout)
        self.request_timeout = float(request_timeout)
        self.max_retries = int(max_retries)
        self.retry_backoff = float(retry_backoff)
        self._headers = {"Authorization": f"Api-Key {api_key}"} if api_key else None
        self._ws: ClientConnection | None = None
        self._packer = protocol.Packer()
        self.max_frame_bytes = int(max_frame_bytes or protocol.MAX_FRAME_BYTES)
        self.metadata: dict[str, Any] = {}
        self.reconnects = 0

    # -- connection
    def connect(self) -> dict[str, Any]:
        """Open the websocket and read the metadata frame (both within ``connect_timeout``)."""
        self.close()
        try:
            ws = connect(
                self.uri,
                open_timeout=self.connect_timeout,
                compression=None,
                max_size=self.max_frame_bytes,
                additional_headers=self._headers,
                close_timeout=1.0,
            ).__enter__()  # long-lived connection: entered here, closed in close()
        except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
            raise RemotePolicyError(
                f"cannot connect to policy server {self.uri} within {self.connect_timeout:g}s: {exc}"
            ) from exc
        try:
            first = ws.recv(timeout=self.connect_timeout)
        except TimeoutError as exc:
            ws.close()
            raise RemotePolicyError(
                f"policy server {self.uri} sent no metadata frame within {self.connect_timeout:g}s"
            ) from exc
        except websockets.ConnectionClosed as exc:
            raise RemotePolicyError(
                f"policy server {self.uri} closed the connection before its metadata frame: {exc}"
            ) from exc
        if isinstance(first, str):
            ws.close()
            raise RemotePolicyError(f"policy server {self.uri} sent text instead of metadata: {first[:500]}")
        try:
            metadata = protocol.unpackb(first, self.max_frame_bytes)
        except protocol.ProtocolError as exc:
            ws.close()
            raise RemotePolicyError(f"policy server {self.uri} sent a malformed metadata frame: {exc}") from exc
        self._ws = ws
        self.metadata = metadata if isinstance(metadata, dict) else {}
        return self.metadata

    def close(self) -> None:
        if self._ws is not None:
            try:
                self._ws.close()
            except Exception:
                pass
            self._ws = None

    def health(self, timeout: float | None = None) -> bool:
        """``GET /healthz`` (openpi's health check); False if unreachable or not OK."""
        return http_ok(self.uri, "/healthz", timeout or self.connect_timeout)

    # -- requests
    def infer(self, obs: dict[str, Any]) -> dict[str, Any]:
        data = self._packer.pack(obs)
        attempt = 0
        while True:
            try:
                if self._ws is None:
                    self.connect()
                    if attempt:
                        self.reconnects += 1
                assert self._ws is not None
                self._ws.send(data)
                reply = self._ws.recv(timeout=self.request_timeout)
            except TimeoutError as exc:
                self.close()
                raise RemotePolicyError(
                    f"policy server {self.uri} did not answer within request_timeout={self.request_timeout:g}s"
                ) from exc
            except (websockets.ConnectionClosed, OSError, RemotePolicyError) as exc:
                self.close()
                if attempt >= self.max_retries:
                    raise PolicyServerLost(
                        f"policy server {self.uri} unreachable after {attempt + 1} attempt(s): {exc}"
                    ) from exc
                attempt += 1
                time.sleep(self.retry_backoff * attempt)
                continue
            if isinstance(reply, str):
                self.close()  # the server closes after an error frame
                raise RemotePolicyError(f"policy server {self.uri} failed on the request:\n{reply[-4000:]}")
            try:
                out = protocol.unpackb(reply, self.max_frame_bytes)
            except protocol.ProtocolError as exc:
                self.close()
                raise RemotePolicyError(f"policy server {self.uri} sent a malformed reply: {exc}") from exc
            if not isinstance(out, dict):
                raise RemotePolicyError(f"policy server {self.uri} answered a {type(out).__name__}, expected a map")
            return out

    def __enter__(self) -> "RemotePolicyClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def http_ok(ws_url: str, path: str, timeout: float) -> bool:
    """``GET path`` on a websocket server's host and port (its health probe): True only on 200."""
    u = urlparse(ws_url)
    try:
        conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port or 80, timeout=timeout)
        conn.request("GET", path)
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False
