"""The allenai protocol against allenai's own code (PyPI ``vla-eval`` 0.8.0), both ways.

Their package is also imported as ``vla_eval``, so it runs in its own virtual environment, which
a session fixture builds once (``--no-deps`` plus the six packages their protocol, connection and
model-server modules import; about 15 s).  Set ``VLA_EVAL_ALLENAI_VENV`` to an existing one to
reuse it.  Without a registry the tests skip and say why.

* Their ``PredictModelServer`` subclass with a deterministic dummy model, served by their
  ``serve_async``, is evaluated by our ``--policy allenai`` adapter.
* Their ``Connection`` client runs episodes against ``vla-eval serve --protocol allenai``'s server.

Each side checks the actions against the dummy's formula and the episode lifecycle the other
side saw.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vla_eval.policies import POLICIES
from vla_eval.remote.allenai_server import AllenaiPolicyServer

sys.path.insert(0, str(Path(__file__).parent))
from test_allenai_protocol import Recorder, obs

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

REFERENCE = "vla-eval==0.8.0"
PROTOCOL_DEPS = ["anyio>=4", "idna", "sniffio", "typing_extensions", "msgpack", "numpy", "pillow", "websockets>=13"]


def _isolated_env() -> dict[str, str]:
    """No PYTHONPATH: our checkout's ``vla_eval`` must not shadow theirs."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


@pytest.fixture(scope="session")
def allenai_python(tmp_path_factory) -> str:
    existing = os.environ.get("VLA_EVAL_ALLENAI_VENV")
    venv = Path(existing) if existing else tmp_path_factory.mktemp("allenai-venv")
    python = venv / "bin" / "python"
    probe = [
        str(python),
        "-I",
        "-c",
        "import vla_eval, vla_eval.connection, vla_eval.model_servers.serve; print(vla_eval.__version__)",
    ]
    if (
        python.exists()
        and subprocess.run(probe, capture_output=True, text=True, env=_isolated_env()).stdout.strip() == "0.8.0"
    ):
        return str(python)
    # Our pip installs into their interpreter (pip --python): no ensurepip in the new venv, ~3x faster.
    has_pip = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode == 0
    pip = [sys.executable, "-m", "pip", "--python", str(python)] if has_pip else [str(python), "-m", "pip"]
    steps = [
        [sys.executable, "-m", "venv", *(["--without-pip"] if has_pip else []), str(venv)],
        [*pip, "install", "-q", "--disable-pip-version-check", "--no-deps", REFERENCE, *PROTOCOL_DEPS],
    ]
    for cmd in steps:
        r = subprocess.run(cmd, capture_output=True, text=True, env=_isolated_env(), timeout=300)
        if r.returncode != 0:
            reason = f"cannot install allenai's {REFERENCE} into {venv}: {(r.stderr or r.stdout).strip()[-400:]}"
            print(reason, file=sys.stderr)
            pytest.skip(reason)
    r = subprocess.run(probe, capture_output=True, text=True, env=_isolated_env())
    if r.stdout.strip() != "0.8.0":
        pytest.skip(f"allenai's {REFERENCE} installed but does not import: {r.stderr.strip()[-400:]}")
    return str(python)


