"""Every SimplerEnv success threshold, checked from both sides on hand-built states.

The expected thresholds are SimplerEnv's (simpler-env/ManiSkill2_real2sim
``mani_skill2_real2sim/envs/custom_scenes/*.py``), written here as literals rather than
imported from the env, so a changed constant in the env fails these tests:

* grasp_single_in_scene.py: lifted latch at dz > 0.01 while grasped and touching nothing
  but the robot; success also after >= 5 (cumulative) steps lifted > 0.02.
* move_near_in_scene.py: near = xy distance < both bbox half-diagonals + 0.10; moved > 0.03.
* open_drawer_in_scene.py: open >= 0.15, close <= 0.05.
* place_in_closed_drawer_in_scene.py: second subtask, drawer >= 0.05, apple touched the drawer.
* put_on_in_scene.py: xy within the target's bbox half-diagonal + 0.003, z gap <= 0.02
  (eggplant 0.06); carrot / cubes must touch nothing but robot or target; spoon / eggplant
  have no contact test.
"""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from vla_eval.sims.simpler.env import SimplerEnv

EPS = 0.0015
NOOP_ABS = np.array([0, 0, 0, 0, 0, 0, -1], dtype=np.float32)


@pytest.fixture
def env_of():
    envs = []

    def make(task: str, config_id: int = 0) -> SimplerEnv:
        env = SimplerEnv(task, cameras=())
        env.reset(seed=0, options={"config_id": config_id})
        envs.append(env)
        return env

    yield make
    for env in envs:
        env.close()


def put(env: SimplerEnv, name: str, pos, quat=None) -> None:
    m, d = env.model, env.data
    body = m.body(name)
    if body.jntnum[0] > 0:
        adr = m.jnt_qposadr[body.jntadr[0]]
        d.qpos[adr : adr + 3] = pos
        if quat is not None:
            d.qpos[adr + 3 : adr + 7] = quat
        d.qvel[m.jnt_dofadr[body.jntadr[0]] : m.jnt_dofadr[body.jntadr[0]] + 6] = 0
    else:
        m.body_pos[body.id] = pos
    mujoco.mj_forward(m, d)


def set_joint(env: SimplerEnv, joint: str, q: float) -> None:
    env.data.qpos[env.model.joint(joint).qposadr[0]] = q
    mujoco.mj_forward(env.model, env.data)


def park_arm_high(env: SimplerEnv) -> None:
    """Arm joints far from the table so the hand touches nothing during hand-built states."""
    env.data.qpos[env._arm_qadr] = env._home_qpos[:7]
    mujoco.mj_forward(env.model, env.data)


# -------------------------------------------------------------- coke can
def test_coke_can_lift_latch_needs_grasp_and_1cm_clear(env_of, monkeypatch):
    env = env_of("google_pick_coke_can_standing")
    z0 = env._init_xyz["coke_can"].copy()
    monkeypatch.setattr(env, "is_grasped", lambda name: True)
    put(env, "coke_can", z0 + [0, 0, 0.01 - EPS])
    assert not env._evaluate()
    put(env, "coke_can", z0 + [0, 0, 0.01 + EPS])
    assert env._evaluate() and env._stats["lifted_object"]
    put(env, "coke_can", z0 + [0, 0, 0.003])  # still grasped: the latch holds even when lowered
    assert env._evaluate()
    monkeypatch.setattr(env, "is_grasped", lambda name: False)
    assert not env._evaluate()  # released: latch cleared, fewer than 5 significant lifts


def test_coke_can_not_lifted_while_touching_something_else(env_of, monkeypatch):
    env = env_of("google_pick_coke_can_standing")
    z0 = env._init_xyz["coke_can"].copy()
    monkeypatch.setattr(env, "is_grasped", lambda name: True)
    put(env, "coke_can", z0 + [0, 0, 0.015])
    monkeypatch.setattr(env, "_touching_other", lambda name, allowed: True)
    assert not env._evaluate() and not env._stats["lifted_object"]


