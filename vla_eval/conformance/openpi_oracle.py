"""openpi oracle: a policy server answering like an openpi LIBERO server (``serve_policy.py --env LIBERO``)
with the privileged expert's plan, reached by the real remote client.

The conformance run uses the ordinary ``remote`` adapter with the policy's own config
(``policies/pi0_remote.yaml``: ``openpi_libero`` observation, ``libero_rot180`` images,
10-action chunks of which ``replan_steps = 5`` are executed), so the client builds the
observation exactly as it would for pi0: ``observation/image`` and
``observation/wrist_image`` (224 x 224, converted and padded), ``observation/state`` =
``eef_pos + robosuite axis-angle + gripper_qpos``, ``prompt``.

The server (:class:`OpenpiOracle`, run by :class:`~vla_eval.remote.server.PolicyServer`)
receives that wire message decoded by :func:`~vla_eval.remote.obs_format.decode_obs`.
It *uses* it:

* the robot's own pose comes only from ``observation/state`` (position and the axis-angle
  turned back into a quaternion); the expert steers with it, so a wrongly encoded state
  vector (scipy's folded rotvec, a wrong quaternion order, a swapped gripper) steers wrong;
* the images must be there, ``uint8 224 x 224 x 3`` under both openpi keys, or the request
  fails as a *preprocess* error;
* privileged object poses, which no real model gets, come through the documented side
  channel ``send_privileged: true`` (the request's ``privileged`` entry); the robot's
  pose in it is discarded and replaced by the wire state.

The client is :class:`OracleClient`, the real remote adapter whose side channel also carries
the env's own proprio state; the server rebuilds ``observation/state`` from it as openpi's
client does (:func:`reference_openpi_state`, written independently) and records any
difference as an ``oracle_stage: preprocess`` failure, so the report names it.  An arm that
moved against the commanded displacement between two calls (a flipped action convention)
is recorded as ``convert``.

Chunks: the expert is closed loop, an openpi model answers with a chunk from one
observation.  The oracle rolls the expert forward through a predicted end-effector pose
(commanded delta x the tracking ratio measured between the episode's previous calls; a held
object moves with the gripper), committing the expert's internal state only for the
``replan_steps`` actions the client will execute.  Actions are LIBERO's native space.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from vla_eval.actions.space import LIBERO_DELTA_EEF, ActionChunk
from vla_eval.adapter import Policy, SlotStates
from vla_eval.conformance.keypoints import is_libero
from vla_eval.geometry import mat_to_quat, quat_to_mat, rotvec_to_mat
from vla_eval.remote.obs_format import OPENPI_IMAGE, OPENPI_WRIST
from vla_eval.remote.openpi_policy import RemotePolicy
from vla_eval.sims.libero.expert import ROT_SCALE, LiberoScriptedExpert
from vla_eval.sims.tabletop.expert import ScriptedExpert

POS_SCALE = 0.05
IMAGE_SHAPE = (224, 224, 3)


def reference_openpi_state(eef_pos: np.ndarray, eef_quat_wxyz: np.ndarray, gripper_qpos: np.ndarray) -> np.ndarray:
    """``observation/state`` as openpi's LIBERO client builds it (openpi examples/libero/main.py:
    ``concatenate(robot0_eef_pos, _quat2axisangle(robot0_eef_quat), robot0_gripper_qpos)``, the
    axis-angle copied from robosuite ``transform_utils.quat2axisangle``, quaternion x, y, z, w).

    Written out here, independently of :mod:`vla_eval.remote.obs_format`, which it checks.
    """
    x, y, z, w = (float(v) for v in (eef_quat_wxyz[1], eef_quat_wxyz[2], eef_quat_wxyz[3], eef_quat_wxyz[0]))
    w = min(1.0, max(-1.0, w))
    den = np.sqrt(1.0 - w * w)
    aa = np.zeros(3) if np.isclose(den, 0.0) else np.array([x, y, z]) * 2.0 * np.arccos(w) / den
    return np.concatenate(
        [
            np.asarray(eef_pos, dtype=np.float64).reshape(3),
            aa,
            np.asarray(gripper_qpos, dtype=np.float64).reshape(-1)[:2],
        ]
    )


class OracleClient(RemotePolicy):
    """The real remote adapter, plus the oracle's side channel: the env's own proprio state rides in
    ``privileged['proprio']`` so the server can check the client's ``observation/state`` against
    :func:`reference_openpi_state`.  Everything the adapter sends is built by the adapter."""

    needs_privileged = True

    def predict(self, obs_batch: list[dict[str, Any]], slots=None) -> ActionChunk:
        rows = []
        for o in obs_batch:
            o = dict(o)
            st = o.get("state", {})
            priv = dict(o.get("privileged") or {})
            priv["proprio"] = {
                k: np.asarray(st[k], dtype=np.float64) for k in ("eef_pos", "eef_quat", "gripper_qpos") if k in st
            }
            o["privileged"] = priv
            rows.append(o)
        return super().predict(rows, slots)


class WireError(ValueError):
    """The request does not look like what openpi's LIBERO client sends."""