DUMMY_SERVER = r'''
import json, sys
import anyio
import numpy as np
from vla_eval.model_servers.predict import PredictModelServer
from vla_eval.model_servers.serve import serve_async
from vla_eval.specs import GRIPPER_CLOSE_POS, IMAGE_RGB, LANGUAGE, POSITION_DELTA, ROTATION_AA, STATE_EEF_POS_AA_GRIP

LOG = open(sys.argv[1], "a", buffering=1)


def log(**event):
    LOG.write(json.dumps(event) + "\n")


class Dummy(PredictModelServer):
    """Deterministic: row t of a 2-action chunk is
    [states[0], states[1], mean agentview / 255, mean wrist / 255, len(task), t, +1 if step even else -1]."""

    def __init__(self):
        super().__init__(chunk_size=2)

    def get_observation_params(self):
        return {"send_state": True, "send_wrist_image": True}

    def get_action_spec(self):
        return {"position": POSITION_DELTA, "rotation": ROTATION_AA, "gripper": GRIPPER_CLOSE_POS}

    def get_observation_spec(self):
        return {"agentview": IMAGE_RGB, "wrist": IMAGE_RGB, "language": LANGUAGE, "state": STATE_EEF_POS_AA_GRIP}

    def predict(self, obs, ctx):
        im = obs["images"]
        st = np.asarray(obs["states"], dtype=np.float64)
        log(event="predict", session=ctx.session_id, step=ctx.step, task=obs["task_description"],
            cameras=sorted(im), shape=list(im["agentview"].shape), states=st.tolist())
        row = [st[0], st[1], im["agentview"].mean() / 255, im["wrist"].mean() / 255, len(obs["task_description"])]
        return {"actions": np.array([row + [t, 1.0 if ctx.step % 2 == 0 else -1.0] for t in range(2)])}

    async def on_episode_start(self, config, ctx):
        log(event="episode_start", session=ctx.session_id, task=config.get("task", {}))
        await super().on_episode_start(config, ctx)

    async def on_episode_end(self, result, ctx):
        log(event="episode_end", session=ctx.session_id, result=result)
        await super().on_episode_end(result, ctx)


async def main():
    async with anyio.create_task_group() as tg:
        port = await tg.start(serve_async, Dummy(), "127.0.0.1", 0)
        print(port, flush=True)

anyio.run(main)
'''


