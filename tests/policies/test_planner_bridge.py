"""2D -> 3D -> motion bridge on synthetic cameras with analytic depth."""

from __future__ import annotations

import numpy as np
import pytest
from scene import BOX_CENTER, BOX_HALF, intrinsics, look_at, make_obs, simulate, to_opengl

from vla_eval.policies.image_preprocess import ImagePreprocess
from vla_eval.policies.planner_bridge import (
    BridgeConfig,
    BridgeError,
    CameraModel,
    PlanFollower,
    PlannerBridge,
    sample_depth,
)
from vla_eval.policies.vla_r1 import ImagePlannerPolicy, PlannerSettings


@pytest.mark.parametrize("convention", ["opencv", "opengl"])
def test_unproject_inverts_project(convention):
    rng = np.random.default_rng(1)
    T = look_at([1.0, 0.3, 0.8], [0.5, 0.0, 0.0])
    if convention == "opengl":
        T = to_opengl(T)
    cam = CameraModel(intrinsics(96, 128), T, width=128, height=96, convention=convention)
    pts = rng.uniform([0.2, -0.4, 0.0], [0.8, 0.4, 0.3], size=(50, 3))
    uv, z = cam.project(pts)
    assert np.all(z > 0)
    np.testing.assert_allclose(cam.unproject(uv, z), pts, atol=1e-10)
    # both conventions describe the same physical camera: same pixels
    other = CameraModel(
        cam.intrinsics,
        to_opengl(T) if convention == "opencv" else look_at([1.0, 0.3, 0.8], [0.5, 0.0, 0.0]),
        128,
        96,
        "opengl" if convention == "opencv" else "opencv",
    )
    np.testing.assert_allclose(other.project(pts)[0], uv, atol=1e-9)


