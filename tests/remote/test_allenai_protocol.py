"""allenai's model-server protocol on our side: frames, the client adapter against our server and
against misbehaving servers, observation conventions, and ``vla-eval serve --protocol allenai``.

The round trip against allenai's own code (their PyPI package) is in test_allenai_reference.py.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest
from websockets.sync.server import serve

from vla_eval.actions.space import ActionChunk, ActionSpace
from vla_eval.adapter import Policy
from vla_eval.policies import POLICIES
from vla_eval.remote import allenai_protocol as ap
from vla_eval.remote.allenai_client import AllenaiReplyError, AllenaiServerError
from vla_eval.remote.allenai_policy import AllenaiConfig, allenai_obs, space_from_spec
from vla_eval.remote.allenai_server import AllenaiPolicyServer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def obs(instruction: str = "put the bowl on the plate", eef=(0.1, 0.2, 0.3), quat=(0.0, 1.0, 0.0, 0.0)) -> dict:
    rng = np.random.default_rng(1)
    return {
        "images": {
            "agentview": rng.integers(0, 255, (24, 32, 3), dtype=np.uint8),
            "wrist": rng.integers(0, 255, (24, 32, 3), dtype=np.uint8),
        },
        "state": {
            "eef_pos": np.asarray(eef, dtype=float),
            "eef_quat": np.asarray(quat, dtype=float),
            "gripper_qpos": np.array([0.04, -0.04]),
        },
        "instruction": instruction,
    }


class Recorder(Policy):
    """Slot-aware and deterministic: action t of a chunk is [eef_pos, t, step, slot-index, +1]."""

    name = "recorder"
    slot_aware = True

    def __init__(self, chunk: int = 1, fail_on: str | None = None):
        self.chunk, self.fail_on = chunk, fail_on
        self.calls: list[tuple] = []
        self.steps: dict = {}

    def reset(self, instructions, seeds=None, slots=None):
        for s, i in zip(slots, instructions):
            self.calls.append(("reset", s, i))
            self.steps[s] = 0

    def release(self, slots):
        self.calls.extend(("release", s) for s in slots)

    def predict(self, obs_batch, slots=None):
        out = np.zeros((len(obs_batch), self.chunk, 7))
        for b, (o, s) in enumerate(zip(obs_batch, slots)):
            if self.fail_on and self.fail_on in o["instruction"]:
                raise RuntimeError("the model cannot do that")
            self.calls.append(("predict", s, o["instruction"], o["images"]["agentview"].shape))
            out[b, :, :3] = o["state"]["eef_pos"]
            out[b, :, 3] = np.arange(self.chunk)
            out[b, :, 4] = self.steps[s]
            out[b, :, 6] = 1.0
            self.steps[s] += 1
        return ActionChunk(actions=out)


@pytest.fixture
def served():
    servers = []

    def start(policy: Policy) -> AllenaiPolicyServer:
        srv = AllenaiPolicyServer(policy, port=0)
        srv.start_in_thread()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.shutdown()


def fake_server(handler):
    """A raw websocket server running ``handler(ws)``; returns (server, url)."""
    srv = serve(handler, "127.0.0.1", 0, compression=None)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"ws://127.0.0.1:{srv.socket.getsockname()[1]}"


def hello_reply(ws, **payload) -> ap.Frame:
    frame = ap.decode_frame(ws.recv())
    assert frame.type is ap.MessageType.HELLO
    ws.send(ap.encode_frame(ap.Frame(ap.MessageType.HELLO, ap.hello_payload(**payload), frame.seq)))
    return frame


# -- frames


def test_frames_carry_png_images_and_ndarrays_with_string_keys():
    img = np.random.default_rng(0).integers(0, 255, (8, 6, 3), dtype=np.uint8)
    state = np.arange(8, dtype=np.float64)
    data = ap.encode_frame(ap.Frame(ap.MessageType.OBSERVATION, {"images": {"agentview": img}, "states": state}, 7))
    raw = msgpack.unpackb(data, raw=False)
    assert set(raw) == {"type", "payload", "seq", "timestamp"} and raw["type"] == "observation" and raw["seq"] == 7
    wire_img = raw["payload"]["images"]["agentview"]
    assert wire_img["__image__"] is True and wire_img["format"] == "png" and wire_img["data"][:4] == b"\x89PNG"
    assert raw["payload"]["states"]["__ndarray__"] is True and raw["payload"]["states"]["shape"] == [8]
    back = ap.decode_frame(data)
    np.testing.assert_array_equal(back.payload["images"]["agentview"], img)  # png is lossless
    np.testing.assert_array_equal(back.payload["states"], state)


def _frame(**over) -> bytes:
    raw = {"type": "action", "payload": {"actions": 1}, "seq": 1, "timestamp": 0.0, **over}
    return msgpack.packb({k: v for k, v in raw.items() if v is not None}, use_bin_type=True)


def _png(w: int, h: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (w, h)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    "data, message",
    [
        (_frame(type="teleport"), "unknown frame type"),
        (_frame(seq=None), "lacks \\['seq'\\]"),
        (_frame(payload=[1, 2]), "payload must be a map"),
        (
            _frame(payload={"actions": {"__ndarray__": True, "data": b"\0" * 8, "dtype": "|O", "shape": [1]}}),
            "not allowed",
        ),
        (
            _frame(payload={"actions": {"__ndarray__": True, "data": b"\0" * 12, "dtype": "<f8", "shape": [7]}}),
            "needs 56 bytes",
        ),
        (_frame(payload={"im": {"__image__": True, "format": "png", "data": b"not a png"}}), "undecodable png"),
        (_frame(payload={"im": {"__image__": True, "format": "png", "data": _png(4, 4)[:30]}}), "png"),
        (_frame(payload={"im": {"__image__": True, "format": "gif", "data": b""}}), "image format must be"),
        (b"\xc1\x00", "malformed msgpack"),
        ("a text frame", "expected a binary frame"),
    ],
)
def test_hostile_frames_raise_a_named_protocol_error(data, message):
    with pytest.raises(ap.AllenaiProtocolError, match=message):
        ap.decode_frame(data)


def test_an_image_claiming_too_many_pixels_is_refused_before_decoding(monkeypatch):
    monkeypatch.setattr(ap, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ap.AllenaiProtocolError, match="exceeds the limit of 100 pixels"):
        ap.decode_frame(_frame(payload={"im": {"__image__": True, "format": "png", "data": _png(20, 20)}}))


# -- observation and action conventions


def test_observation_follows_the_servers_observation_params():
    cfg = AllenaiConfig()
    o = obs(quat=(-0.6, 0.0, 0.8, 0.0))  # w < 0: the two axis-angle conventions differ
    plain = allenai_obs(o, cfg, {}, "go")
    assert set(plain) == {"images", "task_description"} and list(plain["images"]) == ["agentview"]
    assert plain["task_description"] == "go"
    full = allenai_obs(o, cfg, {"send_state": True, "send_wrist_image": True}, "go")
    assert list(full["images"]) == ["agentview", "wrist"] and full["states"].shape == (8,)
    np.testing.assert_allclose(full["states"][:3], [0.1, 0.2, 0.3])
    np.testing.assert_allclose(full["states"][6:], [0.04, -0.04])
    angle_folded = np.linalg.norm(full["states"][3:6])
    robo = allenai_obs(o, cfg, {"send_state": True, "quat_no_antipodal": True}, "go")
    angle_robosuite = np.linalg.norm(robo["states"][3:6])
    assert angle_folded == pytest.approx(2 * np.arccos(0.6)) and angle_robosuite == pytest.approx(2 * np.arccos(-0.6))
    forced = allenai_obs(o, AllenaiConfig(send_state=False, cameras={"wrist": "primary"}), {"send_state": True}, "go")
    assert "states" not in forced and list(forced["images"]) == ["primary"]


def test_action_space_comes_from_the_servers_action_spec_and_policy_args_win():
    spec = {
        "position": ap.dim_spec("position", 3, "delta_xyz", (-1, 1)),
        "rotation": ap.dim_spec("rotation", 3, "euler_xyz"),
        "gripper": ap.dim_spec("gripper", 1, "binary_close_negative", (-1, 1)),
    }
    space = space_from_spec(spec, AllenaiConfig())
    assert (space.kind, space.dim, space.rotation, space.position_units, space.gripper) == (
        "delta_eef",
        7,
        "euler_xyz",
        "normalized",
        "open_positive",
    )
    assert space_from_spec(spec, AllenaiConfig(gripper="close_01")).gripper == "close_01"
    assert space_from_spec({"actions": ap.dim_spec("actions", 0, "raw")}, AllenaiConfig()) == ActionSpace()
    spec["gripper"] = ap.dim_spec("gripper", 1, "continuous_01", (0, 1))
    with pytest.raises(AllenaiReplyError, match="'continuous_01'.*--policy-arg gripper="):
        space_from_spec(spec, AllenaiConfig())


def test_a_url_that_is_not_a_websocket_is_a_one_line_config_error():
    from vla_eval.errors import ConfigError

    with pytest.raises(ConfigError, match="url: .*ws://"):
        POLICIES.create("allenai", url="http://host:8000")


# -- our client against our server


def test_client_and_server_run_episodes_with_the_right_lifecycle_and_actions(served):
    policy = Recorder(chunk=2)
    srv = served(policy)
    client = POLICIES.create("allenai", url=srv.url)
    client.reset(["open the drawer", "close the drawer"], [3, 4], slots=[0, 1])
    seen = []
    for step in range(3):
        chunk = client.predict(
            [obs("open the drawer", eef=(step, 0, 0)), obs("close the drawer", eef=(0, step, 0))], slots=[0, 1]
        )
        assert chunk.actions.shape == (2, 1, 7)
        seen.append(chunk.actions[:, 0])
    # a chunk of 2 is served over two observations: action t of the chunk, one predict per 2 steps
    np.testing.assert_allclose([s[0][:5] for s in seen], [[0, 0, 0, 0, 0], [0, 0, 0, 1, 0], [2, 0, 0, 0, 1]])
    np.testing.assert_allclose([s[1][:5] for s in seen], [[0, 0, 0, 0, 0], [0, 0, 0, 1, 0], [0, 2, 0, 0, 1]])
    assert client.action_space == ActionSpace()  # from the server's action_spec
    assert client.server_info["model_server"] == "vla-eval:recorder"
    client.reset(["stack the blocks"], slots=[0])  # slot 0's next episode: EPISODE_END, then a new episode
    client.predict([obs("stack the blocks")], slots=[0])
    client.close()
    deadline = time.monotonic() + 5
    while sum(c[0] == "release" for c in policy.calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    by_slot: dict = {}
    for c in policy.calls:
        by_slot.setdefault(c[1], []).append(c[0] if c[0] != "reset" else f"reset:{c[2]}")
    assert sorted(by_slot.values()) == sorted(
        [
            ["reset:open the drawer", "predict", "predict", "release"],
            ["reset:close the drawer", "predict", "predict", "release"],
            ["reset:stack the blocks", "predict", "release"],
        ]
    )
    assert srv.stats["episodes"] == 3 and srv.stats["observations"] == 7 and srv.stats["predicts"] == 5


def test_a_policy_failure_is_an_error_frame_and_the_connection_goes_on(served):
    srv = served(Recorder(fail_on="impossible"))
    client = POLICIES.create("allenai", url=srv.url)
    client.reset(["impossible task"], slots=[0])
    with pytest.raises(AllenaiServerError, match="observation_failed: RuntimeError: the model cannot do that"):
        client.predict([obs("impossible task")], slots=[0])
    client.reset(["easy task"], slots=[0])
    assert client.predict([obs("easy task")], slots=[0]).actions.shape == (1, 1, 7)
    assert client._clients[0].reconnects == 0
    client.close()


# -- misbehaving servers


def _rollout(url: str, **args):
    from vla_eval.execution.plan import PlanItem
    from vla_eval.execution.rollout import EpisodeSettings, run_episode

    class TinyEnv:
        unwrapped = property(lambda self: self)

        def reset(self, seed=None, options=None):
            return obs(), {"success": False}

        def step(self, action):
            return obs(), 0.0, False, False, {"success": False}

    policy = POLICIES.create("allenai", url=url, check_health=False, connect_timeout=2, request_timeout=2, **args)
    item = PlanItem(task="t", split="in_domain", episode_index=0, init_state_id=0, seed=0)
    settings = EpisodeSettings(
        run_id="r", suite="s", max_steps={"t": 3}, settle_steps=0, settle_action=(0,) * 6 + (-1,)
    )
    try:
        return run_episode(TinyEnv(), policy, item, settings)
    finally:
        policy.close()


@pytest.mark.parametrize(
    "reply, message",
    [
        (b"\x93garbage", "AllenaiReplyError: .*malformed frame"),
        ({"actions": np.zeros(5, dtype=np.float32)}, "AllenaiReplyError: .*shape \\(1, 5\\); expected \\(7,\\)"),
        ({"act": 1}, "AllenaiReplyError: .*without 'actions'"),
    ],
)
def test_malformed_server_output_is_a_recorded_policy_error(reply, message):
    def handler(ws):
        hello_reply(ws)
        for raw in ws:
            frame = ap.decode_frame(raw)
            if frame.type is ap.MessageType.OBSERVATION:
                ws.send(
                    reply
                    if isinstance(reply, bytes)
                    else ap.encode_frame(ap.Frame(ap.MessageType.ACTION, reply, frame.seq))
                )

    srv, url = fake_server(handler)
    try:
        record, env_ok = _rollout(url)
    finally:
        srv.shutdown()
    assert record.termination == "policy_error" and env_ok
    assert record.error and __import__("re").search(message, record.error), record.error


def test_a_dead_server_fails_the_episode_after_bounded_reconnects():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = time.perf_counter()
    record, _ = _rollout(f"ws://127.0.0.1:{port}", max_retries=2, retry_backoff=0.05)
    assert record.termination == "policy_error"
    assert "AllenaiServerLost" in record.error and "unreachable after 3 attempt(s)" in record.error
    assert time.perf_counter() - t < 5


def test_a_dropped_connection_reconnects_and_restarts_the_episode_on_the_new_session():
    sessions: list[list[str]] = []

    def handler(ws):
        log: list[str] = []
        sessions.append(log)
        hello_reply(ws, observation_params={"send_state": True})
        for raw in ws:
            frame = ap.decode_frame(raw)
            log.append(frame.type.value)
            if frame.type is ap.MessageType.OBSERVATION:
                if len(sessions) == 1:
                    ws.close()  # the server restarts mid-episode
                    return
                a = np.r_[frame.payload["states"][:3], 0, 0, 0, -1].astype(np.float32)
                ws.send(ap.encode_frame(ap.Frame(ap.MessageType.ACTION, {"actions": a}, frame.seq)))

    srv, url = fake_server(handler)
    try:
        policy = POLICIES.create("allenai", url=url, check_health=False, retry_backoff=0.05)
        policy.reset(["go"], slots=[0])
        chunk = policy.predict([obs("go", eef=(0.5, 0.6, 0.7))], slots=[0])
        policy.close()
    finally:
        srv.shutdown()
    np.testing.assert_allclose(chunk.actions[0, 0], [0.5, 0.6, 0.7, 0, 0, 0, -1], atol=1e-6)
    assert chunk.extras[0]["server_reconnects"] == 1
    assert sessions[0] == ["episode_start", "observation"]
    assert sessions[1][:2] == ["episode_start", "observation"]


# -- the CLI


def test_vla_eval_serve_protocol_allenai_serves_a_registered_policy(tmp_path: Path):
    from vla_eval.remote.allenai_client import AllenaiClient

    port_file = tmp_path / "port"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vla_eval",
            "serve",
            "--policy",
            "noop",
            "--protocol",
            "allenai",
            "--port",
            "0",
            "--port-file",
            str(port_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.1)
        client = AllenaiClient(f"ws://127.0.0.1:{port_file.read_text().strip()}")
        assert client.health()
        hello = client.connect()
        assert hello["model_server"] == "vla-eval:noop" and hello["protocol_version"] == 1
        client.start_episode({"task": {"name": "stay"}})
        action = client.act(allenai_obs(obs("stay"), AllenaiConfig(), hello["observation_params"], "stay"))
        np.testing.assert_allclose(action["actions"], [0, 0, 0, 0, 0, 0, -1])
        client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
