"""The observation contract every env declares, and the one checker that enforces it.

A contract written only in prose let the LIBERO env ship ``camera`` where the planner
bridge reads ``camera_params``; every backend therefore declares a typed
:class:`ObservationContract` (``env.unwrapped.observation_contract``) and its tests, the
runner's ``doctor`` command and anyone debugging a new backend call
:func:`check_observation` on *real* observations.

What an observation holds (numpy only):

* ``images[cam]``: ``H x W x 3`` uint8 for each declared camera, row 0 at the image's
  declared :attr:`ObservationContract.image_origin` (``top_left``: row 0 is the top of the
  true camera view; ``bottom_left``: rows run bottom-up, a vertical flip of the true view,
  as LIBERO / robosuite deliver them).
* ``depth[cam]`` (optional): ``H x W`` float32, metres along the optical axis, same row
  order as the image.
* ``camera_params[cam]`` (whenever depth is present): ``intrinsics`` ``K`` (3x3) mapping
  camera coordinates to continuous pixel coordinates ``(u = column, v = row)`` *of the
  arrays as delivered* (so a bottom-left image has a negative ``fy``), and ``extrinsics``
  (4x4) = ``T_world_from_camera`` (camera-to-world: ``p_world = R @ p_cam + t``) with the
  camera axes in the declared ``camera_convention`` (OpenCV: x right, y down, z forward).
* ``state``: named proprio vectors with fixed lengths; ``eef_quat`` in the declared
  ``quat_order`` (``wxyz``).
* ``instruction``: a non-empty string.

Rendering on demand (:class:`RenderOnDemand`): on a CPU, drawing the pictures is most of a
step's cost, and most pictures are never looked at. An env that supports it renders, in
``step`` and ``reset``, only the cameras last passed to ``env.unwrapped.set_render_cameras``
(``None``, the default, renders every declared camera, so gymnasium's ``check_env`` and any
caller that never asks see full observations). On a step that rendered a subset, ``images``
(and ``depth`` / ``camera_params``) hold exactly the rendered cameras and are absent when
none was rendered; ``state`` and ``instruction`` are always there.
``env.unwrapped.render_observation(cameras)`` draws the current state on request.
A policy asks for cameras with a ``cameras_needed`` attribute (a tuple of camera names;
absent or ``None``: every camera of the suite); the rollout renders them on the steps after
which the policy is queried (:func:`vla_eval.execution.settings.policy_cameras`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Literal

import numpy as np

ImageOrigin = Literal["top_left", "bottom_left"]
IMAGE_ORIGINS: tuple[str, ...] = ("top_left", "bottom_left")
CAMERA_PARAMS_KEY = "camera_params"

STANDARD_STATE: dict[str, int] = {"eef_pos": 3, "eef_quat": 4, "gripper_qpos": 2, "joint_pos": 7}
"""Proprio fields every arm env here returns: world metres, quaternion, finger joints, arm joints."""


class ContractViolation(ValueError):
    """An observation broke its env's declared contract; the message lists every problem."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("observation contract violated:\n  - " + "\n  - ".join(self.problems))


@dataclass(frozen=True)
class ObservationContract:
    """What one env promises about every observation it returns (see the module docstring)."""

    cameras: tuple[str, ...]
    image_size: tuple[int, int]
    image_origin: ImageOrigin
    depth: bool = False
    camera_convention: Literal["opencv", "opengl"] = "opencv"
    extrinsics: Literal["camera_to_world"] = "camera_to_world"
    state_fields: dict[str, int] = field(default_factory=lambda: dict(STANDARD_STATE))
    quat_order: Literal["wxyz"] = "wxyz"
    instruction: bool = True

    def __post_init__(self) -> None:
        if self.image_origin not in IMAGE_ORIGINS:
            raise ValueError(f"image_origin must be one of {IMAGE_ORIGINS}, got {self.image_origin!r}")

    def describe(self) -> dict[str, Any]:
        """Plain data for run records and the doctor report."""
        return {
            "cameras": list(self.cameras),
            "image_size": list(self.image_size),
            "image_origin": self.image_origin,
            "depth": self.depth,
            "camera_convention": self.camera_convention,
            "extrinsics": self.extrinsics,
            "state_fields": dict(self.state_fields),
            "quat_order": self.quat_order,
        }


RENDER_MODES: tuple[str, ...] = ("on_demand", "eager")
"""``on_demand`` renders only what a policy or a video will look at; ``eager`` renders every camera every step."""


