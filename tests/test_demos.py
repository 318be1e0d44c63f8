"""record-demos: robomimic/LIBERO-layout HDF5 files whose actions are the ones the env executed."""

import json

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from vla_eval.cli.main import main  # noqa: E402
from vla_eval.execution.plan import episode_seed  # noqa: E402
from vla_eval.sims.tabletop.env import TabletopEnv  # noqa: E402


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    out = tmp_path_factory.mktemp("demos")
    assert (
        main(
            [
                "record-demos",
                "--suite",
                "tabletop_basic",
                "--policy",
                "scripted",
                "--episodes",
                "2",
                "-o",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    return out


def test_layout_matches_libero_keys(demos):
    files = sorted(p.name for p in demos.glob("*.hdf5"))
    assert files == ["open_drawer_demo.hdf5", "pick_place_cube_demo.hdf5", "push_block_demo.hdf5"]
    with h5py.File(demos / "push_block_demo.hdf5", "r") as f:
        data = f["data"]
        assert data.attrs["num_demos"] == 2
        demo = data["demo_0"]
        n = int(demo.attrs["num_samples"])
        assert demo["actions"].shape == (n, 7)
        assert demo["obs/agentview_rgb"].shape == (n, 128, 128, 3) and demo["obs/agentview_rgb"].dtype == np.uint8
        assert demo["obs/eye_in_hand_rgb"].shape == (n, 128, 128, 3)
        for key, width in (("ee_pos", 3), ("ee_ori", 4), ("ee_states", 7), ("gripper_states", 2), ("joint_states", 7)):
            assert demo[f"obs/{key}"].shape == (n, width)
        assert demo["dones"][-1] == 1 and demo["dones"][:-1].sum() == 0
        assert json.loads(data.attrs["problem_info"])["split"] == "in_domain"
        assert data.attrs["total"] == sum(int(data[k].attrs["num_samples"]) for k in data)


def test_demo_layouts_are_disjoint_from_the_evaluation_plan(demos):
    with h5py.File(demos / "pick_place_cube_demo.hdf5", "r") as f:
        seeds = {int(f["data"][k].attrs["seed"]) for k in f["data"]}
    assert seeds == {episode_seed(1000, "pick_place_cube", i) for i in range(2)}
    assert not seeds & {episode_seed(0, "pick_place_cube", i) for i in range(50)}


@pytest.mark.slow
def test_replaying_recorded_actions_reproduces_the_success(demos):
    """Independent of the recorder: open-loop replay of the stored actions on a fresh env must succeed."""
    with h5py.File(demos / "pick_place_cube_demo.hdf5", "r") as f:
        demo = f["data/demo_1"]
        actions, seed, first = demo["actions"][()], int(demo.attrs["seed"]), demo["obs/agentview_rgb"][0]
        ee = demo["obs/ee_pos"][()]
    env = TabletopEnv("pick_place_cube")
    obs, info = env.reset(seed=seed)
    np.testing.assert_array_equal(obs["images"]["agentview"], first)
    for t, a in enumerate(actions):
        np.testing.assert_allclose(obs["state"]["eef_pos"], ee[t], atol=1e-6)
        obs, _, _, _, info = env.step(a)
    env.close()
    assert info["success"]


def test_unknown_split_is_a_clear_error(tmp_path, capsys):
    assert main(["record-demos", "--episodes", "1", "--split", "nope", "-o", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "in_domain" in err


def test_action_noise_keeps_clean_labels_beside_executed_actions(tmp_path):
    assert main(["record-demos", "--episodes", "2", "--action-noise", "0.1", "-o", str(tmp_path), "--no-progress"]) == 0
    with h5py.File(tmp_path / "open_drawer_demo.hdf5", "r") as f:
        demo = f["data/demo_0"]
        diff = np.abs(demo["executed_actions"][()] - demo["actions"][()])
        seed, executed = int(demo.attrs["seed"]), demo["executed_actions"][()]
        assert json.loads(f["data"].attrs["env_args"])["action_noise"]["sigma"] == 0.1
    assert diff[:, [0, 1, 2, 5]].max() > 0.01
    assert diff[:, [3, 4, 6]].max() == 0.0
    env = TabletopEnv("open_drawer")  # the executed actions, replayed, reach the same success
    env.reset(seed=seed)
    for a in executed:
        _, _, _, _, info = env.step(a)
    env.close()
    assert info["success"]
