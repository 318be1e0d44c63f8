"""``--policy lerobot`` with LeRobot's real classes at random init, served from the managed ``lerobot`` environment.

The environment is built once, outside the tests (``.ci/run`` runs ``vla-eval env create lerobot --path
.venv-lerobot``; by hand: the same command); every test here skips, saying why, when it is not built.  The tiny
ACT and Diffusion folders are made once per session inside that environment (tests/policies/lerobot_tiny.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from vla_eval import environments
from vla_eval.cli.main import main
from vla_eval.store import RunStore

HERE = Path(__file__).resolve().parent
MAX_STEPS = 12


@pytest.fixture(scope="session")
def lerobot_python() -> Path:
    try:
        python = environments.python_for("lerobot")
    except environments.EnvironmentNotBuilt as exc:
        pytest.skip(f"the lerobot environment is not built: {exc}")
    code = "import importlib.util as u; raise SystemExit(any(u.find_spec(m) is None for m in ('lerobot', 'torch')))"
    if subprocess.run([str(python), "-c", code], env=environments.interpreter_env()).returncode != 0:
        pytest.skip(f"{python} has no lerobot (a failed build?); rebuild it with: vla-eval env create lerobot")
    return python


def _in_env(python: Path, code: str, timeout: float = 300) -> str:
    proc = subprocess.run(
        [str(python), "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environments.interpreter_env({"PYTHONPATH": f"{environments.harness_pythonpath()}:{HERE}"}),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="session")
def lerobot_ckpts(lerobot_python, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("lerobot_ckpts")
    _in_env(lerobot_python, f"import lerobot_tiny, pathlib; [lerobot_tiny.build(k, pathlib.Path({str(out)!r}) / k) "
            "for k in ('act', 'diffusion')]")
    ckpts = {k: out / k for k in ("act", "diffusion")}
    for path in ckpts.values():
        assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
        assert (path / "policy_preprocessor.json").is_file() and (path / "policy_postprocessor.json").is_file()
    return ckpts


def test_mapping_matches_lerobot_own_libero_pipeline(lerobot_python):
    """LeRobot's preprocess_observation + LiberoProcessorStep on a raw LIBERO observation == the harness's
    orientation conversion + build_inputs on the same observation (images, state, task)."""
    out = _in_env(
        lerobot_python,
        """
import numpy as np, torch
from lerobot.envs.utils import preprocess_observation
from lerobot.processor.env_processor import LiberoProcessorStep
from vla_eval.policies.lerobot_features import FeatureMapping, build_inputs, check_features
from vla_eval.sims.orientation import conversion

rng = np.random.default_rng(1)
agent, wrist = (rng.integers(0, 255, (24, 24, 3), dtype=np.uint8) for _ in range(2))  # LIBERO raw: rows bottom-up
pos = np.array([0.05, -0.1, 1.0]); grip = np.array([0.039, -0.039])
q_wxyz = np.array([-0.3, 0.5, 0.6, 0.0]); q_wxyz[3] = np.sqrt(1 - (q_wxyz[:3] ** 2).sum())  # w < 0
q_xyzw = np.roll(q_wxyz, -1)  # robosuite's eef quaternion order
raw = {"pixels": {"image": agent[None], "image2": wrist[None]},
       "robot_state": {"eef": {"pos": pos[None], "quat": q_xyzw[None], "mat": np.eye(3)[None]},
                       "gripper": {"qpos": grip[None], "qvel": np.zeros((1, 2))},
                       "joints": {"pos": np.zeros((1, 7)), "vel": np.zeros((1, 7))}}}
theirs = LiberoProcessorStep().observation(preprocess_observation(raw))

conv = conversion("bottom_left", "libero_rot180")
obs = {"images": {"agentview": conv.image(agent), "wrist": conv.image(wrist)},
       "state": {"eef_pos": pos, "eef_quat": q_wxyz, "gripper_qpos": grip}, "instruction": "x"}
feats = {"observation.images.image": {"type": "VISUAL", "shape": [3, 24, 24]},
         "observation.images.image2": {"type": "VISUAL", "shape": [3, 24, 24]},
         "observation.state": {"type": "STATE", "shape": [8]}}
ours = build_inputs(obs, FeatureMapping(), check_features(FeatureMapping(), feats, "t"), feats)
for key in feats:
    np.testing.assert_allclose(ours[key], theirs[key][0].numpy(), rtol=1e-5, atol=1e-6, err_msg=key)
print("ok", theirs["observation.state"][0].tolist())
""",
    )
    assert out.strip().splitlines()[-1].startswith("ok")


def test_slots_keep_their_own_queues_and_noise(lerobot_python, lerobot_ckpts):
    """Two episodes interleaved in one policy give exactly what each gives alone (ACT's action queue, Diffusion's
    observation history and its sampled noise are per slot)."""
    out = _in_env(
        lerobot_python,
        f"""
import numpy as np
from vla_eval.policies.lerobot import LeRobotPolicy

def obs(t, k):
    rng = np.random.default_rng(100 * k + t)
    return {{"images": {{c: rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for c in ("agentview", "wrist")}},
            "state": {{"eef_pos": rng.normal(size=3), "eef_quat": np.array([1.0, 0, 0, 0]),
                      "gripper_qpos": np.zeros(2)}}, "instruction": "go"}}

