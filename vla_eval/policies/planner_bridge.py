"""From 2D image-space plans (VLA-R1 trajectories / affordance boxes) to 7-D delta-EEF actions.

VLA-R1 predicts where the end-effector should go *in the image*; upstream releases no
bridge to robot motion, so the harness provides one (docs/architecture.md §5):

1. **Lift**: each normalised ``(x, y)`` point is turned into a pixel, the rendered depth
   around it gives the distance along the optical axis, and the pinhole model with the
   camera's intrinsics ``K`` and world-from-camera extrinsics ``T_wc`` gives a 3D point
   on the visible surface.
2. **Plan**: intermediate waypoints are followed at a clearance above the surfaces they
   hit (following surface points literally would drag the gripper over the table), the
   last point becomes a hover -> descend -> close -> lift grasp.  An optional place
   stage (second query) moves above its last point, lowers, opens and retreats.
3. **Follow**: a proportional waypoint follower turns the current target and the
   observed ``eef_pos`` into the env's normalised delta-EEF action, closed loop, one
   step at a time, rotation held (zero delta).

Camera conventions (stated because they are where projections silently go wrong):

* Image coordinates: ``x`` left -> right, ``y`` top -> bottom, normalised by the full
  width / height; pixel ``(u, v) = (x * W, y * H)`` in *continuous* pixel units, so the
  centre of pixel column ``i`` is ``u = i + 0.5``.
* ``intrinsics`` ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` in the same pixel units.
* ``extrinsics`` is ``T_world_from_camera`` (4x4): ``p_world = R @ p_cam + t``.
* The camera frame is ``"opencv"`` (x right, y down, z forward: depth is ``+z``) or
  ``"opengl"`` (MuJoCo's camera frame: x right, y up, looking along ``-z``).  The env may
  state it in ``camera_params[cam]["convention"]``; otherwise :attr:`BridgeConfig.camera_convention`.
* Depth is metric distance along the optical axis (what MuJoCo's depth rendering gives
  after linearisation), not the Euclidean ray length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

_GL_TO_CV = np.diag([1.0, -1.0, -1.0])


class BridgeError(ValueError):
    """The 2D plan could not be lifted (no depth / camera parameters, every point invalid)."""


@dataclass(frozen=True)
class CameraModel:
    """Pinhole camera: intrinsics, world-from-camera extrinsics and its frame convention."""

    intrinsics: np.ndarray
    extrinsics: np.ndarray
    width: int
    height: int
    convention: Literal["opencv", "opengl"] = "opencv"

    @classmethod
    def from_params(
        cls, params: dict[str, Any], hw: tuple[int, int], default_convention: str = "opencv"
    ) -> "CameraModel":
        try:
            K = np.asarray(params["intrinsics"], dtype=np.float64).reshape(3, 3)
            T = np.asarray(params["extrinsics"], dtype=np.float64).reshape(4, 4)
        except (KeyError, ValueError) as exc:
            raise BridgeError(f"camera_params need 'intrinsics' (3x3) and 'extrinsics' (4x4): {exc}") from exc
        conv = str(params.get("convention", default_convention))
        if conv not in ("opencv", "opengl"):
            raise BridgeError(f"unknown camera convention {conv!r}")
        return cls(K, T, width=int(hw[1]), height=int(hw[0]), convention=conv)  # type: ignore[arg-type]

    def _cv_from_cam(self) -> np.ndarray:
        return np.eye(3) if self.convention == "opencv" else _GL_TO_CV

    def project(self, points_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points ``(N, 3)`` -> (continuous pixels ``(N, 2)``, depth along the optical axis ``(N,)``)."""
        p = np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
        R, t = self.extrinsics[:3, :3], self.extrinsics[:3, 3]
        cam = (p - t) @ R  # R^T (p - t), row-wise
        cv = cam @ self._cv_from_cam().T
        z = cv[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = (cv[:, :2] / z[:, None]) @ self.intrinsics[:2, :2].T + self.intrinsics[:2, 2]
        return uv, z

    def unproject(self, uv: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Continuous pixels ``(N, 2)`` and optical-axis depth ``(N,)`` -> world points ``(N, 3)``."""
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        z = np.asarray(depth, dtype=np.float64).reshape(-1)
        rays = np.linalg.solve(self.intrinsics, np.column_stack([uv, np.ones(len(uv))]).T).T  # z = 1 rays
        cv = rays * z[:, None]
        cam = cv @ self._cv_from_cam()  # inverse of the (orthogonal, symmetric) axis flip
        R, t = self.extrinsics[:3, :3], self.extrinsics[:3, 3]
        return cam @ R.T + t

    def normalized_to_pixels(self, xy: np.ndarray) -> np.ndarray:
        return np.asarray(xy, dtype=np.float64).reshape(-1, 2) * np.array([self.width, self.height], dtype=np.float64)

    def pixels_to_normalized(self, uv: np.ndarray) -> np.ndarray:
        return np.asarray(uv, dtype=np.float64).reshape(-1, 2) / np.array([self.width, self.height], dtype=np.float64)


def sample_depth(depth: np.ndarray, uv: np.ndarray, radius: int = 2, max_depth: float | None = None) -> np.ndarray:
    """Median of valid depths in a ``(2r+1)^2`` window around each pixel; NaN where none is valid.

    A window, not a single pixel, because a predicted point on an object's edge would
    otherwise jump between the object and the table behind it.  The median keeps the
    majority surface.
    """
    d = np.asarray(depth, dtype=np.float64)
    if d.ndim == 3:
        d = d[..., 0]
    h, w = d.shape
    out = np.full(len(uv), np.nan)
    for i, (u, v) in enumerate(np.asarray(uv, dtype=np.float64).reshape(-1, 2)):
        if not (np.isfinite(u) and np.isfinite(v)) or u < 0 or v < 0 or u > w or v > h:
            continue
        c, r = min(int(u), w - 1), min(int(v), h - 1)
        win = d[max(0, r - radius) : r + radius + 1, max(0, c - radius) : c + radius + 1].ravel()
        ok = np.isfinite(win) & (win > 0)
        if max_depth is not None:
            ok &= win < max_depth
        if ok.any():
            out[i] = float(np.median(win[ok]))
    return out


class BridgeConfig(BaseModel):
    """Geometry and controller settings of the 2D -> 3D -> motion bridge (all metres / steps)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    camera: str = "agentview"
    camera_convention: Literal["opencv", "opengl"] = "opencv"
    depth_window: int = Field(default=2, ge=0)
    max_depth: float | None = Field(default=None, gt=0)
    position_scale: float = Field(default=0.05, gt=0, description="metres per unit of normalised delta position")
    gain: float = Field(default=1.0, gt=0)
    max_action: float = Field(default=1.0, gt=0, le=1.0)
    waypoint_tolerance: float = Field(default=0.015, gt=0)
    final_tolerance: float = Field(default=0.006, gt=0)
    max_steps_per_waypoint: int = Field(
        default=40, ge=1, description="step budget of a target, plus its distance / min_progress"
    )
    min_progress: float = Field(
        default=0.005,
        gt=0,
        description="metres per step the arm is assumed to make at least: a target 0.5 m away gets 100 more steps "
        "(LIBERO's OSC moves about 1.3 cm per step at full speed)",
    )
    stall_steps: int = Field(default=8, ge=1, description="a target is given up after this many steps without progress")
    stall_distance: float = Field(
        default=0.001, ge=0, description="metres per step below which the arm counts as not moving"
    )
    clearance: float = Field(default=0.06, ge=0, description="height above surfaces for intermediate waypoints / hover")
    grasp_depth: float = Field(default=0.02, description="how far below the lifted top-surface point to grasp")
    grasp_steps: int = Field(default=12, ge=1)
    lift_height: float = Field(default=0.12, ge=0)
    place_height: float = Field(default=0.04, description="release height above the place point's surface")
    release_steps: int = Field(default=8, ge=1)
    z_min: float | None = Field(default=None, description="never command the EEF below this world z (table guard)")
    descend_speed: float = Field(default=0.7, gt=0, le=1.0, description="speed factor for the final approach")
    carry_speed: float = Field(default=0.5, gt=0, le=1.0, description="speed factor while holding an object")
    container_window: float = Field(
        default=0.1,
        ge=0,
        le=0.5,
        description="half-size, as a fraction of the image width, of the window searched for a container rim around "
        "the place point (0 = off)",
    )
    container_min_depth: float = Field(
        default=0.03, ge=0, description="a rim this far above the lifted place point makes it a container"
    )
    missed_grasp_width: float | None = Field(
        default=0.004,
        ge=0,
        description="after a pick plan, a finger opening (sum of |gripper_qpos|, metres: the Panda of LIBERO and the "
        "built-in scenes) below this means the fingers closed on nothing; None turns the check off",
    )
    max_hang: float = Field(
        default=0.15, ge=0, description="cap on how far a held object is taken to reach below the fingers"
    )
    regrasp_attempts: int = Field(
        default=1, ge=0, description="pick queries again after a missed grasp (0 = go on to place)"
    )
    skip_near_eef_px: float = Field(
        default=8.0, ge=0, description="drop leading path points this close (pixels) to the EEF's own projection"
    )


@dataclass
class Target:
    """One step of a plan: go to ``pos`` with the gripper at ``gripper`` (-1 open, +1 close).

    ``hold`` > 0 makes it a gripper actuation: stay put for that many steps.
    """

    pos: np.ndarray
    gripper: float
    tolerance: float
    hold: int = 0
    label: str = ""
    speed: float = 1.0


@dataclass
class PlanFollower:
    """Closed-loop execution of a list of :class:`Target` for one env."""

    targets: list[Target]
    cfg: BridgeConfig
    index: int = 0
    _steps_here: int = 0
    _held: int = 0
    _budget: int = 0
    _stalled: int = 0
    _last: np.ndarray | None = None
    trace: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.index >= len(self.targets)

    def _advance(self) -> None:
        self.trace.append(self.targets[self.index].label)
        self.index += 1
        self._steps_here = 0
        self._held = 0
        self._budget = 0
        self._stalled = 0

    def step(self, eef_pos: np.ndarray) -> np.ndarray | None:
        """Next 7-D action (normalised delta pos, zero rotation, gripper) or ``None`` when done."""
        eef = np.asarray(eef_pos, dtype=np.float64)
        while not self.done:
            tgt = self.targets[self.index]
            err = tgt.pos - eef
            if tgt.hold > 0:
                if self._held >= tgt.hold:
                    self._advance()
                    continue
                self._held += 1
                return _action(self.cfg.gain * err, tgt.gripper, self.cfg, tgt.speed)
            if self._budget == 0:  # a long carry must not be cut short and turned into a diagonal descent
                self._budget = self.cfg.max_steps_per_waypoint + int(np.linalg.norm(err) / self.cfg.min_progress)
            moved = np.inf if self._last is None else float(np.linalg.norm(eef - self._last))
            self._last = eef.copy()
            self._stalled = self._stalled + 1 if moved < self.cfg.stall_distance else 0
            if (
                np.linalg.norm(err) <= tgt.tolerance
                or self._steps_here >= self._budget
                or self._stalled >= self.cfg.stall_steps
            ):  # blocked (on a surface, against a wall): go on
                self._advance()
                continue
            self._steps_here += 1
            return _action(self.cfg.gain * err, tgt.gripper, self.cfg, tgt.speed)
        return None


def _action(delta_m: np.ndarray, gripper: float, cfg: BridgeConfig, speed: float = 1.0) -> np.ndarray:
    """Proportional step, scaled down as a whole (not clipped per axis) so the direction is kept."""
    a = np.zeros(7)
    v = delta_m / cfg.position_scale
    peak = float(np.max(np.abs(v)))
    limit = cfg.max_action * speed
    a[:3] = v * (limit / peak) if peak > limit else v
    a[6] = gripper
    return a


class PlannerBridge:
    """Lifts 2D plans to 3D and builds pick / place target lists (stateless; one per policy)."""

    def __init__(self, cfg: BridgeConfig | None = None):
        self.cfg = cfg or BridgeConfig()

    def camera(self, obs: dict[str, Any]) -> tuple[CameraModel, np.ndarray]:
        cam = self.cfg.camera
        try:
            depth = np.asarray(obs["depth"][cam])
            params = obs["camera_params"][cam]
        except (KeyError, TypeError) as exc:
            raise BridgeError(
                f"the planner bridge needs obs['depth'][{cam!r}] and obs['camera_params'][{cam!r}] "
                "(build the env with depth=True)"
            ) from exc
        return CameraModel.from_params(params, depth.shape[:2], self.cfg.camera_convention), depth

    def lift(self, points_norm: np.ndarray, obs: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Normalised ``(N, 2)`` image points -> (world points ``(N, 3)``, valid mask ``(N,)``)."""
        cam, depth = self.camera(obs)
        uv = cam.normalized_to_pixels(points_norm)
        z = sample_depth(depth, uv, self.cfg.depth_window, self.cfg.max_depth)
        valid = np.isfinite(z)
        world = np.full((len(uv), 3), np.nan)
        if valid.any():
            world[valid] = cam.unproject(uv[valid], z[valid])
        return world, valid

    def _z(self, z: float) -> float:
        return z if self.cfg.z_min is None else max(z, self.cfg.z_min)

    def _drop_start(self, points_norm: np.ndarray, obs: dict[str, Any]) -> np.ndarray:
        """Drop leading points on the EEF itself: a trajectory starts where the gripper is, and
        lifting that pixel hits the gripper (or the table behind it), not a place to go."""
        pts = np.asarray(points_norm, dtype=np.float64).reshape(-1, 2)
        if self.cfg.skip_near_eef_px <= 0 or len(pts) < 2 or "state" not in obs:
            return pts
        cam, _ = self.camera(obs)
        uv_eef, z = cam.project(np.asarray(obs["state"]["eef_pos"], dtype=np.float64)[None])
        if not (z[0] > 0):
            return pts
        dist = np.linalg.norm(cam.normalized_to_pixels(pts) - uv_eef, axis=1)
        k = 0
        while k < len(pts) - 1 and dist[k] <= self.cfg.skip_near_eef_px:
            k += 1
        return pts[k:]

    def pick_plan(self, points_norm: np.ndarray, obs: dict[str, Any]) -> list[Target]:
        """Hover along the path, descend onto its last point, close, lift."""
        world, valid = self.lift(self._drop_start(points_norm, obs), obs)
        if not valid[-1]:
            raise BridgeError("no valid depth at the trajectory's final point (the grasp target)")
        pts = world[valid]
        goal = pts[-1]
        c = self.cfg
        hover_z = goal[2] + c.clearance
        targets = [
            Target(
                np.array([p[0], p[1], self._z(max(p[2] + c.clearance, hover_z))]),
                -1.0,
                c.waypoint_tolerance,
                label="path",
            )
            for p in pts[:-1]
        ]
        grasp = np.array([goal[0], goal[1], self._z(goal[2] - c.grasp_depth)])
        targets += [
            Target(np.array([goal[0], goal[1], self._z(hover_z)]), -1.0, c.waypoint_tolerance, label="hover"),
            Target(grasp, -1.0, c.final_tolerance, label="descend", speed=c.descend_speed),
            Target(grasp, 1.0, c.final_tolerance, hold=c.grasp_steps, label="close"),
            Target(
                np.array([goal[0], goal[1], self._z(goal[2] + c.lift_height)]),
                1.0,
                c.waypoint_tolerance,
                label="lift",
                speed=c.carry_speed,
            ),
        ]
        return targets

    def _surface_around(self, uv: np.ndarray, obs: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
        """Lifted surface points on a grid (every 2 px) within ``container_window`` image widths of pixel ``uv``:
        (pixel offsets from ``uv``, world points), the points within 6 cm of the end effector (the gripper and
        what it holds) left out; None when fewer than 8 grid pixels have depth."""
        c = self.cfg
        cam, depth = self.camera(obs)
        r = max(2, int(round(c.container_window * cam.width)))
        du, dv = np.meshgrid(np.arange(-r, r + 1, 2.0), np.arange(-r, r + 1, 2.0))
        grid = np.column_stack([uv[0] + du.ravel(), uv[1] + dv.ravel()])
        inside = (grid[:, 0] >= 0) & (grid[:, 0] < cam.width) & (grid[:, 1] >= 0) & (grid[:, 1] < cam.height)
        z = sample_depth(depth, grid[inside], 0, c.max_depth)
        ok = np.isfinite(z)
        if ok.sum() < 8:
            return None
        offsets, world = (grid[inside] - uv)[ok], cam.unproject(grid[inside][ok], z[ok])
        if "state" in obs:
            eef = np.asarray(obs["state"]["eef_pos"], dtype=np.float64)
            keep = np.linalg.norm(world[:, :2] - eef[:2], axis=1) > 0.06
            offsets, world = offsets[keep], world[keep]
        return offsets, world

    def _container_goal(self, point_norm: np.ndarray, goal: np.ndarray, obs: dict[str, Any]) -> np.ndarray:
        """The place point moved to the rim plane when it lies inside a container.

        The centre pixel of a basket, lifted with depth, lands on the basket's floor or far wall,
        centimetres from the centre along the viewing ray; releasing there drops the object on
        the rim. Where the surface around the point rises at least ``container_min_depth`` on
        every side (each quadrant of the window, so one tall neighbour of a plate does not count),
        the goal becomes the ray's crossing with the lowest of those rims: the opening's centre
        at rim height. Pixels around the end effector (the gripper and what it holds) are ignored.
        """
        c = self.cfg
        if c.container_window <= 0:
            return goal
        cam, _ = self.camera(obs)
        uv = cam.normalized_to_pixels(np.asarray(point_norm, dtype=np.float64).reshape(1, 2))[0]
        surface = self._surface_around(uv, obs)
        if surface is None:
            return goal
        offsets, world = surface
        rims = []
        for qu, qv in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
            q = (np.sign(offsets[:, 0]) == qu) & (np.sign(offsets[:, 1]) == qv)
            if q.sum() < 2:
                return goal
            rims.append(float(np.percentile(world[q, 2], 98)))
        rim = min(rims)
        if rim - goal[2] < c.container_min_depth:
            return goal
        origin, ahead = cam.unproject(np.vstack([uv, uv]), np.array([0.0, 1.0]))
        if abs(ahead[2] - origin[2]) < 1e-9:
            return goal
        s = (rim - origin[2]) / (ahead[2] - origin[2])
        return origin + s * (ahead - origin) if s > 0 else goal

    def object_hang(self, points_norm: np.ndarray, obs: dict[str, Any]) -> float:
        """How far the object to be grasped reaches below the fingers, from the pick query's depth.

        The grasp height (the lifted final point less ``grasp_depth``) minus the surface it stands on
        (a low percentile of the surface heights in a window around the point, the gripper's own
        pixels left out), capped at ``max_hang``.  A carton grasped near its top hangs a hand's width
        below the fingers; carried at the fingers' clearance it sweeps through a basket's wall.
        """
        c = self.cfg
        pts = self._drop_start(points_norm, obs)
        world, valid = self.lift(pts[-1:], obs)
        if not valid[0] or c.container_window <= 0:
            return 0.0
        cam, _ = self.camera(obs)
        surface = self._surface_around(cam.normalized_to_pixels(pts[-1:])[0], obs)
        if surface is None or len(surface[1]) < 8:
            return 0.0
        around = surface[1]
        support = float(np.percentile(around[:, 2], 5))
        grasp_z = self._z(float(world[0, 2]) - c.grasp_depth)
        return float(np.clip(grasp_z - support, 0.0, c.max_hang))

    def place_plan(self, points_norm: np.ndarray, obs: dict[str, Any], hang: float = 0.0) -> list[Target]:
        """Carry (gripper closed) along the path at the current height, lower above its last point, open, retreat.

        ``hang`` (:meth:`object_hang` of the pick) raises the carry height so the bottom of the held
        object, not the fingers, clears the target by ``clearance``."""
        world, valid = self.lift(self._drop_start(points_norm, obs), obs)
        if not valid[-1]:
            raise BridgeError("no valid depth at the trajectory's final point (the place target)")
        pts = world[valid]
        goal = self._container_goal(self._drop_start(points_norm, obs)[-1], pts[-1], obs)
        c = self.cfg
        eef_z = float(np.asarray(obs["state"]["eef_pos"])[2])
        carry_z = max(eef_z, goal[2] + c.place_height + c.clearance + max(0.0, float(hang)))
        release = np.array([goal[0], goal[1], self._z(goal[2] + c.place_height)])
        targets = [
            Target(np.array([p[0], p[1], carry_z]), 1.0, c.waypoint_tolerance, label="carry", speed=c.carry_speed)
            for p in pts[:-1]
        ]
        targets += [
            Target(
                np.array([goal[0], goal[1], carry_z]), 1.0, c.waypoint_tolerance, label="above", speed=c.carry_speed
            ),
            Target(release, 1.0, c.final_tolerance, label="lower", speed=c.carry_speed),
            Target(release, -1.0, c.final_tolerance, hold=c.release_steps, label="open"),
            Target(np.array([goal[0], goal[1], carry_z]), -1.0, c.waypoint_tolerance, label="retreat"),
        ]
        return targets
