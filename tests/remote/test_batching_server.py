"""The batching policy server: per-session episode state, batched == unbatched, faults stay local."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from websockets.sync.client import connect

from vla_eval.policies.base import ActionChunk, Policy, SlotStates
from vla_eval.remote import protocol
from vla_eval.remote.client import RemotePolicyClient, RemotePolicyError
from vla_eval.remote.server import PolicyServer

pytestmark = pytest.mark.filterwarnings("ignore:connect\\(\\) must be used:DeprecationWarning")


class CounterPolicy(Policy):
    """Stateful per episode, like a plan follower: row = [calls this episode, running sum of x,
    length of the instruction given at reset]. Any state leak between sessions changes the numbers."""

    name = "counter"
    needs_images = False
    slot_aware = True

    def __init__(self, delay: float = 0.0, boom: str | None = None):
        self.delay, self.boom = delay, boom
        self._eps = SlotStates(lambda instruction, seed: {"instr": instruction, "n": 0, "acc": 0.0})
        self.batch_sizes: list[int] = []
        self.released: list = []

    def reset(self, instructions, seeds=None, slots=None):
        self._eps.reset(instructions, seeds, slots)

    def release(self, slots):
        self.released.extend(slots)
        self._eps.release(slots)

    def predict(self, obs_batch, slots=None):
        if self.delay:
            time.sleep(self.delay)
        if self.boom and any(o["instruction"] == self.boom for o in obs_batch):
            raise RuntimeError("model exploded")
        self.batch_sizes.append(len(obs_batch))
        out = np.zeros((len(obs_batch), 1, 7))
        for b, (o, st) in enumerate(zip(obs_batch, self._eps.rows(obs_batch, slots))):
            st["n"] += 1
            st["acc"] += float(np.asarray(o["state"]["x"])[0])
            out[b, 0, :3] = [st["n"], st["acc"], len(st["instr"])]
        return ActionChunk(actions=out)


class PureFunctionPolicy(Policy):
    """Stateless and not slot-aware: chunk t = x * (t + 1) + len(instruction)."""

    name = "pure"
    needs_images = False

    def predict(self, obs_batch):
        out = np.zeros((len(obs_batch), 3, 7))
        for b, o in enumerate(obs_batch):
            out[b] = np.asarray(o["state"]["x"])[0] * np.arange(1, 4)[:, None] + len(o["instruction"])
        return ActionChunk(actions=out)


def _obs(x: float, instruction: str, **extra) -> dict:
    return {"state": {"x": np.array([x])}, "instruction": instruction, "prompt": instruction, **extra}


def _server(policy, **kw) -> PolicyServer:
    server = PolicyServer(policy, port=0, **kw)
    server.start_in_thread()
    return server


def _together(clients, msgs):
    """Send one request per client at the same moment; returns replies (or exceptions) in order."""
    out: list = [None] * len(clients)

    def go(i):
        try:
            out[i] = clients[i].infer(msgs[i])
        except Exception as exc:  # noqa: BLE001
            out[i] = exc

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


SESSIONS = {
    "a": ("pick up the red cube", [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]),
    "b": ("open the drawer", [3.0, 0.25, 7.0, 1.5, 2.5, 0.125]),
}
RESET_A_AT = 3  # session a starts a new episode here; b must not notice


def _script(name: str, step: int) -> dict:
    instruction, xs = SESSIONS[name]
    extra = {"reset": True} if name == "a" and step == RESET_A_AT else {}
    return _obs(xs[step], instruction, **extra)


def test_interleaved_sessions_match_separate_servers():
    from openpi_client.websocket_client_policy import WebsocketClientPolicy

    # reference: each session alone on its own server
    alone = {}
    for name in SESSIONS:
        server = _server(CounterPolicy())
        try:
            with RemotePolicyClient(server.url) as c:
                alone[name] = [c.infer(_script(name, k))["actions"] for k in range(6)]
        finally:
            server.shutdown()
    assert alone["a"][RESET_A_AT][0, 0] == 1.0  # the reset restarted a's counter (the reference is meaningful)

    policy = CounterPolicy()
    server = _server(policy, max_batch=8, max_wait_ms=2000)
    try:
        a = WebsocketClientPolicy(host="127.0.0.1", port=server.port)  # an openpi client: reset is just a key
        b = RemotePolicyClient(server.url)
        b.connect()  # both sessions open before the first step, so the server waits for both
        got = {"a": [], "b": []}
        for k in range(6):
            ra, rb = _together([a, b], [_script("a", k), _script("b", k)])
            got["a"].append(ra["actions"])
            got["b"].append(rb["actions"])
            assert ra["server_timing"]["batch_size"] == 2 == rb["server_timing"]["batch_size"]
        b.close()
        a._ws.close()
    finally:
        server.shutdown()
    for name in SESSIONS:
        np.testing.assert_array_equal(np.stack(got[name]), np.stack(alone[name]))
    assert policy.batch_sizes == [2] * 6  # every step really was one shared predict call


def test_batched_answers_equal_unbatched():
    instructions = ["a", "bb", "ccc", "dddd"]
    replies = {}
    for max_batch in (1, 4):
        server = _server(PureFunctionPolicy(), max_batch=max_batch, max_wait_ms=2000)
        clients = [RemotePolicyClient(server.url) for _ in instructions]
        for c in clients:
            c.connect()
        try:
            rounds = [_together(clients, [_obs(0.5 * k + i, s) for i, s in enumerate(instructions)]) for k in range(3)]
        finally:
            for c in clients:
                c.close()
            server.shutdown()
        replies[max_batch] = rounds
        sizes = {r["server_timing"]["batch_size"] for rnd in rounds for r in rnd}
        assert sizes == ({1} if max_batch == 1 else {4})
    for r1, r4 in zip(replies[1], replies[4]):
        for x, y in zip(r1, r4):
            np.testing.assert_array_equal(x["actions"], y["actions"])
    # and both equal the policy called directly, one observation at a time
    direct = PureFunctionPolicy().predict([_obs(1.0 + 1, "bb")]).actions[0]
    np.testing.assert_array_equal(replies[4][2][1]["actions"], direct)


def test_single_client_is_never_held_back_by_max_wait():
    server = _server(PureFunctionPolicy(), max_batch=8, max_wait_ms=5000)
    try:
        with RemotePolicyClient(server.url) as c:
            c.infer(_obs(1.0, "x"))
            t = time.perf_counter()
            reply = c.infer(_obs(2.0, "x"))
            elapsed = time.perf_counter() - t
    finally:
        server.shutdown()
    assert reply["server_timing"]["queue_ms"] < 2500 and elapsed < 2.5  # nowhere near the 5 s window


def test_client_disconnecting_mid_batch_does_not_fail_the_others():
    policy = CounterPolicy(delay=0.5)
    server = _server(policy, max_batch=8, max_wait_ms=2000)
    try:
        a, b = RemotePolicyClient(server.url), RemotePolicyClient(server.url)
        a.connect(), b.connect()
        quitter = connect(server.url, compression=None, max_size=None)
        quitter.recv()  # metadata

        def send_and_vanish():
            time.sleep(0.05)
            quitter.send(protocol.packb(_obs(9.0, "leaving")))
            time.sleep(0.1)  # in the batch now (policy takes 0.5 s); drop the connection
            quitter.close()

        t = threading.Thread(target=send_and_vanish)
        t.start()
        ra, rb = _together([a, b], [_obs(1.0, "one"), _obs(2.0, "two")])
        t.join()
        assert ra["actions"][0, :2].tolist() == [1.0, 1.0] and rb["actions"][0, :2].tolist() == [1.0, 2.0]
        assert ra["server_timing"]["batch_size"] == 3  # the quitter's request was in the same batch
        # the server goes on serving a's episode, and a later batch frees the quitter's episode state
        for n in range(2, 40):
            assert a.infer(_obs(1.0, "one"))["actions"][0, 0] == n
            if policy.released:
                break
            time.sleep(0.05)
        assert len(policy.released) == 1
        a.close()
        b.close()
    finally:
        server.shutdown()


def test_policy_exception_fails_only_its_batch():
    policy = CounterPolicy(boom="explode")
    server = _server(policy, max_batch=8, max_wait_ms=2000)
    try:
        bad, unlucky = RemotePolicyClient(server.url), RemotePolicyClient(server.url)
        bad.connect(), unlucky.connect()
        results = _together([bad, unlucky], [_obs(1.0, "explode"), _obs(1.0, "fine")])
        for r in results:
            assert isinstance(r, RemotePolicyError) and "model exploded" in str(r)
        assert server.stats["failed_batches"] == 1
        # a later batch (a reconnecting client and a new one) is served as usual
        other = RemotePolicyClient(server.url)
        other.connect(), unlucky.connect()
        r1, r2 = _together([unlucky, other], [_obs(3.0, "fine"), _obs(4.0, "also fine")])
        assert r1["actions"][0, :2].tolist() == [1.0, 3.0] and r2["actions"][0, :2].tolist() == [1.0, 4.0]
        for c in (bad, unlucky, other):
            c.close()
    finally:
        server.shutdown()


def test_bad_message_gets_an_error_frame_not_a_hang():
    server = _server(CounterPolicy())
    try:
        ws = connect(server.url, compression=None, max_size=None)
        ws.recv()
        ws.send(protocol.packb([1, 2, 3]))
        reply = ws.recv(timeout=5)
        assert isinstance(reply, str) and "expected a map" in reply
        ws.send(protocol.packb(_obs(1.0, "after a bad frame")))  # the same connection is still served
        answer = protocol.unpackb(ws.recv(timeout=5))
        assert isinstance(answer, dict) and "actions" in answer
    finally:
        server.shutdown()


def test_slot_states_keep_episodes_apart_in_any_row_order():
    """The contract the lock-step batch and the server share: rows tagged by slot, any subset, any order."""
    from vla_eval.policies.baselines import RandomPolicy

    shared = RandomPolicy()
    shared.reset(["x", "y"], seeds=[11, 22], slots=["p", "q"])
    calls = [["q"], ["p", "q"], ["q", "p"], ["p"]]
    got = {"p": [], "q": []}
    for slots in calls:
        chunk = shared.predict([{"instruction": ""}] * len(slots), slots=slots)
        for s, row in zip(slots, chunk.actions):
            got[s].append(row)
    for slot, seed in (("p", 11), ("q", 22)):
        own = RandomPolicy()
        own.reset(["z"], seeds=[seed])
        expected = [own.predict([{"instruction": ""}]).actions[0] for _ in got[slot]]
        np.testing.assert_array_equal(np.stack(got[slot]), np.stack(expected))