class RenderOnDemand:
    """Mixin for envs that can skip rendering: ``step`` / ``reset`` draw only the requested cameras.

    The env keeps ``self.cameras`` (its declared contract) and implements :meth:`_render_views`
    (the pictures of the current state for some of them); ``_observation`` merges
    :meth:`_step_views` into the state-only observation.
    """

    cameras: tuple[str, ...]
    _render_request: tuple[str, ...] | None = None
    late_render_exact: bool = True
    """Whether :meth:`render_observation` after a step draws what that step would have drawn; False (LIBERO)
    makes the rollout request a lazy-image policy's cameras before the step, as for any other policy."""

    def set_render_cameras(self, cameras: Iterable[str] | None) -> None:
        """The cameras the next ``step`` / ``reset`` render (kept until changed); ``None`` renders all."""
        if cameras is None:
            self._render_request = None
            return
        wanted = tuple(dict.fromkeys(cameras))
        unknown = [c for c in wanted if c not in self.cameras]
        if unknown:
            raise ValueError(f"cannot render cameras {unknown}: the env declares {list(self.cameras)}")
        self._render_request = tuple(c for c in self.cameras if c in wanted)

    @property
    def render_cameras(self) -> tuple[str, ...]:
        """What ``step`` / ``reset`` render now."""
        return self.cameras if self._render_request is None else self._render_request

    def render_observation(self, cameras: Iterable[str] | None = None) -> dict[str, Any]:
        """``images`` (and ``depth`` / ``camera_params`` where declared) of the current state for ``cameras``."""
        wanted = self.cameras if cameras is None else tuple(cameras)
        unknown = [c for c in wanted if c not in self.cameras]
        if unknown:
            raise ValueError(f"cannot render cameras {unknown}: the env declares {list(self.cameras)}")
        return self._render_views(tuple(c for c in self.cameras if c in wanted)) if wanted else {}

    def _step_views(self) -> dict[str, Any]:
        cams = self.render_cameras
        return self._render_views(cams) if cams else {}

    def _render_views(self, cameras: tuple[str, ...]) -> dict[str, Any]:
        raise NotImplementedError


def supports_on_demand(env: Any) -> bool:
    """Whether ``env`` (or its unwrapped core) renders only the cameras asked for."""
    return isinstance(getattr(env, "unwrapped", env), RenderOnDemand)


def contract_of(env: Any) -> ObservationContract | None:
    """The contract an env (or its unwrapped core) declares, or None for an env that declares none."""
    base = getattr(env, "unwrapped", env)
    c = getattr(base, "observation_contract", None)
    if callable(c) and not isinstance(c, ObservationContract):
        c = c()
    return c if isinstance(c, ObservationContract) else None


def image_origin_of(env: Any) -> ImageOrigin:
    """The env's declared image origin; envs that declare no contract are taken as ``top_left``."""
    c = contract_of(env)
    return c.image_origin if c is not None else "top_left"


def _check_camera_params(cam: str, params: Any, hw: tuple[int, int], c: ObservationContract) -> list[str]:
    where = f"{CAMERA_PARAMS_KEY}[{cam!r}]"
    if not isinstance(params, dict):
        return [f"{where} is {type(params).__name__}, expected a dict with 'intrinsics' and 'extrinsics'"]
    out: list[str] = []
    missing = [k for k in ("intrinsics", "extrinsics") if k not in params]
    if missing:
        return [f"{where} lacks {missing}"]
    K = np.asarray(params["intrinsics"], dtype=np.float64)
    E = np.asarray(params["extrinsics"], dtype=np.float64)
    if K.shape != (3, 3):
        out.append(f"{where}['intrinsics'] has shape {K.shape}, expected (3, 3)")
    if E.shape != (4, 4):
        out.append(f"{where}['extrinsics'] has shape {E.shape}, expected (4, 4)")
    if out:
        return out
    if not (np.all(np.isfinite(K)) and np.all(np.isfinite(E))):
        return [f"{where} contains NaN or infinite values"]
    h, w = hw
    if not np.allclose(K[2], [0, 0, 1]) or abs(K[0, 1]) > 1e-9 or abs(K[1, 0]) > 1e-9:
        out.append(
            f"{where}['intrinsics'] is not a pinhole matrix [[fx,0,cx],[0,fy,cy],[0,0,1]]: {K.round(3).tolist()}"
        )
    if K[0, 0] <= 0:
        out.append(f"{where}['intrinsics'] fx = {K[0, 0]:.3f}: expected > 0 (columns run left to right)")
    want_fy_sign = 1.0 if c.image_origin == "top_left" else -1.0
    if np.sign(K[1, 1]) != want_fy_sign:
        out.append(
            f"{where}['intrinsics'] fy = {K[1, 1]:.3f} but image_origin is {c.image_origin!r} "
            f"(expected fy {'> 0' if want_fy_sign > 0 else '< 0'} for rows as delivered)"
        )
    if not (0 <= K[0, 2] <= w and 0 <= K[1, 2] <= h):
        out.append(
            f"{where}['intrinsics'] principal point ({K[0, 2]:.1f}, {K[1, 2]:.1f}) lies outside the {w}x{h} image"
        )
    R = E[:3, :3]
    if not np.allclose(E[3], [0, 0, 0, 1], atol=1e-6):
        out.append(f"{where}['extrinsics'] last row is {E[3].tolist()}, expected [0, 0, 0, 1]")
    if not np.allclose(R.T @ R, np.eye(3), atol=1e-4) or np.linalg.det(R) < 0.99:
        out.append(f"{where}['extrinsics'] rotation is not a proper rotation (det {np.linalg.det(R):.4f})")
    return out


