"""The batching policy server's documented details, each pinned by what a client sees.

Written against the mutants of ``vla_eval/remote/server.py`` that the older server tests let
through (``tools/mutation.sh server``; scores in docs/testing.md): the constructor's limits
and defaults, the metadata frame, the health check, every refusal message, seeds and episode
starts reaching the policy, which requests share a ``predict``, the reply's fields, faults in
``reset`` and shutdown with requests still queued.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time

import numpy as np
import pytest
import websockets
from websockets.sync.client import connect

from vla_eval.actions.space import ActionChunk
from vla_eval.adapter import Policy, SlotStates
from vla_eval.remote import protocol
from vla_eval.remote.client import RemotePolicyClient, RemotePolicyError
from vla_eval.remote.server import DEFAULT_IDLE_TIMEOUT_S, DEFAULT_MAX_CONNECTIONS, PolicyServer

pytestmark = [
    pytest.mark.filterwarnings("ignore:connect\\(\\) must be used:DeprecationWarning"),
    pytest.mark.timeout(60),
]


class Recorder(Policy):
    """Not slot-aware: records every reset; action row = [x, calls since reset, batch size]."""

    name = "recorder"
    needs_images = False

    def __init__(self, reset_boom: bool = False, delay: float = 0.0, extras: bool = False):
        self.resets: list[tuple[list[str], list | None]] = []
        self.batches: list[list[float]] = []
        self.reset_boom, self.delay, self.extras = reset_boom, delay, extras
        self.calls = 0

    def reset(self, instructions, seeds=None):
        if self.reset_boom:
            raise RuntimeError("reset exploded")
        time.sleep(self.delay)
        self.resets.append((list(instructions), None if seeds is None else list(seeds)))
        self.calls = 0

    def predict(self, obs_batch):
        time.sleep(self.delay)
        self.calls += 1
        xs = [float(np.asarray(o["state"]["x"]).ravel()[0]) for o in obs_batch]
        self.batches.append(xs)
        out = np.zeros((len(obs_batch), 2, 7), np.float32)
        for b, x in enumerate(xs):
            out[b, :, :3] = [x, self.calls, len(obs_batch)]
        extras = [{"x": x} if x > 0 else {} for x in xs] if self.extras else None
        return ActionChunk(actions=out, extras=extras)


class SlotRecorder(Policy):
    """Slot-aware: records resets (with slots and seeds) and releases; row = [x, steps this episode]."""

    name = "slot_recorder"
    needs_images = False
    slot_aware = True

    def __init__(self, boom_on: str | None = None):
        self.resets: list[tuple[list[str], list | None, list]] = []
        self.released: list = []
        self.boom_on = boom_on
        self._eps = SlotStates(lambda instruction, seed: {"n": 0})

    def reset(self, instructions, seeds=None, slots=None):
        if self.boom_on in instructions:
            raise RuntimeError("reset exploded")
        self.resets.append((list(instructions), None if seeds is None else list(seeds), list(slots)))
        self._eps.reset(instructions, seeds, slots)

    def release(self, slots):
        self.released.extend(slots)
        self._eps.release(slots)

    def predict(self, obs_batch, slots=None):
        out = np.zeros((len(obs_batch), 1, 7))
        for b, (o, st) in enumerate(zip(obs_batch, self._eps.rows(obs_batch, slots))):
            st["n"] += 1
            out[b, 0, :2] = [float(np.asarray(o["state"]["x"]).ravel()[0]), st["n"]]
        return ActionChunk(actions=out)


class Sees(Policy):
    """Needs images in a given orientation; answers the pixel count of its camera."""

    name = "sees"

    def __init__(self, orientation: str = "upright"):
        self.image_orientation = orientation

    def predict(self, obs_batch):
        out = np.zeros((len(obs_batch), 1, 7))
        for b, o in enumerate(obs_batch):
            out[b, 0, 0] = sum(np.asarray(img).size for img in o["images"].values())
        return ActionChunk(actions=out)


def _obs(x: float = 1.0, instruction: str = "go", **extra) -> dict:
    return {"state": {"x": np.array([x])}, "instruction": instruction, **extra}


@pytest.fixture
def serve():
    servers: list[PolicyServer] = []

    def start(policy: Policy, **kw) -> PolicyServer:
        server = PolicyServer(policy, port=0, **kw)
        server.start_in_thread()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.shutdown()


def _raw(server: PolicyServer):
    ws = connect(server.url, compression=None, max_size=None)
    meta = protocol.unpackb(ws.recv(timeout=5))
    assert meta["server"] == "vla-eval"
    return ws


def _ask(ws, msg) -> dict | str:
    ws.send(protocol.packb(msg) if isinstance(msg, dict) else msg)
    reply = ws.recv(timeout=10)
    return reply if isinstance(reply, str) else protocol.unpackb(reply)


def _together(calls):
    out: list = [None] * len(calls)

    def go(i):
        try:
            out[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001
            out[i] = exc

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


# ---------------------------------------------------------------- construction


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"max_batch": 0}, "max_batch must be >= 1, got 0"),
        ({"max_wait_ms": -1}, "max_wait_ms must be >= 0, got -1"),
        ({"idle_timeout_s": 0}, "idle_timeout_s must be > 0 or None, got 0"),
        ({"idle_timeout_s": -2.5}, "idle_timeout_s must be > 0 or None, got -2.5"),
        ({"max_connections": 0}, "max_connections must be >= 1, got 0"),
    ],
)
def test_bad_limits_are_refused_with_the_field_and_value(kw, message):
    with pytest.raises(ValueError) as err:
        PolicyServer(Recorder(), port=0, **kw)
    assert str(err.value) == message


def test_smallest_legal_limits_are_accepted():
    server = PolicyServer(Recorder(), port=0, max_batch=1, max_wait_ms=0, idle_timeout_s=None, max_connections=1)
    assert (server.max_batch, server.max_wait_s, server.idle_timeout_s, server.max_connections) == (1, 0.0, None, 1)


def test_defaults_are_the_documented_ones():
    server = PolicyServer(Recorder())
    assert (server.host, server.port, server.url) == ("127.0.0.1", 8000, "ws://127.0.0.1:8000")
    assert server.max_batch == 16 and server.max_wait_s == pytest.approx(0.005)
    assert server.max_frame_bytes == protocol.MAX_FRAME_BYTES
    assert server.max_inflight_bytes == max(1 << 30, 2 * protocol.MAX_FRAME_BYTES)
    assert server.idle_timeout_s == DEFAULT_IDLE_TIMEOUT_S == 300.0
    assert server.max_connections == DEFAULT_MAX_CONNECTIONS == 256
    assert server.mean_batch_size == 0.0
    # a frame limit above half the default in-flight budget raises the budget: one frame must always fit
    big = PolicyServer(Recorder(), max_frame_bytes=1 << 30)
    assert big.max_frame_bytes == 1 << 30 and big.max_inflight_bytes == 2 << 30
    assert PolicyServer(Recorder(), max_inflight_bytes=1234).max_inflight_bytes == 1234


def test_metadata_frame_describes_the_policy_and_the_batching():
    meta = PolicyServer(Recorder(), max_batch=4, max_wait_ms=7, metadata={"model": "m1", "sessions": "x"}).metadata
    assert meta["server"] == "vla-eval" and meta["model"] == "m1"
    assert meta["policy"] == Recorder().describe()
    assert meta["action_space"] == dict(Recorder.action_space.__dict__)
    assert meta["image_orientation"] is None  # the policy takes no images
    assert meta["batching"] == {"max_batch": 4, "max_wait_ms": 7.0}
    assert isinstance(meta["batching"]["max_wait_ms"], float)
    assert meta["sessions"] == "x"  # the caller's metadata wins
    assert PolicyServer(Recorder()).metadata["sessions"] == "batched"
    assert PolicyServer(Sees("libero_rot180")).metadata["image_orientation"] == "libero_rot180"
    assert PolicyServer(Sees()).metadata["image_orientation"] == "upright"


def test_metadata_reaches_the_client_and_health_answers_ok(serve):
    server = serve(Recorder(), metadata={"model": "m1"})
    assert server.port != 0 and server.url == f"ws://127.0.0.1:{server.port}"
    with RemotePolicyClient(server.url) as c:
        meta = c.connect()
        assert meta["model"] == "m1" and meta["batching"]["max_batch"] == 16
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/healthz")
    resp = conn.getresponse()
    assert (resp.status, resp.read()) == (200, b"OK\n")
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/other")  # not the health path: a plain GET is a failed websocket handshake
    assert conn.getresponse().status != 200
    conn.close()


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "msg, message",
    [
        (b"\xc1", "rejected frame: "),  # msgpack's never-used byte
        ("a text frame", "rejected frame: expected a binary msgpack frame, got text"),
        ([1, 2], "rejected frame: expected a map, got list"),
        (
            {"state": [1, 2], "instruction": "s"},
            "rejected frame: 'state' must be a map of name to numeric array, got list",
        ),
        ({"state": {"x": "abc"}, "instruction": "s"}, "rejected frame: state 'x': expected numbers, got str"),
        ({"state": {"x": [[1, 2], [3]]}, "instruction": "s"}, "rejected frame: state 'x': expected numbers, got list"),
        ({"state": {"x": None}, "instruction": "s"}, "rejected frame: state 'x': expected numbers, got NoneType"),
    ],
)
def test_a_refused_frame_gets_one_text_reply_and_the_connection_goes_on(serve, msg, message):
    server = serve(Recorder())
    ws = _raw(server)
    if isinstance(msg, (bytes, str)):
        ws.send(msg)
        reply = ws.recv(timeout=5)
    elif isinstance(msg, list):
        reply = _ask(ws, protocol.packb(msg))
    else:
        reply = _ask(ws, msg)
    assert isinstance(reply, str) and reply.startswith(message), reply
    assert _ask(ws, _obs(2.0))["actions"][0, 0] == 2.0  # still served
    ws.close()


@pytest.mark.parametrize(
    "images, message",
    [
        ([np.zeros((4, 4, 3), np.uint8)], "'images' must be a map of camera name to an H x W x C array"),
        ({"cam": "pixels"}, "image 'cam': expected a numeric H x W x C array, got str"),
        (
            {"cam": np.zeros((2, 4, 4, 3), np.uint8)},
            "image 'cam': expected a numeric H x W x C array, got shape (2, 4, 4, 3)",
        ),
        ({"cam": np.zeros(4, np.uint8)}, "image 'cam': expected a numeric H x W x C array, got shape (4,)"),
        ({"cam": np.zeros((4, 0), np.uint8)}, "image 'cam': expected a numeric H x W x C array, got shape (4, 0)"),
        ({"c" * 200: "x"}, f"image {'c' * 80!r}: expected"),
        ({}, "policy 'sees' needs camera images: the observation has none"),
    ],
)
def test_images_outside_the_contract_are_refused_alone(serve, images, message):
    server = serve(Sees())
    ws = _raw(server)
    reply = _ask(ws, {"images": images, "instruction": "look"})
    assert isinstance(reply, str) and reply.startswith(f"rejected frame: {message}"), reply
    good = {"images": {"cam": np.zeros((3, 5), np.float32), "mask": np.ones((2, 2, 1), bool)}, "instruction": "l"}
    assert _ask(ws, good)["actions"][0, 0] == 15 + 4  # 2-D and boolean images are fine
    ws.close()


def test_a_long_state_key_is_cut_to_80_characters_in_the_refusal(serve):
    ws = _raw(serve(Recorder()))
    reply = _ask(ws, {"state": {"k" * 200: "abc", "x": np.ones(1)}, "instruction": "s"})
    assert reply == f"rejected frame: state {'k' * 80!r}: expected numbers, got str"
    ws.close()


def test_a_policy_without_images_takes_lists_of_numbers_as_state(serve):
    ws = _raw(serve(Recorder()))
    assert _ask(ws, {"state": {"x": [3, 4], "flag": True}, "instruction": "s"})["actions"][0, 0] == 3.0
    ws.close()


@pytest.mark.parametrize("seed", [True, 1.5, "7"])
def test_a_seed_that_is_not_an_integer_fails_the_request_and_closes_the_connection(serve, seed):
    policy = Recorder()
    ws = _raw(serve(policy))
    reply = _ask(ws, _obs(seed=seed))
    assert isinstance(reply, str) and f"request field 'seed' must be an integer, got {seed!r}" in reply
    with pytest.raises(websockets.ConnectionClosed) as closed:
        ws.recv(timeout=5)
    assert closed.value.rcvd.code == 1011 and "Traceback included" in closed.value.rcvd.reason
    assert policy.resets == []


# ---------------------------------------------------------------- episodes and seeds


def test_seeds_and_episode_starts_reach_a_slot_aware_policy(serve):
    policy = SlotRecorder()
    server = serve(policy)
    ws = _raw(server)
    assert _ask(ws, _obs(1.0, "a", seed=np.int64(5)))["actions"][0, 1] == 1
    assert _ask(ws, _obs(1.0, "a"))["actions"][0, 1] == 2  # same episode: no reset
    assert _ask(ws, _obs(1.0, "a", reset=True, seed=9))["actions"][0, 1] == 1  # reset: a new episode
    assert _ask(ws, _obs(1.0, "b"))["actions"][0, 1] == 1  # a new instruction: a new episode
    assert _ask(ws, _obs(1.0, "b", reset=False))["actions"][0, 1] == 2
    assert [(r[0], r[1]) for r in policy.resets] == [(["a"], [5]), (["a"], [9]), (["b"], None)]
    slots = [r[2][0] for r in policy.resets]
    assert len(set(slots)) == 3 and policy.released == slots[:2]  # each ended episode's slot is released
    ws.close()
    deadline = time.monotonic() + 5
    while slots[2] not in policy.released and time.monotonic() < deadline:  # the last one at the next batch
        with RemotePolicyClient(server.url) as c:
            c.infer(_obs())
        time.sleep(0.05)
    assert slots[2] in policy.released


def test_a_policy_that_is_not_slot_aware_is_reset_only_when_its_rows_change(serve):
    policy = Recorder()
    ws = _raw(serve(policy))
    assert _ask(ws, _obs(1.0, "a", seed=3))["actions"][0, 1] == 1
    assert _ask(ws, _obs(1.0, "a"))["actions"][0, 1] == 2
    assert _ask(ws, _obs(1.0, "a", reset=True))["actions"][0, 1] == 1
    assert _ask(ws, _obs(1.0, "c"))["actions"][0, 1] == 1
    assert policy.resets == [(["a"], [3]), (["a"], None), (["c"], None)]
    ws.close()


def test_a_failing_reset_fails_that_request_and_the_next_one_resets_again(serve):
    policy = Recorder(reset_boom=True)
    server = serve(policy)
    ws = _raw(server)
    reply = _ask(ws, _obs(1.0, "a"))
    assert isinstance(reply, str) and "reset exploded" in reply
    policy.reset_boom = False
    with RemotePolicyClient(server.url) as c:
        assert c.infer(_obs(2.0, "a"))["actions"][0, :2].tolist() == [2.0, 1.0]
    assert policy.resets == [(["a"], None)]
    assert policy.batches == [[2.0]]


def test_a_failing_slot_aware_reset_fails_only_the_new_episodes_of_the_batch(serve):
    policy = SlotRecorder(boom_on="bad")
    server = serve(policy, max_batch=8, max_wait_ms=3000)
    old, new = RemotePolicyClient(server.url), RemotePolicyClient(server.url)
    old.infer(_obs(1.0, "fine"))  # alone on the server: answered at once, and its episode is running
    new.connect()
    r_old, r_new = _together([lambda: old.infer(_obs(2.0, "fine")), lambda: new.infer(_obs(3.0, "bad"))])
    assert isinstance(r_new, RemotePolicyError) and "reset exploded" in str(r_new)
    assert r_old["actions"][0].tolist()[:2] == [2.0, 2.0]
    assert r_old["server_timing"]["batch_size"] == 1  # the failed row left the batch before predict
    assert server.stats["failed_batches"] == 0
    old.close(), new.close()


# ---------------------------------------------------------------- batching


def test_only_requests_with_the_same_shapes_and_dtypes_share_a_predict(serve):
    policy = Recorder()
    server = serve(policy, max_batch=8, max_wait_ms=1000)
    clients = [RemotePolicyClient(server.url) for _ in range(4)]
    for c in clients:
        c.connect()
    msgs = [
        _obs(1.0),
        _obs(2.0),
        {"state": {"x": np.array([3.0], np.float32)}, "instruction": "go"},  # another dtype
        {"state": {"y": np.array([0.0]), "x": np.array([4.0])}, "instruction": "go"},  # another key
    ]
    replies = _together([lambda c=c, m=m: c.infer(m) for c, m in zip(clients, msgs)])
    sizes = [r["server_timing"]["batch_size"] for r in replies]
    assert sizes == [2, 2, 1, 1], replies
    assert sorted(map(sorted, policy.batches)) == [[1.0, 2.0], [3.0], [4.0]]
    for c in clients:
        c.close()


def test_a_batch_is_capped_at_max_batch(serve):
    policy = Recorder()
    server = serve(policy, max_batch=2, max_wait_ms=1000)
    clients = [RemotePolicyClient(server.url) for _ in range(3)]
    for c in clients:
        c.connect()
    replies = _together([lambda c=c, i=i: c.infer(_obs(float(i))) for i, c in enumerate(clients)])
    assert sorted(r["server_timing"]["batch_size"] for r in replies) == [1, 2, 2]
    assert server.stats == {"batches": 2, "requests": 3, "failed_batches": 0}
    assert server.mean_batch_size == 1.5
    for c in clients:
        c.close()


def test_a_batch_waits_max_wait_ms_for_an_idle_session_then_goes(serve):
    server = serve(Recorder(), max_batch=8, max_wait_ms=400)
    idle = RemotePolicyClient(server.url)
    idle.connect()
    with RemotePolicyClient(server.url) as c:
        t = time.perf_counter()
        reply = c.infer(_obs())
        elapsed = time.perf_counter() - t
    idle.close()
    assert 0.35 < elapsed < 5 and reply["server_timing"]["batch_size"] == 1
    assert reply["server_timing"]["queue_ms"] >= 350


def test_the_reply_carries_float64_actions_timings_action_space_and_only_nonempty_extras(serve):
    policy = Recorder(delay=0.25, extras=True)
    ws = _raw(serve(policy))
    reply = _ask(ws, _obs(2.0, "a"))
    assert reply["actions"].dtype == np.float64 and reply["actions"].shape == (2, 7)
    timing = reply["server_timing"]
    assert set(timing) == {"infer_ms", "reset_ms", "queue_ms", "batch_size"} and timing["batch_size"] == 1
    assert 240 <= timing["infer_ms"] < 2000 and 240 <= timing["reset_ms"] < 2000  # each phase timed apart
    assert 0 <= timing["queue_ms"] < 240  # one session: nothing to wait for
    assert reply["action_space"] == dict(Recorder.action_space.__dict__)
    assert reply["extras"] == {"x": 2.0}
    assert "extras" not in _ask(ws, _obs(0.0, "a"))  # an empty extras dict is not sent
    ws.close()


def test_malformed_policy_output_fails_the_batch_and_later_batches_are_served(serve):
    class Short(Recorder):
        def predict(self, obs_batch):
            chunk = super().predict(obs_batch)
            return ActionChunk(actions=chunk.actions[:, :, :6]) if len(self.batches) == 1 else chunk

    policy = Short()
    server = serve(policy)
    ws = _raw(server)
    reply = _ask(ws, _obs(1.0))
    assert isinstance(reply, str) and "Traceback" in reply
    assert server.stats["failed_batches"] == 1
    with RemotePolicyClient(server.url) as c:
        assert c.infer(_obs(5.0))["actions"][0, 0] == 5.0
    assert len(policy.resets) == 2  # the failed batch forgot its rows: the next one reset again


# ---------------------------------------------------------------- sessions and shutdown


def test_a_stateful_policy_serves_the_next_session_once_the_owner_leaves(serve, caplog):
    class Stateful(Recorder):
        stateful = True

    server = serve(Stateful(), max_batch=8, max_wait_ms=50)
    assert server.metadata["sessions"] == "one at a time"
    a, b = RemotePolicyClient(server.url), RemotePolicyClient(server.url)
    a.connect(), b.connect()
    assert a.infer(_obs(1.0))["server_timing"]["batch_size"] == 1
    got: list = []
    with caplog.at_level(logging.WARNING, logger="vla_eval.remote.server"):
        waiter = threading.Thread(target=lambda: got.append(b.infer(_obs(2.0))))
        waiter.start()
        time.sleep(0.3)
        assert not got and a.infer(_obs(1.0))["actions"][0, 1] == 2  # b waits; a's episode goes on
        a.infer(_obs(1.0))
        a.close()
        waiter.join(10)
    assert got and got[0]["actions"][0, :2].tolist() == [2.0, 1.0]
    warnings = [r.getMessage() for r in caplog.records if "one at a time" in r.getMessage()]
    assert len(warnings) == 1 and "session 1 disconnects" in warnings[0]
    b.close()


def test_shutdown_fails_the_queued_requests_instead_of_leaving_them_hanging(serve):
    policy = Recorder()
    server = serve(policy, max_batch=8, max_wait_ms=30000)
    idle = RemotePolicyClient(server.url)
    idle.connect()  # a second session keeps the batch window open for 30 s
    c = RemotePolicyClient(server.url, max_retries=0)
    c.connect()
    got: list = []
    t = threading.Thread(target=lambda: got.append(_together([lambda: c.infer(_obs())])[0]))
    t.start()
    time.sleep(0.3)
    began = time.perf_counter()
    server.shutdown()
    t.join(10)
    assert time.perf_counter() - began < 10
    assert isinstance(got[0], RemotePolicyError) and "shutting down" in str(got[0])
    assert policy.batches == []
    assert not server._batcher.is_alive()


def test_a_server_that_never_started_shuts_down_quietly():
    """What `vla-eval serve` does when binding fails: its cleanup must not raise a second error."""
    server = PolicyServer(Recorder(), port=0)
    server.shutdown()
    assert server.stats["batches"] == 0


def test_one_row_of_nan_actions_goes_back_to_its_own_client_only(serve):
    class NanForB(Recorder):
        def predict(self, obs_batch):
            chunk = super().predict(obs_batch)
            for b, o in enumerate(obs_batch):
                if o["instruction"] == "b":
                    chunk.actions[b] = np.nan
            return chunk

    server = serve(NanForB(), max_batch=8, max_wait_ms=1000)
    a, b = RemotePolicyClient(server.url), RemotePolicyClient(server.url)
    a.connect(), b.connect()
    ra, rb = _together([lambda: a.infer(_obs(1.0, "a")), lambda: b.infer(_obs(2.0, "b"))])
    assert ra["server_timing"]["batch_size"] == 2 and ra["actions"][0, 0] == 1.0
    assert np.isnan(rb["actions"]).all()  # the client (and its rollout) judges its own row
    assert server.stats["failed_batches"] == 0
    a.close(), b.close()


def test_a_fault_outside_predict_fails_the_batch_with_its_traceback_and_service_goes_on(serve):
    class ReleaseBoom(SlotRecorder):
        def release(self, slots):
            super().release(slots)
            if len(self.released) == 1:
                raise RuntimeError("release exploded")

    policy = ReleaseBoom()
    server = serve(policy)
    with RemotePolicyClient(server.url) as gone:
        gone.infer(_obs(1.0, "gone"))
    deadline = time.monotonic() + 5
    while server._sessions and time.monotonic() < deadline:  # its episode is released with the next batch
        time.sleep(0.01)
    ws = _raw(server)
    reply = _ask(ws, _obs(2.0, "next"))
    assert isinstance(reply, str) and "Traceback" in reply and "release exploded" in reply
    with RemotePolicyClient(server.url) as c:
        assert c.infer(_obs(3.0, "again"))["actions"][0, 0] == 3.0


def test_the_log_says_why_a_connection_or_frame_was_refused(serve, caplog):
    caplog.set_level(logging.INFO, logger="vla_eval.remote.server")
    server = serve(Recorder(), max_connections=2, idle_timeout_s=0.3, max_inflight_bytes=100, max_wait_ms=1000)
    first, second = _raw(server), _raw(server)
    extra = connect(server.url, compression=None, max_size=None)
    with pytest.raises(websockets.ConnectionClosed):
        extra.recv(timeout=5)
    frame = protocol.packb(_obs(1.0, "a long instruction to pass fifty bytes"))
    first.send(frame)
    assert "max_inflight_bytes" in first.recv(timeout=5)
    with pytest.raises(websockets.ConnectionClosed):
        second.recv(timeout=5)  # idle for 0.3 s
    messages = [r.getMessage() for r in caplog.records]
    assert "policy server: refused a connection, 2 are open (max_connections)" in messages
    assert f"policy server: refused a {len(frame)}-byte frame, 0 bytes in flight" in messages
    assert "policy server: closing session 2, idle for 0.3 s" in messages
    first.close()


def test_the_log_warns_once_that_a_policy_without_slots_is_reset_for_each_mix_of_sessions(serve, caplog):
    caplog.set_level(logging.WARNING, logger="vla_eval.remote.server")
    server = serve(Recorder(), max_batch=8, max_wait_ms=1000)
    a, b = RemotePolicyClient(server.url), RemotePolicyClient(server.url)
    a.connect(), b.connect()
    for _ in range(2):
        _together([lambda: a.infer(_obs(1.0, "a")), lambda: b.infer(_obs(2.0, "b"))])
    warnings = [r.getMessage() for r in caplog.records if "slot-aware" in r.getMessage()]
    assert warnings == [
        "policy recorder is not slot-aware: it is reset for every new mix of sessions in a batch, which is only "
        "correct if it keeps no state between calls (else declare stateful = True)"
    ]
    a.close(), b.close()
