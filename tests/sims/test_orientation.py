"""Image orientation: env-declared origin -> policy-declared orientation, checked against a marker.

The marker's expected pixel comes from MuJoCo's raw camera data and the textbook pinhole model
(``orientation_markers.true_view_pixel``), independent of the module under test.
"""

from __future__ import annotations

import numpy as np
import pytest
from orientation_markers import magenta_centroid, painted, project_with_params, true_view_pixel

from vla_eval.execution.plan import PlanItem
from vla_eval.execution.rollout import EpisodeSettings, run_episode
from vla_eval.policies.base import ActionChunk, Policy
from vla_eval.sims.orientation import conversion, conversion_for
from vla_eval.sims.tabletop.env import TabletopEnv

HW = (96, 96)


def test_conversion_table():
    assert conversion("top_left", "upright").op == "none"
    assert conversion("bottom_left", "upright").op == "flip_rows"  # LIBERO -> true view: a vertical flip only
    assert conversion("bottom_left", "libero_rot180").op == "rot180"  # what OpenVLA / openpi feed their models
    assert conversion("top_left", "libero_rot180").op == "flip_cols"  # rot180(flipud(view)) = fliplr(view)
    with pytest.raises(ValueError, match="sideways"):
        conversion("top_left", "sideways")


def test_intrinsics_follow_the_flipped_pixels():
    K = np.array([[50.0, 0, 30.0], [0, -50.0, 20.0], [0, 0, 1]])
    pc = np.array([0.1, -0.05, 1.3])
    uv = (K @ pc)[:2] / pc[2]
    for conv in (
        conversion("bottom_left", "upright"),
        conversion("bottom_left", "libero_rot180"),
        conversion("top_left", "libero_rot180"),
    ):
        K2 = conv.intrinsics(K, (40, 60))
        uv2 = (K2 @ pc)[:2] / pc[2]
        np.testing.assert_allclose(uv2, conv.point(uv, (40, 60))[0])


@pytest.fixture(scope="module")
def tabletop():
    env = TabletopEnv("pick_place_cube", cameras=("agentview",), image_size=HW, depth=True)
    yield env
    env.close()


def _marker_geoms(model, body: str) -> list[int]:
    bid = model.body(body).id
    return [g for g in range(model.ngeom) if model.geom_bodyid[g] == bid]


def test_tabletop_marker_upright_and_rot180(tabletop):
    env = tabletop
    env.reset(seed=3)
    cid = env.model.camera("agentview").id
    cube = env.data.xpos[env.model.body("red_cube").id].copy()
    with painted(env.model, _marker_geoms(env.model, "red_cube")):
        obs = env._observation()
    expect_u, expect_v = true_view_pixel(env.model, env.data, cid, cube, HW)
    # a physically higher point appears higher in the true view: the projection itself is upright
    _, v_above = true_view_pixel(env.model, env.data, cid, cube + [0, 0, 0.2], HW)
    assert v_above < expect_v

    up = conversion(env.observation_contract.image_origin, "upright").observation(obs)
    u, v, n = magenta_centroid(up["images"]["agentview"])
    assert n > 10 and abs(u - expect_u) < 3 and abs(v - expect_v) < 3, (u, v, expect_u, expect_v)
    # the converted camera parameters project onto the converted image
    pu, pv = project_with_params(up["camera_params"]["agentview"], cube)
    assert abs(pu - expect_u) < 0.5 and abs(pv - expect_v) < 0.5

    rot = conversion(env.observation_contract.image_origin, "libero_rot180").observation(obs)
    u, v, _ = magenta_centroid(rot["images"]["agentview"])
    assert abs(u - (HW[1] - expect_u)) < 3 and abs(v - expect_v) < 3
    np.testing.assert_array_equal(rot["images"]["agentview"], up["images"]["agentview"][:, ::-1])
    pu, pv = project_with_params(rot["camera_params"]["agentview"], cube)
    assert abs(pu - (HW[1] - expect_u)) < 0.5 and abs(pv - expect_v) < 0.5
    np.testing.assert_array_equal(rot["depth"]["agentview"], up["depth"]["agentview"][:, ::-1])


class _Recorder(Policy):
    """Keeps the first observation it is shown; holds still."""

    name = "recorder"

    def __init__(self, orientation: str | None = None, needs_images: bool = True):
        if orientation is not None:
            self.image_orientation = orientation
        self.needs_images = needs_images
        self.seen: list[dict] = []

    def predict(self, obs_batch):
        self.seen.append(obs_batch[0])
        return ActionChunk(actions=np.tile([0, 0, 0, 0, 0, 0, -1.0], (1, 1, 1)))


@pytest.mark.parametrize("orientation,op", [(None, "none"), ("upright", "none"), ("libero_rot180", "flip_cols")])
def test_rollout_feeds_the_declared_orientation_and_records_it(tabletop, orientation, op):
    policy = _Recorder(orientation)
    settings = EpisodeSettings(
        run_id="t", suite="s", max_steps={"t": 1}, settle_steps=0, settle_action=(0, 0, 0, 0, 0, 0, -1)
    )
    rec, ok = run_episode(
        tabletop, policy, PlanItem(task="t", split="in_domain", episode_index=0, init_state_id=0, seed=4), settings
    )
    assert ok and rec.extras["image_conversion"] == f"top_left->{orientation or 'upright'}:{op}"
    tabletop.reset(seed=4)
    raw = tabletop._observation()["images"]["agentview"]
    seen = policy.seen[0]["images"]["agentview"]
    np.testing.assert_array_equal(seen, raw if op == "none" else raw[:, ::-1])


def test_image_free_policies_get_no_conversion(tabletop):
    assert conversion_for(tabletop, _Recorder("libero_rot180", needs_images=False)) is None