def check_observation(
    obs: Any,
    env: Any = None,
    contract: ObservationContract | None = None,
    raise_on_error: bool = False,
    rendered: Iterable[str] | None = None,
) -> list[str]:
    """Every way ``obs`` breaks the contract declared by ``env`` (or given as ``contract``); [] when it holds.

    ``rendered``: the cameras the step was asked to render (on-demand rendering); the others must be absent.
    With ``raise_on_error`` a non-empty list raises :class:`ContractViolation` naming all problems.
    """
    c = contract or (contract_of(env) if env is not None else None)
    if c is not None and rendered is not None:
        cams = tuple(x for x in c.cameras if x in set(rendered))
        c = ObservationContract(
            cameras=cams,
            image_size=c.image_size,
            image_origin=c.image_origin,
            depth=c.depth and bool(cams),
            camera_convention=c.camera_convention,
            state_fields=c.state_fields,
            quat_order=c.quat_order,
            instruction=c.instruction,
        )
    problems: list[str] = []
    if c is None:
        problems.append(f"env {type(getattr(env, 'unwrapped', env)).__name__} declares no observation_contract")
    elif not isinstance(obs, dict):
        problems.append(f"observation is {type(obs).__name__}, expected a dict")
    else:
        problems += _check(obs, c)
    if problems and raise_on_error:
        raise ContractViolation(problems)
    return problems


def _check(obs: dict[str, Any], c: ObservationContract) -> list[str]:
    out: list[str] = []
    h, w = c.image_size
    if c.cameras:
        images = obs.get("images")
        if not isinstance(images, dict):
            out.append(f"obs['images'] is missing (the env declares cameras {list(c.cameras)})")
        else:
            for cam in c.cameras:
                img = images.get(cam)
                if img is None:
                    out.append(f"obs['images'] has no camera {cam!r} (has {sorted(images)})")
                    continue
                a = np.asarray(img)
                if a.shape != (h, w, 3) or a.dtype != np.uint8:
                    out.append(f"obs['images'][{cam!r}] is {a.dtype} {a.shape}, expected uint8 ({h}, {w}, 3)")
            extra = sorted(set(images) - set(c.cameras))
            if extra:
                out.append(f"obs['images'] has undeclared cameras {extra}")
    elif "images" in obs:
        out.append("obs['images'] present but the env declares no cameras")
    if "camera" in obs:
        out.append(f"obs has key 'camera'; camera parameters belong under {CAMERA_PARAMS_KEY!r}")
    if c.depth and c.cameras:
        depth = obs.get("depth")
        params = obs.get(CAMERA_PARAMS_KEY)
        if not isinstance(depth, dict):
            out.append("obs['depth'] is missing (the env declares depth)")
        if not isinstance(params, dict):
            out.append(f"obs[{CAMERA_PARAMS_KEY!r}] is missing (needed with depth to lift pixels to 3D)")
        for cam in c.cameras:
            if isinstance(depth, dict):
                d = depth.get(cam)
                if d is None:
                    out.append(f"obs['depth'] has no camera {cam!r}")
                else:
                    d = np.asarray(d)
                    if d.shape != (h, w) or d.dtype != np.float32:
                        out.append(f"obs['depth'][{cam!r}] is {d.dtype} {d.shape}, expected float32 ({h}, {w})")
                    elif not np.all(np.isfinite(d)) or d.min() < 0:
                        out.append(f"obs['depth'][{cam!r}] has negative or non-finite values (metres expected)")
            if isinstance(params, dict):
                if cam not in params:
                    out.append(f"obs[{CAMERA_PARAMS_KEY!r}] has no camera {cam!r}")
                else:
                    out += _check_camera_params(cam, params[cam], (h, w), c)
    state = obs.get("state")
    if not isinstance(state, dict):
        out.append("obs['state'] is missing")
    else:
        for name, n in c.state_fields.items():
            if name not in state:
                out.append(f"obs['state'] has no {name!r}")
                continue
            v = np.asarray(state[name])
            if v.shape != (n,):
                out.append(f"obs['state'][{name!r}] has shape {v.shape}, expected ({n},)")
            elif not np.all(np.isfinite(v)):
                out.append(f"obs['state'][{name!r}] has NaN or infinite values")
        q = state.get("eef_quat")
        if q is not None and np.asarray(q).shape == (4,) and np.all(np.isfinite(q)):
            norm = float(np.linalg.norm(q))
            if abs(norm - 1.0) > 1e-3:
                out.append(f"obs['state']['eef_quat'] has norm {norm:.4f}, expected a unit quaternion ({c.quat_order})")
    if c.instruction:
        ins = obs.get("instruction")
        if not isinstance(ins, str) or not ins.strip():
            out.append(f"obs['instruction'] is {ins!r}, expected a non-empty string")
    return out
