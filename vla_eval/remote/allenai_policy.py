"""Any allenai model server (PyPI ``vla-eval`` 0.8.0: OpenVLA, OFT, pi0, GR00T, X-VLA, CogACT, ...) as a policy.

``--policy allenai --policy-arg url=ws://HOST:PORT``.  Each slot (each env of a ``--batch-envs``
batch) has its own connection, so the server keeps one session per env, exactly as their
harness opens one connection per shard.  Per episode the adapter sends EPISODE_START, then one
OBSERVATION per env step and executes the one action each ACTION carries (their servers chunk
and ensemble on their side, so a chunk here would desynchronise the server's buffer), and
EPISODE_END when the slot's next episode starts, the slot is released or the policy closes.

The observation is laid out as their benchmarks lay it out (``docs/policies.md``, "allenai
model servers"): ``images`` {their camera name: HWC uint8}, ``task_description``, and, when
the server's HELLO ``observation_params`` ask for them, the wrist image and the 8-D ``states``
``[eef pos 3, axis-angle 3, gripper qpos 2]`` (axis-angle folded to w >= 0 as their
``rotation.quat_to_axisangle`` does unless the server sets ``quat_no_antipodal``).  The action
space comes from the server's ``action_spec`` unless the policy args name it.

Failures (server unreachable after bounded reconnects, too slow, an ERROR frame, a frame that
is not their protocol, an action of the wrong size) raise a named
:class:`~vla_eval.remote.client.RemotePolicyError` from :meth:`predict`, which the rollout
records as the episode's ``policy_error``.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from vla_eval.actions.space import LIBERO_DELTA_EEF, ActionChunk, ActionSpace
from vla_eval.adapter import Policy
from vla_eval.policies._hf import model_signature, validate_config
from vla_eval.remote.obs_format import quat_wxyz_to_axis_angle

OBSERVATION_PARAMS = ("send_wrist_image", "send_state", "quat_no_antipodal")
"""HELLO ``observation_params`` this client honours (their LIBERO benchmark's constructor arguments)."""


class AllenaiConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(default="ws://127.0.0.1:8000", description="the model server, ws://HOST:PORT")
    connect_timeout: float = Field(default=10.0, gt=0)
    request_timeout: float = Field(default=30.0, gt=0, description="longest wait for one ACTION")
    max_retries: int = Field(default=2, ge=0, description="reconnects after a lost connection before the episode fails")
    retry_backoff: float = Field(default=0.5, ge=0)
    check_health: bool = Field(default=True, description="GET /health once before the first connection")
    wait_for_server_s: float = Field(default=0.0, ge=0, description="poll /health this long before the first request")
    image_format: Literal["png", "jpeg", "raw"] = Field(default="png", description="how images travel (theirs: png)")
    image_orientation: Literal["upright", "libero_rot180"] = Field(
        default="upright",
        description="view the served checkpoint was trained on (their LIBERO benchmark: libero_rot180)",
    )
    cameras: dict[str, str] = Field(
        default_factory=lambda: {"agentview": "agentview", "wrist": "wrist"},
        description="our camera -> its key in obs['images']; the first is always sent, the rest on send_wrist_image",
    )
    send_wrist_image: bool | None = Field(default=None, description="None: as the server's observation_params say")
    send_state: bool | None = Field(default=None, description="None: as the server's observation_params say")
    quat_no_antipodal: bool | None = Field(default=None, description="None: as the server's observation_params say")
    kind: Literal["delta_eef", "absolute_eef", "joint"] | None = Field(
        default=None, description="None: from action_spec"
    )
    action_dim: int | None = Field(default=None, ge=1, description="None: from action_spec")
    rotation: Literal["axis_angle", "euler_xyz", "quat_wxyz", "quat_xyzw", "none"] | None = None
    position_units: Literal["normalized", "meters"] | None = None
    gripper: Literal["close_positive", "open_positive", "open_01", "close_01"] | None = None
    needs_images: bool = True

    @field_validator("url")
    @classmethod
    def _ws_url(cls, v: str) -> str:
        if not v.startswith(("ws://", "wss://")):
            raise ValueError(f"must start with ws:// or wss://, got {v!r}")
        return v

    @field_validator("cameras")
    @classmethod
    def _some_camera(cls, v: dict[str, str]) -> dict[str, str]:
        if not v:
            raise ValueError("must name at least one camera")
        return v


_POSITION = {"delta_xyz": ("delta_eef", None), "absolute_xyz": ("absolute_eef", "meters")}
_ROTATION = {
    "axis_angle": "axis_angle",
    "euler_xyz": "euler_xyz",
    "quaternion_xyzw": "quat_xyzw",
    "quaternion_wxyz": "quat_wxyz",
}
_GRIPPER = {
    "binary_close_positive": "close_positive",
    "binary_close_negative": "open_positive",
    "binary_close_01": "close_01",
}


def space_from_spec(action_spec: Any, cfg: AllenaiConfig, url: str = "") -> ActionSpace:
    """Our :class:`ActionSpace` for a server's HELLO ``action_spec``; policy args override each field.

    A server that declares no position / rotation / gripper components (pi0's ``{"actions": raw}``)
    gets LIBERO's native space, which is what their LIBERO benchmark executes.
    """
    from vla_eval.remote.allenai_client import AllenaiReplyError

    spec = action_spec if isinstance(action_spec, dict) else {}
    base = LIBERO_DELTA_EEF
    derived: dict[str, Any] = {}
    if all(isinstance(spec.get(k), dict) for k in ("position", "rotation", "gripper")):
        pos, rot, grip = (spec[k] for k in ("position", "rotation", "gripper"))
        try:
            fmts = [str(pos["format"]), str(rot["format"]), str(grip["format"])]
            dims = int(pos["dims"]) + int(rot["dims"]) + int(grip["dims"])
        except (KeyError, TypeError, ValueError) as exc:
            raise AllenaiReplyError(f"allenai model server {url} sent a malformed action_spec: {exc!r}") from exc
        if fmts[0] in _POSITION and cfg.kind is None:
            derived["kind"], units = _POSITION[fmts[0]]
            rng = pos.get("range")
            derived["position_units"] = units or ("normalized" if rng and max(map(abs, rng)) <= 1.0 else "meters")
        if fmts[1] in _ROTATION:
            derived["rotation"] = _ROTATION[fmts[1]]
        if fmts[2] in _GRIPPER:
            derived["gripper"] = _GRIPPER[fmts[2]]
        derived["dim"] = dims
        unknown = [
            (f, arg)
            for f, arg, table in zip(fmts, ("kind", "rotation", "gripper"), (_POSITION, _ROTATION, _GRIPPER))
            if f not in table and getattr(cfg, arg) is None
        ]
        if unknown:
            f, arg = unknown[0]
            raise AllenaiReplyError(
                f"allenai model server {url} declares action format {f!r}, which has no fixed meaning "
                f"here; pass --policy-arg {arg}=... to say what it is"
            )
    explicit = {
        "kind": cfg.kind,
        "dim": cfg.action_dim,
        "rotation": cfg.rotation,
        "position_units": cfg.position_units,
        "gripper": cfg.gripper,
    }
    merged = {**base.__dict__, **derived, **{k: v for k, v in explicit.items() if v is not None}}
    return ActionSpace(**merged)


def quat_to_axis_angle_folded(q_wxyz: np.ndarray) -> np.ndarray:
    """Their default state rotation (``vla_eval/rotation.py`` ``quat_to_axisangle``): the sign is
    canonicalised to w >= 0 first, so the angle stays in [0, pi] (robosuite's does not fold)."""
    q = np.asarray(q_wxyz, dtype=np.float64).reshape(4)
    return quat_wxyz_to_axis_angle(-q if q[0] < 0 else q)


def allenai_obs(obs: dict[str, Any], cfg: AllenaiConfig, params: dict[str, Any], instruction: str) -> dict[str, Any]:
    """Our observation -> the OBSERVATION payload their model servers read."""
    from vla_eval.remote.client import RemotePolicyError

    def param(name: str) -> bool:
        own = getattr(cfg, name)
        return bool(params.get(name, False)) if own is None else own

    out: dict[str, Any] = {"task_description": instruction}
    if cfg.needs_images:
        have = obs.get("images", {})
        images: dict[str, np.ndarray] = {}
        for i, (ours, theirs) in enumerate(cfg.cameras.items()):
            if i and not param("send_wrist_image"):
                break
            if ours not in have:
                raise RemotePolicyError(
                    f"allenai: the env renders no camera {ours!r} (has {sorted(have)}); "
                    f"set --policy-arg cameras to the env's cameras"
                )
            images[theirs] = np.ascontiguousarray(np.asarray(have[ours], dtype=np.uint8))
        out["images"] = images
    if param("send_state"):
        st = obs.get("state", {})
        try:
            aa = (
                quat_wxyz_to_axis_angle(st["eef_quat"])
                if param("quat_no_antipodal")
                else quat_to_axis_angle_folded(st["eef_quat"])
            )
            out["states"] = np.concatenate(
                [
                    np.asarray(st["eef_pos"], dtype=np.float64).reshape(3),
                    aa,
                    np.asarray(st["gripper_qpos"], dtype=np.float64).reshape(-1)[:2],
                ]
            )
        except KeyError as exc:
            raise RemotePolicyError(
                f"allenai: the server asks for state (send_state) but the observation has no state[{exc.args[0]!r}]"
            ) from None
    return out


def action_row(payload: dict[str, Any], space: ActionSpace, url: str) -> tuple[np.ndarray, int]:
    """The one action an ACTION payload carries, and the number of rows it held."""
    from vla_eval.remote.allenai_client import AllenaiReplyError

    raw = payload.get("actions", payload.get("action"))
    if raw is None:
        raise AllenaiReplyError(f"allenai model server {url} sent an ACTION without 'actions': keys {sorted(payload)}")
    try:
        a = np.asarray(raw)
        if a.dtype.kind not in "biuf":
            raise TypeError(f"dtype {a.dtype}")
        a = a.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise AllenaiReplyError(f"allenai model server {url} sent actions that are not numbers: {exc}"[:500]) from exc
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] != space.dim:
        raise AllenaiReplyError(
            f"allenai model server {url} sent actions of shape {a.shape}; "
            f"expected ({space.dim},) for a {space.dim}-D {space.kind} space"
        )
    return a[0], a.shape[0]  # a chunk: the first action, as their harness's continuous path does