def test_project_known_point_hits_principal_point():
    T = look_at([0, 0, 1.0], [0, 0, 0], up=(0, 1, 0))
    cam = CameraModel(intrinsics(64, 64), T, 64, 64)
    uv, z = cam.project(np.array([[0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(uv, [[32, 32]])
    assert z[0] == pytest.approx(1.0)


@pytest.mark.parametrize("convention", ["opencv", "opengl"])
def test_lift_recovers_surface_points(convention):
    obs, cam = make_obs(convention=convention)
    bridge = PlannerBridge(BridgeConfig(depth_window=0))
    table_pts = np.array([[0.4, -0.2, 0.0], [0.6, 0.2, 0.0], [0.5, 0.0, 0.0]])
    box_top = BOX_CENTER + [0, 0, BOX_HALF]
    pts = np.vstack([table_pts, box_top])
    uv, _ = cam.project(pts)
    world, valid = bridge.lift(cam.pixels_to_normalized(uv), obs)
    assert valid.all()
    # error bounded by sampling the depth at the pixel centre (sub-pixel offset on a tilted plane)
    np.testing.assert_allclose(world, pts, atol=6e-3)


def test_sample_depth_window_ignores_invalid_and_outside():
    d = np.full((10, 10), 2.0)
    d[5, 5] = np.nan
    d[4, 4] = 0.0
    out = sample_depth(d, np.array([[5.5, 5.5], [-1.0, 3.0], [100.0, 2.0]]), radius=1)
    assert out[0] == 2.0 and np.isnan(out[1]) and np.isnan(out[2])
    assert np.isnan(sample_depth(np.full((4, 4), np.nan), np.array([[1.0, 1.0]]))[0])


def test_missing_depth_is_a_clear_error():
    obs, _ = make_obs()
    del obs["depth"]
    with pytest.raises(BridgeError, match="depth=True"):
        PlannerBridge().lift(np.array([[0.5, 0.5]]), obs)


def test_pick_plan_reaches_box_closes_and_lifts():
    obs, cam = make_obs()
    cfg = BridgeConfig()
    bridge = PlannerBridge(cfg)
    start = obs["state"]["eef_pos"]
    path3d = np.linspace(start, BOX_CENTER + [0, 0, BOX_HALF], 5)
    uv, _ = cam.project(path3d)
    follower = PlanFollower(bridge.pick_plan(cam.pixels_to_normalized(uv), obs), cfg)
    eef = np.array(start, dtype=float)
    grip_closed_at = None
    for t in range(400):
        a = follower.step(eef)
        if a is None:
            break
        assert np.all(np.abs(a[:3]) <= 1.0) and np.all(a[3:6] == 0)
        if a[6] > 0 and grip_closed_at is None:
            grip_closed_at = eef.copy()
        eef = eef + a[:3] * cfg.position_scale
    assert follower.done
    assert follower.trace[-4:] == ["hover", "descend", "close", "lift"]
    grasp_target = BOX_CENTER + [0, 0, BOX_HALF - cfg.grasp_depth]
    assert np.linalg.norm(grip_closed_at - grasp_target) < 0.012
    assert eef[2] > BOX_CENTER[2] + 0.1  # lifted


class _Fixed:
    """A text source that answers with the projection of a 3D path (what an ideal VLA-R1 would say)."""

    def __init__(self, texts):
        self.texts = list(texts)
        self.prompts: list[str] = []

    def __call__(self, obs_batch, prompts):
        self.prompts += prompts
        return [self.texts.pop(0) for _ in obs_batch]


def _format_traj(points_norm) -> str:
    body = ", ".join(f"[{x:.4f}, {y:.4f}]" for x, y in points_norm)
    return f"<think>The gripper should move to the cube.</think><output>[{body}]</output>"


def test_planner_policy_text_to_grasp_with_flipped_preprocessing():
    """Coordinates answered on a 180°-flipped, cropped image are mapped back before lifting."""
    obs, cam = make_obs()
    pre = ImagePreprocess(flip_180=True, center_crop_area=0.81, resize=(64, 64))
    target = BOX_CENTER + [0, 0, BOX_HALF]
    uv, _ = cam.project(np.vstack([obs["state"]["eef_pos"], target]))
    model_xy = pre.from_source_coords(cam.pixels_to_normalized(uv), (cam.height, cam.width))
    src = _Fixed([_format_traj(model_xy)])
    policy = ImagePlannerPolicy(PlannerSettings(image=pre), text_source=src)
    policy.reset([obs["instruction"]])
    eef, actions, extras = simulate(policy, obs, 150)
    assert extras[0]["parse_failure"] == 0 and extras[0]["bridge_failure"] == 0
    assert "cube" in extras[0]["reasoning"]
    assert src.prompts[0].startswith("pick up the cube Please output the optimal trajectory")
    assert all(e == {} for e in extras[1:])  # one query; the rest is closed-loop following
    assert max(a[6] for a in actions) == 1.0 and eef[2] > 0.12


def test_planner_policy_parse_failure_holds_then_requeries():
    obs, cam = make_obs()
    uv, _ = cam.project((BOX_CENTER + [0, 0, BOX_HALF])[None])
    good = _format_traj(cam.pixels_to_normalized(uv))
    src = _Fixed(["I refuse to answer in the format.", good])
    policy = ImagePlannerPolicy(PlannerSettings(retry_after_steps=3), text_source=src)
    policy.reset([obs["instruction"]])
    _, actions, extras = simulate(policy, obs, 10)
    assert extras[0]["parse_failure"] == 1 and "no <output>" in extras[0]["parse_error"]
    assert all(np.all(a[:6] == 0) and a[6] == -1 for a in actions[:3])  # holds still, gripper open
    queried = [i for i, e in enumerate(extras) if e]
    assert queried == [0, 3] and extras[3]["parse_failure"] == 0


def test_affordance_variant_and_max_queries():
    obs, cam = make_obs()
    uv, _ = cam.project((BOX_CENTER + [0, 0, BOX_HALF])[None])
    x, y = cam.pixels_to_normalized(uv)[0]
    src = _Fixed([f'<output>{{"x": {x:.4f}, "y": {y:.4f}, "width": 0.05, "height": 0.05}}</output>'])
    policy = ImagePlannerPolicy(PlannerSettings(prompt="affordance"), text_source=src)
    policy.reset([obs["instruction"]])
    eef, actions, extras = simulate(policy, obs, 120)
    assert extras[0]["parse_failure"] == 0 and "affordance region" in src.prompts[0]
    assert eef[2] > 0.12 and actions[-1][6] == 1.0

    bad = _Fixed(["nope"] * 10)
    policy = ImagePlannerPolicy(PlannerSettings(max_queries=2, retry_after_steps=1), text_source=bad)
    policy.reset(["x"])
    _, _, extras = simulate(policy, obs, 10)
    assert sum(e.get("parse_failure", 0) for e in extras) == 2


def test_pick_place_two_queries():
    obs, cam = make_obs()
    pick = BOX_CENTER + [0, 0, BOX_HALF]
    place = np.array([0.5, -0.15, 0.0])
    uv, _ = cam.project(np.vstack([pick, place]))
    xy = cam.pixels_to_normalized(uv)
    src = _Fixed([_format_traj(xy[:1]), _format_traj(xy[1:])])
    policy = ImagePlannerPolicy(
        PlannerSettings(task_mode="pick_place", place_instruction="place it: {instruction}"), text_source=src
    )
    policy.reset([obs["instruction"]])
    eef, actions, extras = simulate(policy, obs, 300)
    assert [e["stage"] for e in extras if e] == ["pick", "place"]
    assert src.prompts[1].startswith("place it: pick up the cube")
    assert actions[-1][6] == -1.0  # released
    assert np.linalg.norm(eef[:2] - place[:2]) < 0.02


# ------------------------------------------------------------------ placing into a container

BASKET_C, BASKET_HALF, BASKET_RIM, BASKET_WALL, BASKET_FLOOR = np.array([0.55, 0.05]), 0.06, 0.07, 0.008, 0.005


def _height(x, y, container: bool):
    """Heightfield of the table (z=0) with an open box (basket) or a flat plate on it."""
    ax, ay = np.abs(x - BASKET_C[0]), np.abs(y - BASKET_C[1])
    outer = (ax <= BASKET_HALF) & (ay <= BASKET_HALF)
    if not container:
        return np.where(outer, 0.01, 0.0)
    inner = (ax <= BASKET_HALF - BASKET_WALL) & (ay <= BASKET_HALF - BASKET_WALL)
    return np.where(inner, BASKET_FLOOR, np.where(outer, BASKET_RIM, 0.0))


def _ray_marched_obs(container: bool, h: int = 128, w: int = 128):
    """Optical-axis depth by marching each pixel's ray through the heightfield (1 mm steps)."""
    T = look_at([0.05, 0.05, 0.55], [0.55, 0.05, 0.0])
    K = intrinsics(h, w)
    cam = CameraModel(K, T, w, h)
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    uv = np.column_stack([u.ravel(), v.ravel()])
    origin = cam.unproject(uv, np.zeros(len(uv)))
    step = cam.unproject(uv, np.ones(len(uv))) - origin  # world motion per unit optical depth
    depth = np.full(len(uv), np.nan)
    d = np.zeros(len(uv))
    for _ in range(1500):
        p = origin + step * d[:, None]
        hit = np.isnan(depth) & (p[:, 2] <= _height(p[:, 0], p[:, 1], container))
        depth[hit] = d[hit]
        d = d + 0.001 / np.linalg.norm(step, axis=1)
    obs = {
        "images": {"agentview": np.zeros((h, w, 3), np.uint8)},
        "depth": {"agentview": depth.reshape(h, w).astype(np.float32)},
        "camera_params": {"agentview": {"intrinsics": K, "extrinsics": T, "convention": "opencv"}},
        "state": {"eef_pos": np.array([0.35, -0.25, 0.25])},
        "instruction": "put it in the basket",
    }
    return obs, cam


@pytest.mark.parametrize("container", [True, False])
def test_place_goal_is_the_opening_centre_for_a_container_and_the_surface_otherwise(container):
    obs, cam = _ray_marched_obs(container)
    top = BASKET_RIM if container else 0.01
    target = np.array([[BASKET_C[0], BASKET_C[1], top]])  # what an ideal model points at: the centre, seen from above
    uv, _ = cam.project(target)
    norm = cam.pixels_to_normalized(uv)
    bridge = PlannerBridge(BridgeConfig())
    lifted, _ = bridge.lift(norm, obs)
    if container:
        # the ray through the rim-plane centre continues to the floor, centimetres past the centre: the old goal
        assert np.linalg.norm(lifted[0, :2] - BASKET_C) > 0.03 and lifted[0, 2] < 0.02
    plan = bridge.place_plan(norm, obs)
    release = next(t for t in plan if t.label == "open").pos
    assert np.linalg.norm(release[:2] - BASKET_C) < 0.01  # over the opening's centre
    assert release[2] == pytest.approx(top + BridgeConfig().place_height, abs=0.01)
    carry = next(t for t in plan if t.label == "above").pos
    assert carry[2] >= top + BridgeConfig().place_height + BridgeConfig().clearance - 1e-9


def test_one_tall_neighbour_does_not_make_a_plate_a_container():
    obs, cam = _ray_marched_obs(False)
    depth = obs["depth"]["agentview"].copy()
    uv, _ = cam.project(np.array([[BASKET_C[0], BASKET_C[1], 0.01]]))
    r = int(uv[0, 1])
    depth[: r - 3, :] *= 0.8  # everything beyond the plate's centre row rises (a box behind the plate)
    obs["depth"]["agentview"] = depth
    bridge = PlannerBridge(BridgeConfig())
    goal, _ = bridge.lift(cam.pixels_to_normalized(uv), obs)
    assert np.allclose(bridge._container_goal(cam.pixels_to_normalized(uv)[0], goal[0], obs), goal[0])


# ------------------------------------------------------------------ grasp check, held object, step budget


def test_missed_grasp_is_asked_again_once_then_the_place_stage_follows():
    """Fingers that close on nothing (gripper_qpos ~ 0 after the pick) make the planner ask for the pick
    again instead of carrying an empty gripper to the target; after ``regrasp_attempts`` it goes on."""
    obs, cam = make_obs()
    obs["state"] = dict(obs["state"], gripper_qpos=np.array([0.0005, -0.0005]))
    pick = BOX_CENTER + [0, 0, BOX_HALF]
    uv, _ = cam.project(np.vstack([pick, [0.5, -0.15, 0.0]]))
    xy = cam.pixels_to_normalized(uv)
    src = _Fixed([_format_traj(xy[:1]), _format_traj(xy[:1]), _format_traj(xy[1:])])
    policy = ImagePlannerPolicy(PlannerSettings(task_mode="pick_place"), text_source=src)
    policy.reset([obs["instruction"]])
    _, _, extras = simulate(policy, obs, 400)
    assert [e["stage"] for e in extras if "stage" in e] == ["pick", "pick", "place"]
    assert sum(e.get("missed_grasp", 0) for e in extras) == 1

    held = dict(obs, state=dict(obs["state"], gripper_qpos=np.array([0.02, -0.02])))  # something between the fingers
    src = _Fixed([_format_traj(xy[:1]), _format_traj(xy[1:])])
    policy = ImagePlannerPolicy(PlannerSettings(task_mode="pick_place"), text_source=src)
    policy.reset([obs["instruction"]])
    _, _, extras = simulate(policy, held, 400)
    assert [e["stage"] for e in extras if "stage" in e] == ["pick", "place"]
    assert not any(e.get("missed_grasp") for e in extras)


def test_carry_height_clears_the_bottom_of_the_held_object():
    """A box grasped grasp_depth below its top reaches (top - grasp_depth - table) below the fingers;
    the place carry is raised by that much so the box's bottom, not the fingers, clears the target."""
    obs, cam = make_obs()
    cfg = BridgeConfig()
    bridge = PlannerBridge(cfg)
    top = BOX_CENTER + [0, 0, BOX_HALF]
    uv, _ = cam.project(top[None])
    hang = bridge.object_hang(cam.pixels_to_normalized(uv), obs)
    assert hang == pytest.approx(2 * BOX_HALF - cfg.grasp_depth, abs=0.005)
    place = np.array([0.5, -0.15, 0.0])
    uvp, _ = cam.project(place[None])
    # carried low (5 cm), so the clearance rule, not the current height, sets the carry
    carried = dict(obs, state=dict(obs["state"], eef_pos=np.array([0.45, -0.1, 0.05])))
    above = {
        h: next(t for t in bridge.place_plan(cam.pixels_to_normalized(uvp), carried, h) if t.label == "above").pos
        for h in (0.0, hang)
    }
    assert above[0.0][2] == pytest.approx(cfg.place_height + cfg.clearance, abs=0.005)
    assert above[hang][2] == pytest.approx(cfg.place_height + cfg.clearance + hang, abs=0.005)


def test_a_long_move_is_not_cut_short_and_a_blocked_target_is_given_up():
    cfg = BridgeConfig()
    from vla_eval.policies.planner_bridge import Target

    far = Target(np.array([0.5, 0.0, 0.2]), 1.0, cfg.waypoint_tolerance, label="above")
    low = Target(np.array([0.5, 0.0, 0.05]), 1.0, cfg.final_tolerance, label="lower")
    follower = PlanFollower([far, low], cfg)
    eef = np.array([0.0, 0.0, 0.2])
    arrived_at = None
    for t in range(400):  # an arm that makes 6 mm per step, slower than commanded (LIBERO's OSC while carrying)
        a = follower.step(eef)
        if follower.trace and arrived_at is None:
            arrived_at = eef.copy()
        if a is None:
            break
        d = a[:3] * cfg.position_scale
        eef = eef + d * min(1.0, 0.006 / (np.linalg.norm(d) or 1.0))
    assert arrived_at is not None and np.linalg.norm(arrived_at - far.pos) <= cfg.waypoint_tolerance + 0.006

    follower = PlanFollower([low, far], cfg)
    stuck = np.array([0.5, 0.0, 0.12])  # resting on something 7 cm above the target
    steps = 0
    while not follower.trace:
        follower.step(stuck)
        steps += 1
    assert follower.trace == ["lower"] and steps <= cfg.stall_steps + 2
