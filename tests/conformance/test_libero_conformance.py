"""``vla-eval conformance`` on real LIBERO (libero_spatial, first task, one episode per adapter): the oracle
of each adapter solves what the expert solves through the adapter's real path, and a VLA-R1 declared
``libero_rot180`` (the wrong view for a model trained on upright images) fails at preprocess.

Slow: LIBERO renders a few steps per second here; one episode per run, fast render quality, the
cameras the adapter reads."""

from __future__ import annotations

import pytest

from vla_eval.conformance.run import ConformanceRequest, run_conformance

pytestmark = pytest.mark.slow

TASK = ["pick_up_the_black_bowl_between_the_plate_and_the_ramekin_and_place_it_on_the_plate"]


@pytest.fixture(scope="module", autouse=True)
def _needs_libero():
    pytest.importorskip("libero")
    pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    return tmp_path_factory.mktemp("oracle_checkpoints")


def _run(tmp_path, ckpts, policy, args=()):
    return run_conformance(
        ConformanceRequest(
            suite="libero_spatial",
            policy=policy,
            out_dir=tmp_path / "conf",
            episodes=1,
            tasks=TASK,
            policy_args=list(args),
            checkpoint_dir=ckpts,
        )
    )


@pytest.mark.parametrize("policy", ["vla_r1", "openvla", "pi0_remote"])
def test_oracle_matches_expert_on_libero_spatial(tmp_path, ckpts, policy):
    rep = _run(tmp_path, ckpts, policy)
    assert rep.rows[0].expert_success == 1, "the expert itself must solve this episode"
    assert rep.passed, rep.markdown()


def test_vla_r1_shown_libero_rot180_fails_at_preprocess(tmp_path, ckpts):
    rep = _run(tmp_path, ckpts, "vla_r1", ["image_orientation=libero_rot180"])
    assert not rep.passed and rep.failing_stage() == "preprocess", rep.markdown()


OBJECT_TASKS = [
    "pick_up_the_cream_cheese_and_place_it_in_the_basket",
    "pick_up_the_orange_juice_and_place_it_in_the_basket",
]


def test_vla_r1_oracle_puts_a_flat_box_and_a_tall_carton_in_the_basket(tmp_path, ckpts):
    """libero_object, episode 0 of two tasks the planner bridge used to lose: the cream cheese's first grasp
    closes on nothing (the bridge must notice and ask again), the orange juice carton hangs 10 cm below the
    fingers (the carry must clear the basket's wall with the carton, not with the fingers)."""
    rep = run_conformance(
        ConformanceRequest(
            suite="libero_object",
            policy="vla_r1",
            out_dir=tmp_path / "conf",
            episodes=1,
            tasks=OBJECT_TASKS,
            checkpoint_dir=ckpts,
        )
    )
    assert [r.expert_success for r in rep.rows] == [1, 1]
    assert [r.oracle_success for r in rep.rows] == [1, 1], rep.markdown()