@dataclass
class _Episode:
    instruction: str
    seed: int | None
    started: bool = False
    steps: int = 0


class AllenaiPolicy(Policy):
    name = "allenai"
    slot_aware = True

    def __init__(self, **kwargs: Any):
        cfg: AllenaiConfig = validate_config(AllenaiConfig, kwargs, "allenai")  # type: ignore[assignment]
        self.cfg = cfg
        self.image_orientation = cfg.image_orientation
        self.needs_images = cfg.needs_images
        self.action_space = space_from_spec(None, cfg)
        self.server_info: dict[str, Any] = {}
        self._clients: dict[Any, Any] = {}
        self._episodes: dict[Any, _Episode] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._checked = False

    # -- connections
    def _new_client(self):
        from vla_eval.remote.allenai_client import AllenaiClient

        c = self.cfg
        return AllenaiClient(
            c.url,
            connect_timeout=c.connect_timeout,
            request_timeout=c.request_timeout,
            max_retries=c.max_retries,
            retry_backoff=c.retry_backoff,
            image_format=c.image_format,
        )

    def _check_health(self) -> None:
        from vla_eval.remote.allenai_client import AllenaiServerLost

        probe = self._new_client()
        deadline = time.monotonic() + self.cfg.wait_for_server_s
        while not probe.health(timeout=2.0):
            if time.monotonic() >= deadline:
                raise AllenaiServerLost(
                    f"allenai model server {self.cfg.url}: GET /health did not answer 200"
                    + (f" within {self.cfg.wait_for_server_s:g}s" if self.cfg.wait_for_server_s else "")
                )
            time.sleep(0.2)
        self._checked = True

    def _client(self, slot: Any):
        client = self._clients.get(slot)
        if client is None:
            client = self._clients[slot] = self._new_client()
        if client._ws is None and not client.server_info:
            client._with_reconnect(lambda: None)  # HELLO now, so its observation_params shape the first observation
            if not self.server_info:
                self.server_info = dict(client.server_info)
                self.action_space = space_from_spec(self.server_info.get("action_spec"), self.cfg, self.cfg.url)
        return client

    # -- episodes
    def reset(self, instructions: list[str], seeds: list[int] | None = None, slots=None) -> None:
        slots = list(range(len(instructions))) if slots is None else list(slots)
        if len(slots) != len(instructions):
            raise ValueError(f"reset got {len(instructions)} instructions for {len(slots)} slots")
        seeds = list(seeds) if seeds is not None else [None] * len(instructions)
        for slot, instruction, seed in zip(slots, instructions, seeds):
            self._end(slot)
            self._episodes[slot] = _Episode(str(instruction), None if seed is None else int(seed))

    def _end(self, slot: Any) -> None:
        ep, client = self._episodes.pop(slot, None), self._clients.get(slot)
        if ep is not None and ep.started and client is not None:
            client.end_episode({"steps": ep.steps})

    def release(self, slots) -> None:
        for slot in slots:
            self._end(slot)
            client = self._clients.pop(slot, None)
            if client is not None:
                client.close()

    def _act(self, slot: Any, obs: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        ep = self._episodes.get(slot)
        if ep is None:  # a caller that skipped reset: the observation names the task
            ep = self._episodes[slot] = _Episode(str(obs.get("instruction", "")), None)
        client = self._client(slot)
        if not ep.started:
            task: dict[str, Any] = {"name": ep.instruction, "task_description": ep.instruction}
            if ep.seed is not None:
                task["seed"] = ep.seed
            client.start_episode({"task": task})
            ep.started = True
        payload = allenai_obs(obs, self.cfg, self.server_info.get("observation_params") or {}, ep.instruction)
        row, rows = action_row(client.act(payload), self.action_space, self.cfg.url)
        ep.steps += 1
        extras: dict[str, Any] = {}
        if rows > 1:
            extras["server_chunk_rows"] = rows
        if client.reconnects:
            extras["server_reconnects"] = client.reconnects
        return row, extras

    def predict(self, obs_batch: list[dict[str, Any]], slots=None) -> ActionChunk:
        if not self._checked and (self.cfg.check_health or self.cfg.wait_for_server_s):
            self._check_health()
        slots = list(range(len(obs_batch))) if slots is None else list(slots)
        if len(obs_batch) == 1:
            results = [self._act(slots[0], obs_batch[0])]
        else:
            if self._pool is None or self._pool._max_workers < len(obs_batch):
                if self._pool is not None:
                    self._pool.shutdown(wait=False)
                self._pool = ThreadPoolExecutor(max_workers=len(obs_batch), thread_name_prefix="vla-eval-allenai")
            if not self.server_info:  # the first HELLO decides the action space for every row
                self._client(slots[0])
            futures = [self._pool.submit(self._act, s, o) for s, o in zip(slots, obs_batch)]
            wait(futures)  # every connection has its answer (or its error) before anything raises
            results = [f.result() for f in futures]
        actions = np.stack([r[0] for r in results])[:, None, :]
        return ActionChunk(actions=actions, space=self.action_space, extras=[r[1] for r in results])

    def describe(self) -> dict[str, Any]:
        from vla_eval.jsonsafe import json_safe

        return {
            "name": self.name,
            "config": self.cfg.model_dump(mode="json"),
            "server_hello": json_safe(self.server_info),
            "action_space": dict(self.action_space.__dict__),
        }

    def close(self) -> None:
        for slot in list(self._clients):
            try:
                self._end(slot)
            except Exception:
                pass
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=False)


AllenaiPolicy.__signature__ = model_signature(AllenaiConfig)  # type: ignore[attr-defined]