def test_coke_can_five_cumulative_significant_lifts_count_after_release(env_of, monkeypatch):
    env = env_of("google_pick_coke_can_standing")
    z0 = env._init_xyz["coke_can"].copy()
    grasp = {"on": True}
    monkeypatch.setattr(env, "is_grasped", lambda name: grasp["on"])
    put(env, "coke_can", z0 + [0, 0, 0.02 - EPS])  # lifted (> 1 cm) but not significantly (> 2 cm)
    for _ in range(6):
        env._evaluate()
    assert env._stats["n_lift_significant"] == 0
    for k in range(4):  # 4 significant steps, interrupted (cumulative, not consecutive)
        put(env, "coke_can", z0 + [0, 0, 0.02 + EPS])
        env._evaluate()
        put(env, "coke_can", z0 + [0, 0, 0.015])
        env._evaluate()
    grasp["on"] = False
    put(env, "coke_can", z0)
    assert not env._evaluate()  # 4 < 5
    grasp["on"] = True
    put(env, "coke_can", z0 + [0, 0, 0.02 + EPS])
    env._evaluate()
    grasp["on"] = False
    put(env, "coke_can", z0)
    assert env._evaluate() and env._stats["n_lift_significant"] == 5  # dropped, but lifted 5 times


# -------------------------------------------------------------- move near
def _move_near_state(env, dist, other_dist=None):
    """Source at ``dist`` from the target, on the side away from the third object."""
    rule = env.rule
    src, tgt, other = rule["object"], rule["target"], rule["others"][0]
    tgt_xy = env._init_xyz[tgt][:2]
    oth_xy = env._init_xyz[other][:2]
    away = (tgt_xy - oth_xy) / np.linalg.norm(tgt_xy - oth_xy)
    xy = tgt_xy + away * dist
    put(env, src, [xy[0], xy[1], env._init_xyz[src][2]])
    if other_dist is not None:
        o = xy + (oth_xy - xy) / np.linalg.norm(oth_xy - xy) * other_dist
        put(env, other, [o[0], o[1], env._init_xyz[other][2]])
    return src, tgt


def test_move_near_distance_threshold_is_half_diagonals_plus_10cm(env_of):
    env = env_of("google_move_near", config_id=12)  # 7up can / apple / sponge
    park_arm_high(env)
    src, tgt = env.rule["object"], env.rule["target"]
    limit = np.linalg.norm(env._init_half[src][:2]) + np.linalg.norm(env._init_half[tgt][:2]) + 0.10
    _move_near_state(env, limit - EPS)
    assert env._evaluate() and env._stats["near_tgt_obj"]
    _move_near_state(env, limit + EPS)
    assert not env._evaluate() and not env._stats["near_tgt_obj"]


def test_move_near_moved_more_than_3cm_and_closest(env_of):
    env = env_of("google_move_near", config_id=12)
    park_arm_high(env)
    src = env.rule["object"]
    start = env._init_xyz[src].copy()
    put(env, src, start + [0.03 - EPS, 0, 0])
    env._evaluate()
    assert not env._stats["moved_correct_obj"]
    put(env, src, start + [0.03 + EPS, 0, 0])
    env._evaluate()
    assert env._stats["moved_correct_obj"]
    # closest: distance to target < distance to any other object + 1 cm
    _move_near_state(env, 0.12, other_dist=0.12 - 0.01 + EPS)
    env._evaluate()
    assert env._stats["is_closest_to_tgt"]
    _move_near_state(env, 0.12, other_dist=0.12 - 0.01 - EPS)
    env._evaluate()
    assert not env._stats["is_closest_to_tgt"]


