"""A synthetic camera over a flat table with one box, with analytic depth: enough geometry to
test the 2D -> 3D bridge without the simulator (the real-env bridge proof runs on the env)."""

from __future__ import annotations

import numpy as np

from vla_eval.policies.planner_bridge import CameraModel


def look_at(eye, target, up=(0, 0, 1)) -> np.ndarray:
    """World-from-camera 4x4 for an OpenCV camera (x right, y down, z forward)."""
    eye, target, up = (np.asarray(v, dtype=float) for v in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    T = np.eye(4)
    T[:3, :3] = np.column_stack([x, y, z])
    T[:3, 3] = eye
    return T


def intrinsics(h: int, w: int, fovy_deg: float = 60.0) -> np.ndarray:
    f = 0.5 * h / np.tan(np.deg2rad(fovy_deg) / 2)
    return np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])


def to_opengl(T_cv: np.ndarray) -> np.ndarray:
    T = T_cv.copy()
    T[:3, :3] = T_cv[:3, :3] @ np.diag([1.0, -1.0, -1.0])
    return T


BOX_CENTER = np.array([0.55, 0.10, 0.025])
BOX_HALF = 0.025
TABLE_Z = 0.0


def render_depth(cam: CameraModel) -> np.ndarray:
    """Optical-axis depth of the table plane z=0 plus the top face of an axis-aligned box."""
    h, w = cam.height, cam.width
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    rays = np.linalg.solve(cam.intrinsics, np.stack([u.ravel(), v.ravel(), np.ones(u.size)]))  # (3, N), z=1
    R = cam.extrinsics[:3, :3] @ (np.eye(3) if cam.convention == "opencv" else np.diag([1.0, -1.0, -1.0]))
    d = R @ rays  # world direction per unit optical depth
    eye = cam.extrinsics[:3, 3]
    depth = (TABLE_Z - eye[2]) / d[2]
    top = BOX_CENTER[2] + BOX_HALF
    s_top = (top - eye[2]) / d[2]
    hit = eye[:, None] + d * s_top
    on_top = (np.abs(hit[0] - BOX_CENTER[0]) <= BOX_HALF) & (np.abs(hit[1] - BOX_CENTER[1]) <= BOX_HALF)
    depth = np.where(on_top, s_top, depth)
    return depth.reshape(h, w).astype(np.float32)


def make_obs(
    h: int = 128, w: int = 128, convention: str = "opencv", eef=(0.45, -0.1, 0.25), instruction="pick up the cube"
):
    T = look_at([1.1, 0.0, 0.7], [0.5, 0.0, 0.0])
    if convention == "opengl":
        T = to_opengl(T)
    cam = CameraModel(intrinsics(h, w), T, width=w, height=h, convention=convention)  # type: ignore[arg-type]
    depth = render_depth(cam)
    rng = np.random.default_rng(0)
    params = {"intrinsics": cam.intrinsics, "extrinsics": cam.extrinsics}
    if convention == "opengl":
        params["convention"] = "opengl"
    obs = {
        "images": {
            "agentview": rng.integers(0, 255, (h, w, 3), dtype=np.uint8),
            "wrist": rng.integers(0, 255, (h, w, 3), dtype=np.uint8),
        },
        "depth": {"agentview": depth},
        "camera_params": {"agentview": params},
        "state": {
            "eef_pos": np.asarray(eef, dtype=float),
            "eef_quat": np.array([0.0, 1.0, 0.0, 0.0]),
            "gripper_qpos": np.array([0.04, -0.04]),
            "joint_pos": np.zeros(7),
        },
        "instruction": instruction,
    }
    return obs, cam


def simulate(
    policy, obs: dict, steps: int, position_scale: float = 0.05
) -> tuple[np.ndarray, list[np.ndarray], list[dict]]:
    """A perfect point-mass EEF: ``eef += action[:3] * scale`` per step. Returns final eef, actions, extras."""
    eef = np.array(obs["state"]["eef_pos"], dtype=float)
    actions, extras = [], []
    for _ in range(steps):
        o = dict(obs)
        o["state"] = dict(obs["state"], eef_pos=eef.copy())
        chunk = policy.predict([o])
        for a in chunk.actions[0]:
            actions.append(a.copy())
            eef = eef + a[:3] * position_scale
        extras.append(chunk.extras[0])
    return eef, actions, extras
