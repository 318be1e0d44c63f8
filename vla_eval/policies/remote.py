"""A policy that runs elsewhere: any openpi-protocol server (pi0 / pi0-FAST / pi05, or ``vla-eval serve``).

The simulation stays on this machine and inference goes to a GPU box.  One request per
env per call (openpi servers are unbatched); the reply's ``actions`` ``(T, D)`` become
one row of the chunk, in the action space the config states (openpi LIBERO servers emit
LIBERO's native space: normalised delta EEF, axis-angle, -1 open / +1 close).

Failures (server down, too slow, server-side exception) raise
:class:`~vla_eval.remote.client.RemotePolicyError` from :meth:`predict`; the rollout
records it as ``policy_error`` and moves on.  Nothing here can block forever.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vla_eval.errors import ConfigError
from vla_eval.policies._hf import model_signature, validate_config
from vla_eval.policies.base import ActionChunk, ActionSpace, Policy
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
        default="upright", description="view the served checkpoint was trained on (openpi LIBERO servers: libero_rot180)"
    )
    obs: ObsFormat = ObsFormat()
    send_reset: bool = Field(default=False, description="add reset=True to an episode's first request (vla-eval servers)")
    actions_key: str = "actions"
    max_chunk: int | None = Field(default=None, ge=1, description="keep at most this many actions of each reply")
    action_dim: int = Field(default=7, ge=1)
    rotation: Literal["axis_angle", "euler_xyz", "quat_wxyz", "quat_xyzw", "none"] = "axis_angle"
    position_units: Literal["normalized", "meters"] = "normalized"
    gripper: Literal["close_positive", "open_positive", "open_01", "close_01"] = "close_positive"
    needs_images: bool = True


class RemotePolicy(Policy):
    name = "remote"
    Config = RemoteConfig

    def __init__(self, **kwargs: Any):
        from vla_eval.remote.client import RemotePolicyClient

        cfg: RemoteConfig = validate_config(RemoteConfig, kwargs, "remote")  # type: ignore[assignment]
        self.cfg = cfg
        self.image_orientation = cfg.image_orientation
        self.action_space = ActionSpace(
            kind="delta_eef", dim=cfg.action_dim, rotation=cfg.rotation, position_units=cfg.position_units, gripper=cfg.gripper
        )
        self.needs_images = cfg.needs_images
        api_key = None
        if cfg.api_key_env:
            api_key = os.environ.get(cfg.api_key_env)
            if api_key is None:
                raise ConfigError(f"remote: environment variable {cfg.api_key_env!r} (api_key_env) is not set")
        uri = cfg.uri or f"ws://{cfg.host}:{cfg.port}"
        self.client = RemotePolicyClient(
            uri, connect_timeout=cfg.connect_timeout, request_timeout=cfg.request_timeout, max_retries=cfg.max_retries, api_key=api_key
        )
        self._instructions: list[str] = []
        self._fresh: list[bool] = []
        self._checked = False

    def reset(self, instructions: list[str], seeds: list[int] | None = None) -> None:
        self._instructions = [str(i) for i in instructions]
        self._fresh = [True] * len(instructions)

    def predict(self, obs_batch: list[dict[str, Any]]) -> ActionChunk:
        from vla_eval.remote.client import RemotePolicyError

        if not self._checked and self.cfg.check_health:
            if not self.client.health():
                raise RemotePolicyError(f"policy server {self.client.uri}: /healthz did not answer OK")
            self._checked = True
        rows, extras = [], []
        for i, obs in enumerate(obs_batch):
            o = dict(obs)
            if i < len(self._instructions):
                o["instruction"] = self._instructions[i]
            msg = encode_obs(o, self.cfg.obs)
            if self.cfg.send_reset and i < len(self._fresh) and self._fresh[i]:
                msg["reset"] = True
                self._fresh[i] = False
            reply = self.client.infer(msg)
            self._check_orientation()
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
            remote_extras = reply.get("extras")
            if isinstance(remote_extras, dict):
                ex.update(remote_extras)  # e.g. parse_failure / raw_text from a served VLA-R1
            extras.append(ex)
        if len({r.shape for r in rows}) != 1:
            raise RemotePolicyError(f"policy server returned chunks of different shapes {[r.shape for r in rows]}")
        return ActionChunk(actions=np.stack(rows), space=self.action_space, extras=extras)

    def _check_orientation(self) -> None:
        """A vla-eval server states the orientation its policy needs; refuse to feed it a different one."""
        from vla_eval.remote.client import RemotePolicyError

        served = (self.client.metadata or {}).get("image_orientation")
        if self.needs_images and served and served != self.image_orientation:
            raise RemotePolicyError(
                f"policy server {self.client.uri} serves a policy trained on {served!r} images but this client "
                f"declares image_orientation {self.image_orientation!r}; pass --policy-arg image_orientation={served}"
            )

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "config": self.cfg.model_dump(mode="json"), "server_metadata": _plain(self.client.metadata)}

    def close(self) -> None:
        self.client.close()


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    return obj


RemotePolicy.__signature__ = model_signature(RemoteConfig)  # type: ignore[attr-defined]