def test_their_predict_model_server_is_evaluated_by_our_client(allenai_python, tmp_path):
    script, events = tmp_path / "dummy_server.py", tmp_path / "events.jsonl"
    script.write_text(DUMMY_SERVER)
    proc = subprocess.Popen(
        [allenai_python, "-I", str(script), str(events)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_isolated_env(),
    )
    try:
        port = int(proc.stdout.readline())
        policy = POLICIES.create("allenai", url=f"ws://127.0.0.1:{port}", wait_for_server_s=20)
        episodes = {0: "put the bowl on the plate", 1: "open the top drawer"}
        policy.reset(list(episodes.values()), [1, 2], slots=[0, 1])
        got = []
        for step in range(3):
            batch = [obs(episodes[s], eef=(0.1 * step, 0.2 + s, 0.3)) for s in (0, 1)]
            chunk = policy.predict(batch, slots=[0, 1])
            got.append((batch, chunk.actions[:, 0]))
        assert policy.server_info["model_server"] == "Dummy" and policy.server_info["protocol_version"] == 1
        assert policy.action_space.gripper == "close_positive" and policy.action_space.dim == 7
        policy.reset(["stack the cups"], slots=[0])
        policy.predict([obs("stack the cups")], slots=[0])
        policy.close()
        time.sleep(0.3)
    finally:
        proc.terminate()
        err = proc.communicate(timeout=10)[1]
    # their chunk buffer serves row t of each 2-action chunk; predict sees steps 0 and 2
    for step, (batch, actions) in enumerate(got):
        for s in (0, 1):
            o, a = batch[s], actions[s]
            predicted_at = step - step % 2
            np.testing.assert_allclose(a[:2], [0.1 * predicted_at, 0.2 + s], atol=1e-6)
            np.testing.assert_allclose(a[2], o["images"]["agentview"].mean() / 255, rtol=1e-5)  # png: lossless
            np.testing.assert_allclose(a[3], o["images"]["wrist"].mean() / 255, rtol=1e-5)
            np.testing.assert_allclose(a[4:], [len(episodes[s]), step % 2, 1.0], atol=1e-6)
    log = [json.loads(line) for line in events.read_text().splitlines()]
    by_session: dict[str, list[str]] = {}
    for e in log:
        by_session.setdefault(e["session"], []).append(
            e["event"] if e["event"] != "predict" else f"predict@{e['step']}"
        )
    assert sorted(by_session.values()) == sorted(
        [
            ["episode_start", "predict@0", "predict@2", "episode_end", "episode_start", "predict@0", "episode_end"],
            ["episode_start", "predict@0", "predict@2", "episode_end"],
        ]
    ), err[-2000:]
    starts = [e["task"]["name"] for e in log if e["event"] == "episode_start"]
    assert sorted(starts) == sorted([*episodes.values(), "stack the cups"])
    first = next(e for e in log if e["event"] == "predict")
    assert first["cameras"] == ["agentview", "wrist"] and first["shape"] == [24, 32, 3]
    assert len(first["states"]) == 8 and first["states"][6:] == [0.04, -0.04]
    assert [e["result"] for e in log if e["event"] == "episode_end"].count({"steps": 3}) == 2


THEIR_CLIENT = r"""
import json, sys
import anyio
import numpy as np
from vla_eval.connection import Connection
from vla_eval.specs import (GRIPPER_CLOSE_POS, IMAGE_RGB, LANGUAGE, POSITION_DELTA, ROTATION_AA,
                            STATE_EEF_POS_AA_GRIP, DimSpec, check_specs)


def libero_obs(task, step):
    rng = np.random.default_rng(step)
    return {"images": {"agentview": rng.integers(0, 255, (24, 32, 3), dtype=np.uint8),
                       "wrist": rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)},
            "task_description": task,
            "states": np.array([0.1 * step, 0.2, 0.3, 0.0, 0.0, 0.0, 0.04, -0.04])}


async def main():
    out = {"episodes": []}
    async with Connection(sys.argv[1], timeout=20) as conn:
        info = conn.server_info
        out["server_info"] = {k: v for k, v in info.items() if k in ("model_server", "protocol_version",
                                                                      "observation_params", "capabilities")}
        bench_action = {"position": POSITION_DELTA, "rotation": ROTATION_AA, "gripper": GRIPPER_CLOSE_POS}
        bench_obs = {"agentview": IMAGE_RGB, "wrist": IMAGE_RGB, "language": LANGUAGE, "state": STATE_EEF_POS_AA_GRIP}
        server_action = {k: DimSpec.from_dict(v) for k, v in info["action_spec"].items()}
        server_obs = {k: DimSpec.from_dict(v) for k, v in info["observation_spec"].items()}
        out["spec_warnings"] = check_specs(server_action, bench_action, server_obs, bench_obs)
        for task in ("pick up the black bowl", "open the middle drawer"):
            await conn.start_episode({"task": {"name": task, "seed": 7}})
            actions = []
            for step in range(3):
                a = await conn.act(libero_obs(task, step))
                actions.append(np.asarray(a["actions"]).tolist())
            await conn.end_episode({"metrics": {"success": False}, "steps": 3})
            out["episodes"].append({"task": task, "actions": actions})
    print(json.dumps(out))

anyio.run(main)
"""


def test_their_connection_client_evaluates_our_server(allenai_python, tmp_path):
    policy = Recorder(chunk=2)
    server = AllenaiPolicyServer(policy, port=0, metadata={"policy_name": "recorder"})
    server.start_in_thread()
    script = tmp_path / "their_client.py"
    script.write_text(THEIR_CLIENT)
    try:
        r = subprocess.run(
            [allenai_python, "-I", str(script), server.url],
            capture_output=True,
            text=True,
            env=_isolated_env(),
            timeout=60,
        )
        deadline = time.monotonic() + 5
        while sum(c[0] == "release" for c in policy.calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        server.shutdown()
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["server_info"]["model_server"] == "vla-eval:recorder" and out["server_info"]["protocol_version"] == 1
    assert out["server_info"]["observation_params"] == {
        "send_state": True,
        "send_wrist_image": True,
        "quat_no_antipodal": True,
    }
    assert out["spec_warnings"] == []  # their orchestrator's check finds our specs compatible with LIBERO's
    for ep in out["episodes"]:
        a = np.asarray(ep["actions"])
        # Recorder: [eef_pos, chunk row, predict count, 0, +1]; a chunk of 2 is served over two observations
        np.testing.assert_allclose(a[:, :3], [[0.0, 0.2, 0.3], [0.0, 0.2, 0.3], [0.2, 0.2, 0.3]], atol=1e-6)
        np.testing.assert_allclose(a[:, 3:5], [[0, 0], [1, 0], [0, 1]])
        np.testing.assert_allclose(a[:, 6], 1.0)
    lifecycle = [c[0] if c[0] != "reset" else f"reset:{c[2]}" for c in policy.calls]
    assert lifecycle == [
        "reset:pick up the black bowl",
        "predict",
        "predict",
        "release",
        "reset:open the middle drawer",
        "predict",
        "predict",
        "release",
    ]
    assert {c[3] for c in policy.calls if c[0] == "predict"} == {(24, 32, 3)}
