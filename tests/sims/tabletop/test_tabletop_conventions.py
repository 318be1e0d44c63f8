"""Tabletop conventions a policy depends on: ``eef_quat`` order, and success thresholds.

``eef_quat`` is checked against MuJoCo's own body quaternion composed with the site's
model quaternion, and against the site's rotation matrix, by rotating vectors with the
quaternion formula written out here. Success predicates are probed just inside and just
outside each threshold, with the thresholds written here as the product states them
(scene files: push_block in_region radius 0.05 m, resting within 1 cm of its rest height;
pick_place_cube on the plate's 0.07 m footprint; open_drawer slide >= 0.12 m), so doubling
a radius or moving a threshold in the code or in a scene file fails a test.
"""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from vla_eval.sims.tabletop.env import TabletopEnv


def rotate_wxyz(q, v):
    w, u = q[0], np.asarray(q[1:], dtype=np.float64)
    return v + 2 * w * np.cross(u, v) + 2 * np.cross(u, np.cross(u, v))


def hamilton(a, b):
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ]
    )


@pytest.fixture
def env_factory():
    made = []

    def make(scene):
        env = TabletopEnv(scene, cameras=(), image_size=(32, 32))
        made.append(env)
        return env

    yield make
    for env in made:
        env.close()


def test_eef_quat_is_wxyz_of_the_eef_site(env_factory):
    env = env_factory("pick_place_cube")
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(15):  # rotate away from the symmetric start pose
        obs, *_ = env.step(np.array([*rng.uniform(-0.3, 0.3, 3), *rng.uniform(-1, 1, 3), -1], np.float32))
    q = obs["state"]["eef_quat"].astype(np.float64)
    assert abs(np.linalg.norm(q) - 1) < 1e-5
    m, d = env.model, env.data
    site = m.site("eef").id
    body_q = d.xquat[m.site_bodyid[site]]  # MuJoCo's own world quaternion of the body (wxyz)
    site_q = hamilton(body_q, m.site_quat[site])
    assert min(np.abs(q - site_q).max(), np.abs(q + site_q).max()) < 1e-5
    mat = d.site_xmat[site].reshape(3, 3)
    for v in np.eye(3):
        np.testing.assert_allclose(rotate_wxyz(q, v), mat @ v, atol=1e-5)
    # a generic orientation: read as xyzw the same numbers would rotate differently
    wrong = q[[1, 2, 3, 0]]
    assert max(np.abs(rotate_wxyz(wrong, v) - mat @ v).max() for v in np.eye(3)) > 0.05
    np.testing.assert_allclose(obs["state"]["eef_pos"], d.site_xpos[site], atol=1e-6)


def _place(env, joint, pos):
    adr = env.model.joint(joint).qposadr[0]
    env.data.qpos[adr : adr + 3] = pos
    env.data.qpos[adr + 3 : adr + 7] = [1, 0, 0, 0]
    env.data.qvel[:] = 0
    mujoco.mj_forward(env.model, env.data)
    return bool(env.predicate(env.data))


RADIUS_PUSH, REST_PUSH = 0.05, 0.025 + 0.01


@pytest.mark.parametrize(
    "dx,z,ok",
    [
        (0.0, 0.025, True),
        (RADIUS_PUSH - 0.002, 0.025, True),
        (RADIUS_PUSH + 0.002, 0.025, False),
        (0.0, REST_PUSH - 0.002, True),
        (0.0, REST_PUSH + 0.002, False),
    ],
)
def test_push_block_region_boundary(env_factory, dx, z, ok):
    env = env_factory("push_block")
    env.reset(seed=0)
    target = env.data.xpos[env.model.body("target").id].copy()
    assert _place(env, "blue_block_joint", [target[0] + dx * 0.6, target[1] + dx * 0.8, z]) is ok


RADIUS_PLATE = 0.07
PLATE_TOP, CUBE_HALF = 0.012, 0.02


@pytest.mark.parametrize("dx,ok", [(0.0, True), (RADIUS_PLATE - 0.003, True), (RADIUS_PLATE + 0.003, False)])
def test_cube_on_plate_footprint_boundary(env_factory, dx, ok):
    env = env_factory("pick_place_cube")
    env.reset(seed=0)
    plate = env.data.xpos[env.model.body("plate").id].copy()
    # resting on the plate top (1 mm interpenetration so MuJoCo reports the contact)
    assert _place(env, "red_cube_joint", [plate[0] + dx, plate[1], PLATE_TOP + CUBE_HALF - 0.001]) is ok


def test_cube_above_plate_without_contact_is_not_on_it(env_factory):
    env = env_factory("pick_place_cube")
    env.reset(seed=0)
    plate = env.data.xpos[env.model.body("plate").id].copy()
    assert not _place(env, "red_cube_joint", [plate[0], plate[1], PLATE_TOP + CUBE_HALF + 0.03])


def test_cube_beside_plate_on_the_table_is_not_on_it(env_factory):
    env = env_factory("pick_place_cube")
    env.reset(seed=0)
    plate = env.data.xpos[env.model.body("plate").id].copy()
    assert not _place(env, "red_cube_joint", [plate[0] + 0.2, plate[1], CUBE_HALF - 0.001])


DRAWER_OPEN = 0.12


@pytest.mark.parametrize(
    "q,ok", [(0.0, False), (DRAWER_OPEN - 0.002, False), (DRAWER_OPEN, True), (DRAWER_OPEN + 0.002, True)]
)
def test_drawer_threshold_boundary(env_factory, q, ok):
    env = env_factory("open_drawer")
    env.reset(seed=0)
    env.data.qpos[env.model.joint("drawer_slide").qposadr[0]] = q
    mujoco.mj_forward(env.model, env.data)
    assert bool(env.predicate(env.data)) is ok


def test_env_reports_the_predicate_every_step(env_factory):
    env = env_factory("open_drawer")
    env.reset(seed=0)
    adr = env.model.joint("drawer_slide").qposadr[0]
    env.data.qpos[adr] = DRAWER_OPEN - 0.01
    _, _, terminated, _, info = env.step(np.array([0, 0, 0, 0, 0, 0, -1], np.float32))
    assert not info["success"] and not terminated
    env.data.qpos[adr] = DRAWER_OPEN + 0.01
    _, _, terminated, _, info = env.step(np.array([0, 0, 0, 0, 0, 0, -1], np.float32))
    assert info["success"] and terminated
