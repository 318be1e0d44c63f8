"""Differential IK: an end-effector pose target -> joint position targets for the arm's servos.

Damped least squares on the EEF site Jacobian (``mj_jacSite``), iterated a few times on a
scratch ``MjData`` so 5 cm / 0.5 rad steps land accurately, with a nullspace pull towards
the home posture (keeps the redundant 7th DoF from drifting into joint limits) and
targets clipped to the joint ranges.
"""

from __future__ import annotations

import mujoco
import numpy as np

from vla_eval.geometry import mat_to_rotvec


class DiffIKController:
    def __init__(
        self,
        model: mujoco.MjModel,
        site: str,
        joints: tuple[str, ...],
        home: np.ndarray,
        damping: float = 0.03,
        iterations: int = 3,
        nullspace_gain: float = 0.2,
        rot_weight: float = 0.5,
    ):
        self.model = model
        self.scratch = mujoco.MjData(model)
        self.site_id = model.site(site).id
        self.qadr = np.array([model.joint(j).qposadr[0] for j in joints])
        self.dofadr = np.array([model.joint(j).dofadr[0] for j in joints])
        ranges = np.array([model.joint(j).range for j in joints])
        margin = 0.01
        self.lo, self.hi = ranges[:, 0] + margin, ranges[:, 1] - margin
        self.home = np.asarray(home, dtype=float)
        self.damping = damping
        self.iterations = iterations
        self.nullspace_gain = nullspace_gain
        self.rot_weight = rot_weight
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))

    def solve(self, qpos: np.ndarray, target_pos: np.ndarray, target_mat: np.ndarray) -> np.ndarray:
        """Joint targets for the arm that put the site at ``target_pos`` / ``target_mat``, starting from ``qpos``."""
        m, d = self.model, self.scratch
        d.qpos[:] = qpos
        q = d.qpos[self.qadr].copy()
        n = len(q)
        w = np.array([1, 1, 1, self.rot_weight, self.rot_weight, self.rot_weight])
        for _ in range(self.iterations):
            d.qpos[self.qadr] = q
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            pos = d.site_xpos[self.site_id]
            mat = d.site_xmat[self.site_id].reshape(3, 3)
            err = np.concatenate([target_pos - pos, mat_to_rotvec(target_mat @ mat.T)]) * w
            mujoco.mj_jacSite(m, d, self._jacp, self._jacr, self.site_id)
            jac = np.vstack([self._jacp[:, self.dofadr], self._jacr[:, self.dofadr]]) * w[:, None]
            jjt = jac @ jac.T + (self.damping**2) * np.eye(6)
            dq = jac.T @ np.linalg.solve(jjt, err)
            pinv = jac.T @ np.linalg.solve(jjt, np.eye(6))
            dq += (np.eye(n) - pinv @ jac) @ (self.nullspace_gain * (self.home - q))
            q = np.clip(q + dq, self.lo, self.hi)
        return q