def test_move_near_reads_centres_of_mass_where_simplerenv_does_and_origins_elsewhere():
    """move_near_in_scene.py evaluate: the source-target distance (L419), the source's distance to the others (L434)
    and the source's and target's height drop (L387-392) use centre-of-mass poses; how far each object moved and the
    others' heights use actor origins, as do the after-settle positions. Objects here are 1 cm from their origins."""
    from vla_eval.sims.simpler.rules import near_evaluate

    half = {n: np.array([0.03, 0.03, 0.06]) for n in ("src", "tgt", "other")}
    init = {"src": np.array([0.0, 0.0, 0.9]), "tgt": np.array([0.3, 0.0, 0.9]), "other": np.array([0.0, 0.3, 0.9])}
    limit = 2 * np.linalg.norm([0.03, 0.03]) + 0.10
    # the source carried towards the target: its centre of mass 1 mm inside the near limit, its origin 1 mm outside
    pos = {**init, "src": np.array([0.3 - limit - 0.009, 0.0, 0.9])}
    com = {**pos, "src": pos["src"] + [0.01, 0.0, 0.0]}
    assert not near_evaluate(pos, init, half, "src", "tgt")[1]["near_tgt_obj"]
    ok, stats = near_evaluate(pos, init, half, "src", "tgt", com=com)
    assert ok and stats["near_tgt_obj"] and stats["moved_correct_obj"]
    # the others' origins, not their centres of mass, count for "closest"
    com_other = {**com, "other": pos["src"] + [0.0, 0.01, 0.0]}
    assert near_evaluate(pos, init, half, "src", "tgt", com=com_other)[1]["is_closest_to_tgt"]
    # the target's height drop is measured at its centre of mass against its settled origin
    sunk = {**com, "tgt": init["tgt"] - [0.0, 0.0, 0.151]}
    assert not near_evaluate(pos, init, half, "src", "tgt", com=sunk)[1]["all_obj_keep_height"]
    sunk_origin = {**pos, "other": init["other"] - [0.0, 0.0, 0.021]}
    assert not near_evaluate(sunk_origin, init, half, "src", "tgt", com=com)[1]["all_obj_keep_height"]


def test_move_near_other_object_must_keep_height_within_2cm(env_of):
    env = env_of("google_move_near", config_id=12)
    park_arm_high(env)
    src, tgt = _move_near_state(env, 0.1)
    other = env.rule["others"][0]
    z0 = env._init_xyz[other]
    put(env, other, z0 - [0, 0, 0.02 - EPS])
    assert env._evaluate()
    put(env, other, z0 - [0, 0, 0.02 + EPS])
    assert not env._evaluate() and not env._stats["all_obj_keep_height"]


# ---------------------------------------------------------------- drawers
@pytest.mark.parametrize(
    "task,joint,threshold,opens",
    [
        ("google_open_top_drawer", "top_drawer_slide", 0.15, True),
        ("google_open_bottom_drawer", "bottom_drawer_slide", 0.15, True),
        ("google_close_middle_drawer", "middle_drawer_slide", 0.05, False),
    ],
)
def test_drawer_thresholds(env_of, task, joint, threshold, opens):
    env = env_of(task)
    set_joint(env, joint, threshold + EPS)
    assert env._evaluate() is opens
    set_joint(env, joint, threshold - EPS)
    assert env._evaluate() is (not opens)


def test_close_drawer_starts_open_at_20cm(env_of):
    env = env_of("google_close_top_drawer")
    assert float(env.data.qpos[env.model.joint("top_drawer_slide").qposadr[0]]) == pytest.approx(0.2, abs=0.01)


# ------------------------------------------------------------ apple drawer
def _apple_on_drawer_floor(env):
    floor = env.model.geom("top_drawer_floor").id
    top = env.data.geom_xpos[floor].copy()
    top[2] += env.model.geom_size[floor][2] + env.scene.object("apple").size[0] - 0.001  # 1 mm into the floor
    put(env, "apple", top)


def test_apple_needs_second_subtask_open_drawer_and_contact(env_of):
    env = env_of("google_place_apple_in_closed_top_drawer")
    park_arm_high(env)
    assert env.instruction == "open top drawer" and not env.is_final_subtask()
    set_joint(env, "top_drawer_slide", 0.2)
    _apple_on_drawer_floor(env)
    assert not env._evaluate()  # first subtask: never a success
    assert env._stats["has_contact"] == 1
    env.advance_to_next_subtask()
    assert env.instruction == "place apple into top drawer" and env.is_final_subtask()
    assert env._evaluate()
    put(env, "apple", [0.45, -0.3, 0.2])  # lifted away again: the contact already happened (cumulative)
    assert env._evaluate()
    set_joint(env, "top_drawer_slide", 0.05 - EPS)
    assert not env._evaluate()
    set_joint(env, "top_drawer_slide", 0.05 + EPS)
    assert env._evaluate()


