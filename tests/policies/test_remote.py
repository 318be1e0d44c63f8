"""openpi wire compatibility both ways, timeouts, reconnects, and policy_error recording."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import threading
import time
import traceback

import numpy as np
import pytest
from scene import make_obs

from vla_eval.policies import POLICIES
from vla_eval.policies.base import ActionChunk, Policy
from vla_eval.remote import protocol
from vla_eval.remote.client import RemotePolicyClient, RemotePolicyError
from vla_eval.remote.server import PolicyServer

openpi_msgpack = pytest.importorskip("openpi_client.msgpack_numpy")
pytestmark = pytest.mark.filterwarnings("ignore:connect\\(\\) must be used:DeprecationWarning")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EchoPolicy(Policy):
    """Deterministic: action t = [eef_pos, t, 0, 0, gripper] so the test can check the numbers."""

    name = "echo"

    def __init__(self, chunk: int = 4):
        self.chunk = chunk
        self.resets: list[list[str]] = []

    def reset(self, instructions, seeds=None):
        self.resets.append(list(instructions))

    def predict(self, obs_batch):
        out = np.zeros((len(obs_batch), self.chunk, 7))
        for b, o in enumerate(obs_batch):
            out[b, :, :3] = np.asarray(o["state"]["eef_pos"])
            out[b, :, 3] = np.arange(self.chunk)
            out[b, :, 6] = -1.0 if "open" in o.get("instruction", "") else 1.0
        return ActionChunk(actions=out, extras=[{"parse_failure": 0, "raw_text": "x"} for _ in obs_batch])


@pytest.fixture
def echo_server():
    policy = EchoPolicy()
    server = PolicyServer(policy, port=0)
    server.start_in_thread()
    yield server, policy
    server.shutdown()


def test_protocol_matches_openpi_msgpack_both_ways():
    obj = {
        "a": np.arange(12, dtype=np.float32).reshape(3, 4),
        "img": np.zeros((2, 2, 3), np.uint8),
        "i": np.int64(7),
        "nested": {"b": np.array([True, False]), "s": "text"},
    }
    for packed, unpack in (
        (protocol.packb(obj), openpi_msgpack.unpackb),
        (openpi_msgpack.packb(obj), protocol.unpackb),
    ):
        got = unpack(packed)
        np.testing.assert_array_equal(got["a"], obj["a"])
        assert got["a"].dtype == np.float32 and got["img"].dtype == np.uint8
        assert got["i"] == 7 and got["nested"]["s"] == "text"
        np.testing.assert_array_equal(got["nested"]["b"], [True, False])
    assert protocol.packb(obj) == openpi_msgpack.packb(obj)
    with pytest.raises(ValueError):
        protocol.packb({"x": np.array([object()])})


def test_openpi_client_talks_to_vla_eval_server(echo_server):
    from openpi_client.websocket_client_policy import WebsocketClientPolicy

    server, policy = echo_server
    client = WebsocketClientPolicy(host="127.0.0.1", port=server.port)
    assert client.get_server_metadata()["server"] == "vla-eval"
    # openpi LIBERO layout: state = eef_pos + axis-angle + gripper qpos
    obs = {
        "observation/image": np.zeros((224, 224, 3), np.uint8),
        "observation/wrist_image": np.zeros((224, 224, 3), np.uint8),
        "observation/state": np.array([0.1, 0.2, 0.3, 0, 0, 0, 0.04, -0.04], np.float32),
        "prompt": "open the drawer",
    }
    out = client.infer(obs)
    assert out["actions"].shape == (4, 7)
    np.testing.assert_allclose(out["actions"][:, :3], np.tile([0.1, 0.2, 0.3], (4, 1)), atol=1e-6)
    np.testing.assert_allclose(out["actions"][:, 3], np.arange(4))
    assert np.all(out["actions"][:, 6] == -1.0) and "infer_ms" in out["server_timing"]
    # our own nested layout works too, and a new prompt starts a new episode (reset)
    ours = {
        "images": {"agentview": np.zeros((8, 8, 3), np.uint8)},
        "state": {"eef_pos": np.ones(3)},
        "prompt": "close it",
    }
    out = client.infer(ours)
    assert np.all(out["actions"][:, 6] == 1.0) and policy.resets[-1] == ["close it"]
    client._ws.close()


def test_health_and_our_client(echo_server):
    server, _ = echo_server
    c = RemotePolicyClient(server.url, connect_timeout=2, request_timeout=5)
    assert c.health()
    meta = c.connect()
    assert meta["action_space"]["gripper"] == "close_positive"
    c.close()
    assert not RemotePolicyClient(f"ws://127.0.0.1:{_free_port()}", connect_timeout=1).health()


def test_vla_eval_serve_cli_subprocess():
    """`vla-eval serve --policy random --port 0` answers an openpi client with (T, 7) chunks."""
    from openpi_client.websocket_client_policy import WebsocketClientPolicy

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vla_eval",
            "serve",
            "--policy",
            "random",
            "--policy-arg",
            "chunk_size=5",
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        line = ""
        deadline = time.time() + 60
        while time.time() < deadline:
            line = proc.stdout.readline()
            if "serving policy" in line or not line:
                break
        m = re.search(r"ws://127\.0\.0\.1:(\d+)", line)
        assert m, f"server did not start: {line!r}"
        client = WebsocketClientPolicy(host="127.0.0.1", port=int(m.group(1)))
        obs, _ = make_obs(32, 32)
        out = client.infer({"images": obs["images"], "state": obs["state"], "prompt": "pick up the cube"})
        assert out["actions"].shape == (5, 7) and np.all(np.abs(out["actions"]) <= 1.0)
        client._ws.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --------------------------------------------------------------------------- an openpi-built server
class OpenpiStyleServer:
    """Mirrors openpi's WebsocketPolicyServer (asyncio websockets + openpi_client.msgpack_numpy):
    metadata frame, one packed reply per request, traceback text frame on error, /healthz."""

    def __init__(self, infer, metadata=None, close_after: int | None = None):
        self.infer, self.metadata, self.close_after = infer, metadata or {"openpi": True}, close_after
        self.port = _free_port()
        self.requests: list[dict] = []
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._started.wait(10)

    def _run(self):
        import http

        from websockets.asyncio.server import serve

        def health(conn, req):
            return conn.respond(http.HTTPStatus.OK, "OK\n") if req.path == "/healthz" else None

        async def handler(ws):
            packer = openpi_msgpack.Packer()
            await ws.send(packer.pack(self.metadata))
            n = 0
            while True:
                try:
                    obs = openpi_msgpack.unpackb(await ws.recv())
                    self.requests.append(obs)
                    action = await asyncio.get_running_loop().run_in_executor(None, self.infer, obs)
                    await ws.send(packer.pack(action))
                    n += 1
                    if self.close_after and n >= self.close_after:
                        await ws.close()
                        return
                except Exception as exc:  # noqa: BLE001
                    if type(exc).__name__.startswith("ConnectionClosed"):
                        return
                    await ws.send(traceback.format_exc())
                    await ws.close(code=1011, reason="Internal server error")
                    return

        async def main():
            async with serve(
                handler, "127.0.0.1", self.port, compression=None, max_size=None, process_request=health
            ) as srv:
                self._server = srv
                self._started.set()
                await srv.serve_forever()

        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(main())
        except Exception:
            pass

    def stop(self):
        self._loop.call_soon_threadsafe(self._server.close)
        self._thread.join(timeout=5)


def _pi0_like(obs):
    state = obs["observation/state"]
    acts = np.zeros((10, 7), np.float32)
    acts[:, :3] = state[:3]
    acts[:, 3:6] = state[3:6]
    acts[:, 6] = 1.0
    return {"actions": acts}


def test_remote_policy_talks_to_openpi_server():
    srv = OpenpiStyleServer(_pi0_like)
    try:
        policy = POLICIES.create(
            "remote",
            port=srv.port,
            obs={"kind": "openpi_libero", "image": {"resize": [224, 224], "resize_mode": "pad"}},
            image_orientation="libero_rot180",
            max_chunk=5,
            request_timeout=5,
        )
        obs, _ = make_obs(64, 64)
        quat_z90 = np.array([np.sqrt(0.5), 0, 0, np.sqrt(0.5)])  # wxyz, 90° about z
        obs["state"]["eef_quat"] = quat_z90
        policy.reset([obs["instruction"]])
        chunk = policy.predict([obs])
        assert chunk.actions.shape == (1, 5, 7)
        np.testing.assert_allclose(chunk.actions[0, 0, 3:6], [0, 0, np.pi / 2], atol=1e-6)  # wxyz -> axis-angle
        req = srv.requests[0]
        assert req["observation/image"].shape == (224, 224, 3) and req["observation/wrist_image"].dtype == np.uint8
        assert req["observation/state"].shape == (8,) and req["prompt"] == "pick up the cube"
        assert policy.describe()["server_metadata"] == {"openpi": True}
    finally:
        srv.stop()


def test_reconnect_after_server_drops_connection():
    srv = OpenpiStyleServer(_pi0_like, close_after=1)
    try:
        policy = POLICIES.create("remote", port=srv.port, obs={"kind": "openpi_libero"}, request_timeout=5)
        obs, _ = make_obs(32, 32)
        policy.reset([obs["instruction"]])
        for _ in range(3):
            assert policy.predict([obs]).actions.shape == (1, 10, 7)
        assert policy.client.reconnects >= 1
    finally:
        srv.stop()


def test_server_exception_is_a_clear_error():
    def boom(obs):
        raise RuntimeError("model exploded")

    srv = OpenpiStyleServer(boom)
    try:
        policy = POLICIES.create("remote", port=srv.port, obs={"kind": "openpi_libero"}, request_timeout=5)
        obs, _ = make_obs(32, 32)
        with pytest.raises(RemotePolicyError, match="model exploded"):
            policy.predict([obs])
    finally:
        srv.stop()


def test_slow_server_times_out_fast():
    srv = OpenpiStyleServer(lambda obs: (time.sleep(3), _pi0_like(obs))[1])
    try:
        policy = POLICIES.create("remote", port=srv.port, obs={"kind": "openpi_libero"}, request_timeout=0.3)
        obs, _ = make_obs(32, 32)
        t = time.perf_counter()
        with pytest.raises(RemotePolicyError, match="did not answer within"):
            policy.predict([obs])
        assert time.perf_counter() - t < 2.0
    finally:
        srv.stop()


def test_dead_server_is_a_recorded_policy_error():
    """Through the real rollout: a dead server ends the episode with termination policy_error, quickly."""
    from vla_eval.execution.plan import PlanItem
    from vla_eval.execution.rollout import EpisodeSettings, run_episode

    class TinyEnv:
        unwrapped = property(lambda self: self)

        def reset(self, seed=None, options=None):
            return make_obs(16, 16)[0], {"success": False}

        def step(self, action):
            return make_obs(16, 16)[0], 0.0, False, False, {"success": False}

    policy = POLICIES.create("remote", port=_free_port(), connect_timeout=1, max_retries=1, check_health=False)
    item = PlanItem(task="t", split="in_domain", episode_index=0, init_state_id=0, seed=0)
    settings = EpisodeSettings(
        run_id="r", suite="s", max_steps={"t": 5}, settle_steps=0, settle_action=(0,) * 6 + (-1,)
    )
    t = time.perf_counter()
    record, env_ok = run_episode(TinyEnv(), policy, item, settings)
    assert record.termination == "policy_error" and env_ok
    assert "RemotePolicyError" in record.error and "unreachable" in record.error
    assert time.perf_counter() - t < 5


# --------------------------------------------------------------------------- conventions (issue 10)


def test_openpi_state_axis_angle_is_robosuites_for_either_sign_of_w():
    T = pytest.importorskip("robosuite.utils.transform_utils")
    from vla_eval.remote.obs_format import OPENPI_STATE, ObsFormat, decode_obs, encode_obs

    rng = np.random.default_rng(0)
    quats = [np.array([-0.02, 0.999, 0.03, 0.0]), np.array([0.02, 0.999, -0.03, 0.0]), np.array([-0.6, 0.0, 0.8, 0.0])]
    quats += [q * np.sign(rng.normal()) for q in rng.normal(size=(20, 4))]
    fmt = ObsFormat(kind="openpi_libero", wrist_camera=None)
    for q in quats:
        q = q / np.linalg.norm(q)  # w, x, y, z
        obs = {
            "images": {"agentview": np.zeros((8, 8, 3), np.uint8)},
            "instruction": "x",
            "state": {"eef_pos": np.zeros(3), "eef_quat": q, "gripper_qpos": np.zeros(2)},
        }
        sent = encode_obs(obs, fmt)[OPENPI_STATE]
        expected = T.quat2axisangle(np.array([q[1], q[2], q[3], q[0]]))  # robosuite takes x, y, z, w
        np.testing.assert_allclose(sent[3:6], expected, atol=1e-6)
        assert (np.linalg.norm(sent[3:6]) > np.pi) == (q[0] < 0)
        back = decode_obs({OPENPI_STATE: sent, "observation/image": obs["images"]["agentview"]})["state"]["eef_quat"]
        np.testing.assert_allclose(back, q, atol=1e-6)


class _SeesImages(Policy):
    name = "sees_images"
    needs_images = True

    def __init__(self, orientation="upright"):
        self.image_orientation = orientation
        self.seen = []

    def predict(self, obs_batch):
        self.seen.extend(obs_batch)
        acts = np.zeros((len(obs_batch), 1, 7))
        acts[..., 6] = -1
        return ActionChunk(actions=acts)


def test_client_refuses_an_orientation_the_served_policy_was_not_trained_on():
    server = PolicyServer(_SeesImages("libero_rot180"), port=0)
    server.start_in_thread()
    try:
        obs, _ = make_obs(32, 32)
        wrong = POLICIES.create("remote", port=server.port, request_timeout=5)
        wrong.reset([obs["instruction"]])
        with pytest.raises(RemotePolicyError, match="image_orientation=libero_rot180"):
            wrong.predict([obs])
        wrong.close()
        right = POLICIES.create("remote", port=server.port, request_timeout=5, image_orientation="libero_rot180")
        right.reset([obs["instruction"]])
        assert right.predict([obs]).actions.shape == (1, 1, 7)
        right.close()
    finally:
        server.shutdown()


def test_remote_rollout_forwards_converted_images_and_camera_params():
    from vla_eval.execution.plan import PlanItem
    from vla_eval.execution.rollout import EpisodeSettings, run_episode
    from vla_eval.sims.tabletop.env import TabletopEnv

    served = _SeesImages("libero_rot180")
    server = PolicyServer(served, port=0)
    server.start_in_thread()
    env = TabletopEnv("pick_place_cube", cameras=("agentview",), image_size=(32, 32), depth=True)
    try:
        policy = POLICIES.create(
            "remote",
            port=server.port,
            request_timeout=5,
            image_orientation="libero_rot180",
            obs={"send_depth": True, "wrist_camera": None},
        )
        settings = EpisodeSettings(
            run_id="t", suite="s", max_steps={"t": 1}, settle_steps=0, settle_action=(0, 0, 0, 0, 0, 0, -1)
        )
        rec, ok = run_episode(
            env, policy, PlanItem(task="t", split="in_domain", episode_index=0, init_state_id=0, seed=3), settings
        )
        assert ok and rec.termination == "timeout", rec.error
        assert rec.extras["image_conversion"] == "top_left->libero_rot180:flip_cols"
        raw, _ = env.reset(seed=3)
        got = served.seen[0]
        np.testing.assert_array_equal(got["images"]["agentview"], raw["images"]["agentview"][:, ::-1])
        K0, K = (
            raw["camera_params"]["agentview"]["intrinsics"],
            np.asarray(got["camera_params"]["agentview"]["intrinsics"]),
        )
        assert K[0, 0] == -K0[0, 0] and K[0, 2] == 32 - K0[0, 2]  # columns flipped with the image
        np.testing.assert_array_equal(got["depth"]["agentview"], raw["depth"]["agentview"][:, ::-1])
        policy.close()
    finally:
        env.close()
        server.shutdown()
