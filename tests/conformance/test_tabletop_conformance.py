"""``vla-eval conformance`` on the built-in tabletop: each adapter's oracle matches the expert through the
adapter's real path, and a deliberately broken convention fails and names the stage that broke."""

from __future__ import annotations

import pytest

from vla_eval.cli.main import main
from vla_eval.conformance.run import ConformanceRequest, run_conformance

pytest.importorskip("vla_eval.sims.tabletop.env")
pytest.importorskip("transformers")

TASK = ["pick_place_cube"]


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    return tmp_path_factory.mktemp("oracle_checkpoints")


def _run(tmp_path, ckpts, policy, args=(), tasks=TASK, episodes=1, mutate=None):
    return run_conformance(
        ConformanceRequest(
            suite="tabletop_basic",
            policy=policy,
            out_dir=tmp_path / "conf",
            episodes=episodes,
            tasks=tasks,
            policy_args=list(args),
            checkpoint_dir=ckpts,
            mutate=mutate,
        )
    )


def test_vla_r1_oracle_through_the_real_adapter_matches_the_expert(tmp_path, ckpts):
    rep = _run(tmp_path, ckpts, "vla_r1")
    assert rep.passed, rep.markdown()
    row = rep.rows[0]
    assert row.oracle_success == row.expert_success == 1
    assert row.outputs_checked >= 2 and row.parse_failures == 0 and row.bridge_failures == 0  # pick and place queries
    assert (tmp_path / "conf" / "oracle" / "run.json").is_file() and (tmp_path / "conf" / "conformance.json").is_file()


def test_vla_r1_affordance_variant_parses_and_runs(tmp_path, ckpts):
    rep = _run(tmp_path, ckpts, "vla_r1", ["prompt=affordance"])
    row = rep.rows[0]
    assert row.outputs_checked >= 2 and row.parse_failures == 0 and row.bridge_failures == 0, rep.markdown()


def test_vla_r1_shown_a_mirrored_image_fails_at_preprocess_with_exit_1(tmp_path, ckpts, capsys):
    code = main(
        [
            "conformance",
            "--suite",
            "tabletop_basic",
            "--policy",
            "vla_r1",
            "--episodes",
            "1",
            "--tasks",
            *TASK,
            "--policy-arg",
            "image_orientation=libero_rot180",
            "--out-dir",
            str(tmp_path / "conf"),
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL" in out and "stage 'preprocess'" in out


def test_openvla_oracle_tokens_through_the_real_decoder_match_the_expert(tmp_path, ckpts):
    rep = _run(tmp_path, ckpts, "openvla")
    assert rep.passed, rep.markdown()
    assert rep.rows[0].action_mismatches == 0


def test_openvla_with_a_flipped_gripper_convention_fails_at_convert(tmp_path, ckpts):
    rep = _run(tmp_path, ckpts, "openvla", ["gripper=close_01"])  # OpenVLA emits 1 = open (open_01)
    assert not rep.passed and rep.failing_stage() == "convert"
    assert rep.rows[0].action_mismatches > 0


def test_openpi_oracle_server_through_the_real_remote_client_matches_the_expert(tmp_path, ckpts):
    rep = _run(tmp_path, ckpts, "pi0_remote")
    assert rep.passed, rep.markdown()


def test_remote_client_sending_the_wrong_observation_layout_fails_at_preprocess(tmp_path, ckpts):
    def vla_eval_layout(args):  # our own layout instead of openpi's observation/image, observation/state keys
        args["obs"] = {**args["obs"], "kind": "vla_eval"}

    rep = _run(tmp_path, ckpts, "pi0_remote", mutate=vla_eval_layout)
    assert not rep.passed and rep.failing_stage() == "preprocess", rep.markdown()