@dataclass
class _Track:
    last_pos: np.ndarray | None = None
    commanded: np.ndarray | None = None
    ratio: float = 0.6


class OpenpiOracle(Policy):
    """Server-side oracle: the expert's chunks in LIBERO's native action space (module docstring)."""

    name = "openpi_oracle"
    action_space = LIBERO_DELTA_EEF
    needs_images = True
    needs_privileged = True
    slot_aware = True
    image_orientation = "libero_rot180"  # what an openpi LIBERO server expects; the client's config must agree

    def __init__(self, chunk: int = 10, replan_steps: int = 5, check_images: bool = True):
        if not 1 <= replan_steps <= chunk:
            raise ValueError(f"replan_steps {replan_steps} must be in [1, chunk={chunk}]")
        self.chunk, self.replan_steps, self.check_images = int(chunk), int(replan_steps), bool(check_images)
        self.tabletop, self.libero = ScriptedExpert(), LiberoScriptedExpert()
        self._tracks: SlotStates[_Track] = SlotStates(lambda instruction, seed: _Track())

    def reset(self, instructions, seeds=None, slots=None) -> None:
        self.tabletop.reset(instructions, seeds, slots=slots)
        self.libero.reset(instructions, seeds, slots=slots)
        self._tracks.reset(instructions, seeds, slots)

    def release(self, slots) -> None:
        for p in (self.tabletop, self.libero, self._tracks):
            p.release(slots)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "chunk": self.chunk, "replan_steps": self.replan_steps}

    # ---------------------------------------------------------------- the wire
    def _check_wire(self, obs: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        images = obs.get("images", {})
        if self.check_images:
            for key, cam in ((OPENPI_IMAGE, "agentview"), (OPENPI_WRIST, "wrist")):
                img = images.get(cam)
                if img is None:
                    raise WireError(f"request has no {key!r} (openpi's LIBERO client sends it)")
                img = np.asarray(img)
                if img.shape != IMAGE_SHAPE or img.dtype != np.uint8:
                    raise WireError(f"{key!r} is {img.dtype} {img.shape}, openpi expects uint8 {IMAGE_SHAPE}")
        st = obs.get("state")
        if not st or obs.get("wire_state") is None:
            raise WireError(
                "request has no 'observation/state' (openpi's LIBERO layout: observation/image, "
                "observation/wrist_image, observation/state, prompt)"
            )
        if "privileged" not in obs:
            raise WireError("request has no 'privileged' side channel (client send_privileged: true)")
        return np.asarray(st["eef_pos"], dtype=np.float64), np.asarray(st["eef_quat"], dtype=np.float64)

    # ---------------------------------------------------------------- predict
    def predict(self, obs_batch: list[dict[str, Any]], slots=None) -> ActionChunk:
        slots = list(range(len(obs_batch))) if slots is None else list(slots)
        tracks = self._tracks.rows(obs_batch, slots)
        rows, extras = [], []
        for obs, slot, track in zip(obs_batch, slots, tracks):
            pos, quat = self._check_wire(obs)
            ex: dict[str, Any] = {}
            proprio = obs["privileged"].get("proprio")
            wire = obs.get("wire_state")
            if proprio and wire is not None and {"eef_pos", "eef_quat", "gripper_qpos"} <= set(proprio):
                ref = reference_openpi_state(proprio["eef_pos"], proprio["eef_quat"], proprio["gripper_qpos"])
                got = np.asarray(wire, dtype=np.float64).reshape(-1)
                if got.shape != ref.shape or not np.allclose(got, ref, atol=1e-3):
                    ex.update(
                        oracle_stage="preprocess",
                        oracle_error=(
                            f"observation/state {np.round(got, 4).tolist()} != openpi's {np.round(ref, 4).tolist()}"
                        ),
                    )
            elif "eef_pos" in obs["privileged"]:
                true_pos = np.asarray(obs["privileged"]["eef_pos"], dtype=np.float64)
                if np.linalg.norm(true_pos - pos) > 2e-3:
                    ex.update(
                        oracle_stage="preprocess",
                        oracle_error=f"observation/state eef_pos {pos.round(4).tolist()} "
                        f"!= true {true_pos.round(4).tolist()}",
                    )
            if (
                track.last_pos is not None
                and track.commanded is not None
                and float(track.commanded @ track.commanded) > 1e-4
            ):
                moved = pos - track.last_pos
                if float(moved @ track.commanded) < -0.25 * float(track.commanded @ track.commanded):
                    ex.setdefault("oracle_stage", "convert")
                    ex.setdefault(
                        "oracle_error",
                        f"the arm moved {moved.round(4).tolist()} after {track.commanded.round(4).tolist()} was sent",
                    )
            self._update_ratio(track, pos)
            rows.append(self._rollout(obs, slot, pos, quat, track))
            extras.append(ex)
        return ActionChunk(actions=np.stack(rows), space=LIBERO_DELTA_EEF, extras=extras)

    def _update_ratio(self, track: _Track, pos: np.ndarray) -> None:
        if track.last_pos is not None and track.commanded is not None:
            cmd = track.commanded
            if float(cmd @ cmd) > 1e-6:
                r = float((pos - track.last_pos) @ cmd / (cmd @ cmd))
                track.ratio = float(np.clip(0.5 * track.ratio + 0.5 * r, 0.2, 1.2))
        track.last_pos = pos.copy()

    def _rollout(self, obs: dict[str, Any], slot: Any, pos: np.ndarray, quat: np.ndarray, track: _Track) -> np.ndarray:
        priv = copy.deepcopy(obs["privileged"])
        libero = is_libero(priv)
        expert = self.libero if libero else self.tabletop
        store = expert._plans if libero else expert._episodes
        state = store.rows([obs], [slot])[0]
        held = self._held_object(priv, libero, pos)
        R = quat_to_mat(quat)
        out = np.zeros((self.chunk, 7))
        real = state
        commanded = np.zeros(3)
        for j in range(self.chunk):
            if j == self.replan_steps:
                state = copy.deepcopy(real)  # beyond the executed part: predict without committing
            o = {"state": {"eef_pos": pos.copy(), "eef_quat": mat_to_quat(R)}, "privileged": priv}
            priv["eef_pos"] = pos.copy()
            if not libero:
                priv["eef_mat"] = R.copy()
            a = expert._act(o, state) if libero else expert._act(priv, state)
            out[j] = a
            step = track.ratio * a[:3] * POS_SCALE
            if j < self.replan_steps:
                commanded += a[:3] * POS_SCALE
            if held is not None and a[6] > 0:
                held(step)
            pos = pos + step
            R = rotvec_to_mat(track.ratio * a[3:6] * ROT_SCALE) @ R
        if self.replan_steps < self.chunk:
            store._by_slot[slot] = real
        track.commanded = commanded
        return out

    @staticmethod
    def _held_object(priv: dict[str, Any], libero: bool, eef: np.ndarray):
        """A function moving the task's object with the gripper in the prediction, if it is near the gripper."""
        if libero:
            goal = [g for g in priv.get("goal", []) if g and str(g[0]).lower() in ("on", "in")]
            if not goal or goal[0][1] not in priv["objects"]:
                return None
            o = priv["objects"][goal[0][1]]
            if np.linalg.norm(np.asarray(o["pos"]) - eef) > 0.12:
                return None

            def move(d):
                for k in ("pos", "bbox_min", "bbox_max"):
                    if k in o:
                        o[k] = np.asarray(o[k], dtype=np.float64) + d

            return move
        task = priv.get("task") or {}
        key = f"{task.get('object')}_pos"
        if key not in priv or np.linalg.norm(np.asarray(priv[key]) - eef) > 0.08:
            return None

        def move_tt(d):
            priv[key] = np.asarray(priv[key], dtype=np.float64) + d

        return move_tt


def start_oracle_server(replan_steps: int = 5, chunk: int = 10, max_batch: int = 8):
    """The oracle behind a real :class:`PolicyServer` on a free loopback port, in this process."""
    from vla_eval.remote.server import PolicyServer

    server = PolicyServer(
        OpenpiOracle(chunk=chunk, replan_steps=replan_steps),
        host="127.0.0.1",
        port=0,
        metadata={"policy_name": "openpi_oracle"},
        max_batch=max_batch,
    )
    server.start_in_thread()
    return server