for kind in ("act", "diffusion"):
    p = LeRobotPolicy(path={str(lerobot_ckpts["act"].parent)!r} + "/" + kind, device="cpu")
    alone = {{}}
    for k, seed in ((0, 5), (1, 6)):
        p.reset(["go"], [seed], slots=[k])
        alone[k] = [p.predict([obs(t, k)], slots=[k]).actions[0, 0] for t in range(7)]
    p.reset(["go", "go"], [5, 6], slots=["a", "b"])
    mixed = {{0: [], 1: []}}
    for t in range(7):
        order = [("a", 0), ("b", 1)] if t % 2 else [("b", 1), ("a", 0)]
        if t == 3:  # one slot alone in a call, the other skips a turn
            order = order[:1]
        for slot, k in order:
            mixed[k].append(p.predict([obs(len(mixed[k]), k)], slots=[slot]).actions[0, 0])
    for k in (0, 1):
        n = len(mixed[k])
        assert np.allclose(np.array(mixed[k]), np.array(alone[k][:n])), (kind, k)
    assert not np.allclose(alone[0], alone[1]), kind
print("ok")
""",
    )
    assert out.strip().splitlines()[-1] == "ok"  # LeRobot prints its own lines before


def _mini_suite(tmp_path: Path) -> Path:
    suite = tmp_path / "mini.yaml"
    suite.write_text(
        yaml.safe_dump(
            {
                "name": "mini",
                "backend": "tabletop",
                "tasks": ["pick_place_cube"],
                "episodes_per_task": 1,
                "max_steps": MAX_STEPS,
                "cameras": ["agentview", "wrist"],
                "image_size": [64, 64],
                "splits": [{"name": "in_domain"}],
            }
        )
    )
    return suite


def _run_and_check(run_dir: Path, suite: str, ckpt: Path, capfd, steps: int) -> dict:
    rc = main(
        [
            "run", "--suite", suite, "--policy", "lerobot", "--policy-arg", f"path={ckpt}",
            "--workers", "1", "--run-dir", str(run_dir), "--no-progress",
        ]
    )  # fmt: skip
    err = capfd.readouterr().err
    assert rc == 0, err[-2000:]
    with RunStore(run_dir, readonly=True) as store:
        recs = list(store.records())
    assert recs and all(r.termination != "policy_error" and r.error is None for r in recs), [r.error for r in recs]
    assert all(r.steps == steps and r.policy_calls == steps for r in recs)  # one select_action per env step
    meta = json.loads((run_dir / "run.json").read_text())
    env = meta["policy_environment"]
    assert env["name"] == "lerobot" and env["versions"]["lerobot"] == environments.LEROBOT_VERSION
    if env["managed"]:  # the harness cannot import lerobot: served from the environment, and said so
        assert meta["policy_server"] == "auto" and "serving it from" in err
        assert Path(env["python"]) == environments.python_for("lerobot")
    return meta


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["act", "diffusion"])
def test_run_tabletop_from_its_own_environment(kind, lerobot_ckpts, tmp_path, capfd):
    pytest.importorskip("vla_eval.sims.tabletop.env")
    _run_and_check(tmp_path / "run", str(_mini_suite(tmp_path)), lerobot_ckpts[kind], capfd, MAX_STEPS)


@pytest.mark.slow
def test_run_libero_cut(lerobot_ckpts, tmp_path, capfd):
    pytest.importorskip("libero")
    from vla_eval.spec import load_suite

    data = load_suite("libero_spatial").model_dump(mode="json")
    data["tasks"] = data["tasks"][:1]
    data["splits"] = data["splits"][:1]
    data.update(episodes_per_task=1, image_size=[64, 64], max_steps=MAX_STEPS)
    for t in data["tasks"]:
        t.pop("max_steps", None)
    data["backend_options"].pop("task_groups", None)
    suite = tmp_path / "libero_cut.yaml"
    suite.write_text(yaml.safe_dump(data))
    _run_and_check(tmp_path / "run", str(suite), lerobot_ckpts["act"], capfd, MAX_STEPS)


@pytest.mark.slow
def test_serve_relaunches_itself_in_the_environment(lerobot_ckpts, lerobot_python, tmp_path):
    """``vla-eval serve --policy lerobot`` from the harness's interpreter serves from the lerobot environment."""
    if environments.importable_here("lerobot"):
        pytest.skip("lerobot is importable in the harness's own interpreter: nothing to relaunch")
    from vla_eval.remote.client import RemotePolicyClient

    port_file = tmp_path / "port"
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "vla_eval", "serve", "--policy", "lerobot", "--policy-arg",
         f"path={lerobot_ckpts['act']}", "--port", "0", "--port-file", str(port_file)],
        stderr=subprocess.PIPE, text=True, cwd=root,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not port_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-2000:]
            time.sleep(0.1)
        client = RemotePolicyClient(f"ws://127.0.0.1:{port_file.read_text().strip()}", connect_timeout=30)
        meta = client.connect()
        client.close()
        assert meta["policy_name"] == "lerobot" and meta["image_orientation"] == "libero_rot180"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "serving it from" in proc.stderr.read()
