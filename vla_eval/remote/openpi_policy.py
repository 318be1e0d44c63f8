"""A policy that runs elsewhere: any openpi-protocol server (pi0 / pi0-FAST / pi05, or ``vla-eval serve``).

The simulation stays on this machine and inference goes to a GPU box.  One request per
env per call (the openpi protocol is one request, one reply per connection); the reply's
``actions`` ``(T, D)`` become one row of the chunk, in the action space the config states
(openpi LIBERO servers emit LIBERO's native space: normalised delta EEF, axis-angle,
-1 open / +1 close) or, with ``space_from_server``, the one each reply names.

Each slot (each env of a ``--batch-envs`` batch) has its own connection, so a server
keeps each env's episode state apart, and the requests of one call are in flight
together, so a batching server (``vla-eval serve``) answers them in one batch.

Failures (server down, too slow, server-side exception) raise
:class:`~vla_eval.remote.client.RemotePolicyError` from :meth:`predict`; the rollout
records it as ``policy_error`` and moves on.  With ``server_lost: retry_episode`` (what
``vla-eval run --policy-server auto`` uses, since it restarts a dead server) a lost
server raises :class:`~vla_eval.errors.RetryEpisode` instead: the episode's state died
with the server, so it is rerun, not recorded.  Nothing here can block forever.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vla_eval.actions.space import ActionChunk, ActionSpace
from vla_eval.adapter import Policy, SlotStates
from vla_eval.errors import ConfigError, RetryEpisode
from vla_eval.jsonsafe import json_safe
from vla_eval.policies._hf import model_signature, validate_config
from vla_eval.remote.obs_format import ObsFormat, encode_obs


class RemoteConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    uri: str | None = Field(default=None, description="full ws:// URI; overrides host/port")
    api_key_env: str | None = Field(default=None, description="name of the environment variable holding an API key")
    connect_timeout: float = Field(default=10.0, gt=0)
    request_timeout: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=2, ge=0)
    check_health: bool = Field(default=True, description="GET /healthz once before the first request")
    image_orientation: Literal["upright", "libero_rot180"] = Field(
        default="upright",
        description="view the served checkpoint was trained on (openpi LIBERO servers: libero_rot180)",
    )
    obs: ObsFormat = ObsFormat()
    send_reset: bool = Field(
        default=False,
        description="add reset=True (and the episode seed) to an episode's first request (vla-eval servers)",
    )
    send_privileged: bool = Field(
        default=False, description="send the simulator's privileged state (serving a scripted expert)"
    )
    space_from_server: bool = Field(
        default=False, description="take the action space from each reply's action_space (vla-eval servers)"
    )
    server_lost: Literal["policy_error", "retry_episode"] = Field(
        default="policy_error",
        description="a lost server: record policy_error, or rerun the episode (a supervised server)",
    )
    wait_for_server_s: float = Field(default=0.0, ge=0, description="poll /healthz this long before the first request")
    ray_server_actor: str | None = Field(
        default=None, description="look the URI up from this named Ray actor (a server that may move)"
    )
    actions_key: str = "actions"
    max_chunk: int | None = Field(default=None, ge=1, description="keep at most this many actions of each reply")
    action_dim: int = Field(default=7, ge=1)
    rotation: Literal["axis_angle", "euler_xyz", "quat_wxyz", "quat_xyzw", "none"] = "axis_angle"
    position_units: Literal["normalized", "meters"] = "normalized"
    gripper: Literal["close_positive", "open_positive", "open_01", "close_01"] = "close_positive"
    needs_images: bool = True


class RemotePolicy(Policy):
    name = "remote"
    slot_aware = True

    def __init__(self, **kwargs: Any):
        from vla_eval.remote.client import RemotePolicyClient

        cfg: RemoteConfig = validate_config(RemoteConfig, kwargs, "remote")  # type: ignore[assignment]
        self.cfg = cfg
        self.image_orientation = cfg.image_orientation
        self.action_space = ActionSpace(
            kind="delta_eef",
            dim=cfg.action_dim,
            rotation=cfg.rotation,
            position_units=cfg.position_units,
            gripper=cfg.gripper,
        )
        self.needs_images = cfg.needs_images
        self.needs_privileged = cfg.send_privileged
        self.needs_depth = cfg.obs.send_depth
        if cfg.obs.kind == "openpi_libero":  # the vla_eval wire format sends every camera
            self.cameras_needed = tuple(c for c in (cfg.obs.image_camera, cfg.obs.wrist_camera) if c)
        api_key = None
        if cfg.api_key_env:
            api_key = os.environ.get(cfg.api_key_env)
            if api_key is None:
                raise ConfigError(f"remote: environment variable {cfg.api_key_env!r} (api_key_env) is not set")
        uri = cfg.uri or f"ws://{cfg.host}:{cfg.port}"

        self._uri = uri

        def new_client() -> RemotePolicyClient:
            return RemotePolicyClient(
                self._uri,
                connect_timeout=cfg.connect_timeout,
                request_timeout=cfg.request_timeout,
                max_retries=cfg.max_retries,
                api_key=api_key,
            )

        self._new_client = new_client
        self.client = new_client()  # the first slot's connection; its metadata describes the server
        self._clients: dict[Any, RemotePolicyClient] = {}
        self._episodes: SlotStates[_Episode] = SlotStates(lambda instruction, seed: _Episode(instruction, seed))
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = 0
        self._checked = False

    def reset(self, instructions: list[str], seeds: list[int] | None = None, slots=None) -> None:
        self._episodes.reset(instructions, seeds, slots)

    def release(self, slots) -> None:
        self._episodes.release(slots)
        for slot in slots:
            client = self._clients.pop(slot, None)
            if client is not None and client is not self.client:
                client.close()

    def _client(self, slot: Any):
        if slot not in self._clients:
            self._clients[slot] = self.client if not self._clients else self._new_client()
        return self._clients[slot]

    def _check_health(self) -> None:
        from vla_eval.remote.client import PolicyServerLost

        deadline = time.monotonic() + self.cfg.wait_for_server_s
        while not (self._resolve_uri() and self.client.health(timeout=2.0)):
            if time.monotonic() >= deadline:
                raise PolicyServerLost(
                    f"policy server {self.client.uri}: /healthz did not answer OK"
                    + (f" within {self.cfg.wait_for_server_s:g}s" if self.cfg.wait_for_server_s else "")
                )
            time.sleep(0.2)
        self._checked = True

    def _resolve_uri(self) -> bool:
        """Point every connection at the named Ray actor's current address; False while it has none."""
        if not self.cfg.ray_server_actor:
            return True
        import ray

        try:
            uri = ray.get(ray.get_actor(self.cfg.ray_server_actor).url.remote(), timeout=10)
        except Exception:  # not (yet) there, or the old one is dead: the caller polls again
            return False
        for client in {id(c): c for c in [self.client, *self._clients.values()]}.values():
            if client.uri != uri:
                client.close()
                client.uri = uri
        self._uri = uri
        return True

    def predict(self, obs_batch: list[dict[str, Any]], slots=None) -> ActionChunk:
        from vla_eval.remote.client import PolicyServerLost, RemotePolicyError

        try:
            return self._predict(obs_batch, slots)
        except PolicyServerLost as exc:
            if self.cfg.server_lost == "retry_episode":
                raise RetryEpisode(str(exc)) from exc
            raise RemotePolicyError(str(exc)) from exc

    def _predict(self, obs_batch: list[dict[str, Any]], slots) -> ActionChunk:
        from vla_eval.remote.client import RemotePolicyError

        if not self._checked and (self.cfg.check_health or self.cfg.wait_for_server_s):
            self._check_health()
        episodes = self._episodes.rows(obs_batch, slots)
        slots = list(range(len(obs_batch))) if slots is None else list(slots)
        msgs = []
        for obs, ep in zip(obs_batch, episodes):
            o = dict(obs)
            o["instruction"] = ep.instruction
            msg = encode_obs(o, self.cfg.obs)
            if self.cfg.obs.history > 1:
                _add_history(msg, ep, self.cfg.obs)
            if self.cfg.send_privileged and "privileged" in obs:
                msg["privileged"] = obs["privileged"]
            if self.cfg.send_reset and ep.fresh:
                msg["reset"] = True
                if ep.seed is not None:
                    msg["seed"] = int(ep.seed)
            ep.fresh = False
            msgs.append(msg)
        clients = [self._client(s) for s in slots]
        replies = self._exchange(clients, msgs)
        for client in {id(c): c for c in clients}.values():
            self._check_orientation(client)
        rows, extras = [], []
        space = self.action_space
        for reply in replies:
            if self.cfg.actions_key not in reply:
                raise RemotePolicyError(f"policy server reply has no {self.cfg.actions_key!r}: keys {sorted(reply)}")
            a = np.asarray(reply[self.cfg.actions_key], dtype=np.float64)
            if a.ndim == 1:
                a = a[None, :]
            if self.cfg.max_chunk:
                a = a[: self.cfg.max_chunk]
            rows.append(a)
            ex: dict[str, Any] = {}
            timing = reply.get("server_timing")
            if isinstance(timing, dict) and "infer_ms" in timing:
                ex["server_infer_ms"] = float(timing["infer_ms"])
            if isinstance(timing, dict) and "batch_size" in timing:
                ex["server_batch_size"] = int(timing["batch_size"])
            if self.cfg.space_from_server:
                space = _space(reply, self.client.uri)
            remote_extras = reply.get("extras")
            if isinstance(remote_extras, dict):
                ex.update(remote_extras)  # e.g. parse_failure / raw_text from a served VLA-R1
            extras.append(ex)
        if len({r.shape for r in rows}) != 1:
            raise RemotePolicyError(f"policy server returned chunks of different shapes {[r.shape for r in rows]}")
        return ActionChunk(actions=np.stack(rows), space=space, extras=extras)

    def _exchange(self, clients: list, msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One request per connection, all in flight at once so the server can batch them."""
        if len(msgs) == 1:
            return [clients[0].infer(msgs[0])]
        if self._pool is None or self._pool_size < len(msgs):
            if self._pool is not None:
                self._pool.shutdown(wait=False)
            self._pool = ThreadPoolExecutor(max_workers=len(msgs), thread_name_prefix="vla-eval-remote")
            self._pool_size = len(msgs)
        futures = [self._pool.submit(c.infer, m) for c, m in zip(clients, msgs)]
        wait(futures)  # every connection has its reply (or has failed) before anything raises
        return [f.result() for f in futures]

    def _check_orientation(self, client) -> None:
        """A vla-eval server states the orientation its policy needs; refuse to feed it a different one."""
        from vla_eval.remote.client import RemotePolicyError

        served = (client.metadata or {}).get("image_orientation")
        if self.needs_images and served and served != self.image_orientation:
            raise RemotePolicyError(
                f"policy server {client.uri} serves a policy trained on {served!r} images but this client "
                f"declares image_orientation {self.image_orientation!r}; pass --policy-arg image_orientation={served}"
            )

    def describe(self) -> dict[str, Any]:
        # the server's metadata whole (no array or text bound): it is the server's own statement of what it serves
        meta = json_safe(self.client.metadata, max_array=None, max_text=None)
        return {"name": self.name, "config": self.cfg.model_dump(mode="json"), "server_metadata": meta}

    def close(self) -> None:
        for client in {id(c): c for c in [self.client, *self._clients.values()]}.values():
            client.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False)


@dataclass
class _Episode:
    instruction: str
    seed: int | None
    fresh: bool = True
    frames: list[np.ndarray] = field(default_factory=list)


def _add_history(msg: dict[str, Any], ep: _Episode, fmt: ObsFormat) -> None:
    from vla_eval.remote.client import RemotePolicyError

    if fmt.kind != "vla_eval":
        raise RemotePolicyError(f"obs.history {fmt.history} needs obs.kind vla_eval (got {fmt.kind!r})")
    try:
        frame = msg["images"][fmt.image_camera]
    except KeyError:
        raise RemotePolicyError(f"obs.history: the observation has no camera {fmt.image_camera!r}") from None
    ep.frames = [*ep.frames, frame][-fmt.history :]
    msg["image_history"] = np.stack(ep.frames)
    msg["pad_mask"] = np.ones(len(ep.frames), dtype=np.float64)


def _space(reply: dict[str, Any], uri: str) -> ActionSpace:
    from vla_eval.remote.client import RemotePolicyError

    raw = reply.get("action_space")
    try:
        return ActionSpace(**{str(k): v for k, v in raw.items()})
    except (AttributeError, TypeError) as exc:
        raise RemotePolicyError(f"policy server {uri} reply has no valid action_space ({raw!r}): {exc}") from exc


RemotePolicy.__signature__ = model_signature(RemoteConfig)  # type: ignore[attr-defined]