def test_apple_without_drawer_contact_fails(env_of):
    env = env_of("google_place_apple_in_closed_top_drawer")
    park_arm_high(env)
    env.advance_to_next_subtask()
    set_joint(env, "top_drawer_slide", 0.2)
    put(env, "apple", [0.45, -0.3, 0.2])
    assert not env._evaluate() and env._stats["has_contact"] == 0


@pytest.mark.slow
def test_apple_instruction_switches_at_step_100(env_of):
    env = env_of("google_place_apple_in_closed_top_drawer")
    noop = np.zeros(7, dtype=np.float32)  # relative gripper: no change
    for _ in range(100):
        obs, *_ = env.step(noop)
    assert obs["instruction"] == "open top drawer"
    obs, *_ = env.step(noop)  # SimplerEnv advances before the step once 100 steps are done
    assert obs["instruction"] == "place apple into top drawer"


# ------------------------------------------------------------------ bridge
def _held_over_target(env, src, tgt, dxy, gap):
    """``src`` held in the air over ``tgt`` (no contacts): centre offset ``dxy``, bbox gap ``gap``."""
    park_arm_high(env)
    p_tgt = env.data.xpos[env.model.body(tgt).id].copy()
    z = p_tgt[2] + env._init_half[tgt][2] + env._init_half[src][2] + gap
    put(env, src, [p_tgt[0] + dxy[0], p_tgt[1] + dxy[1], z])


@pytest.mark.parametrize(
    "task,src,tgt",
    [
        ("bridge_put_carrot_on_plate", "carrot", "plate"),
        ("bridge_stack_green_on_yellow", "green_cube", "yellow_cube"),
        ("bridge_put_spoon_on_towel", "spoon", "towel"),
    ],
)
def test_bridge_xy_within_half_diagonal_plus_3mm_and_2cm_gap(env_of, task, src, tgt):
    env = env_of(task)
    reach = float(np.linalg.norm(env._init_half[tgt][:2])) + 0.003
    u = np.array([0.6, 0.8])
    _held_over_target(env, src, tgt, u * (reach - EPS / 3), 0.01)
    assert env._evaluate()
    _held_over_target(env, src, tgt, u * (reach + EPS / 3), 0.01)
    assert not env._evaluate()
    _held_over_target(env, src, tgt, (0, 0), 0.02 - EPS)
    assert env._evaluate()
    _held_over_target(env, src, tgt, (0, 0), 0.02 + EPS)
    assert not env._evaluate()


def test_eggplant_gap_limit_is_6cm(env_of):
    env = env_of("bridge_put_eggplant_in_basket")
    park_arm_high(env)
    basket = env.data.xpos[env.model.body("basket").id]
    floor_top = basket[2] + env.task.fixture_sizes["basket"][2]
    half = env._init_half["eggplant"][2]
    put(env, "eggplant", [basket[0], basket[1], floor_top + half + 0.06 - EPS])
    assert env._evaluate()
    put(env, "eggplant", [basket[0], basket[1], floor_top + half + 0.06 + EPS])
    assert not env._evaluate()


def test_carrot_touching_the_table_fails_but_spoon_has_no_contact_test(env_of):
    """Resting on the table just past the target's edge but inside its bbox diagonal: SimplerEnv
    counts it for the spoon (no contact test) and not for the carrot (touches the table)."""
    for task, src, tgt, expected in (
        ("bridge_put_carrot_on_plate", "carrot", "plate", False),
        ("bridge_put_spoon_on_towel", "spoon", "towel", True),
    ):
        env = env_of(task)
        park_arm_high(env)
        p_tgt = env.data.xpos[env.model.body(tgt).id].copy()
        edge = env.scene.object(tgt).size[0]
        d = (edge + float(np.linalg.norm(env._init_half[tgt][:2]))) / 2 + 0.01
        u = np.array([1.0, 1.0]) / np.sqrt(2)
        put(env, src, [p_tgt[0] + u[0] * d, p_tgt[1] + u[1] * d, env._init_half[src][2] - 0.0005], (1, 0, 0, 0))
        assert env._evaluate() is expected, task
