"""Issue 29, items 1, 4, 5, 6 and 12: bad input gets a one-line error (exit 2) or is refused alone.

* YAML alias bombs and recursive anchors, in every YAML the harness reads;
* episode plans and checkpoint fingerprints bounded in memory and time;
* the policy server: a request that cannot share a batch does not fail the others, a stateful
  policy is never reset by another session, in-flight memory, idle and connection limits;
* installed asset files readable by other users.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import websockets
from websockets.sync.client import connect

from vla_eval.actions.space import ActionChunk
from vla_eval.adapter import Policy
from vla_eval.cli.main import main
from vla_eval.errors import ConfigError
from vla_eval.remote import protocol
from vla_eval.remote.client import RemotePolicyClient, RemotePolicyError
from vla_eval.remote.server import PolicyServer

pytestmark = pytest.mark.filterwarnings("ignore:connect\\(\\) must be used:DeprecationWarning")


def _bomb(levels: int, fanout: int) -> str:
    """A "billion laughs" chain: ``fanout ** levels`` leaves from a few hundred bytes."""
    lines = ['l0: &l0 ["lol"]']
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * fanout)}]")
    return "\n".join(lines)


def _indent(text: str, pad: str = "  ") -> str:
    return "\n".join(pad + line for line in text.splitlines())


SUITE = """name: mini
backend: tabletop
tasks: [push_block]
episodes_per_task: 1
max_steps: 5
cameras: []
image_size: [32, 32]
"""


def _one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], err
    return lines[0]


# ----------------------------------------------------------------- item 1: YAML alias bombs


def test_alias_bomb_is_refused_before_it_is_expanded():
    from vla_eval.yaml_io import MAX_EXPANDED_NODES, YamlExpansionError, safe_load

    text = _bomb(9, 9)  # 387 million leaves, 9 ** 9
    t0 = time.perf_counter()
    with pytest.raises(YamlExpansionError, match=f"more than {MAX_EXPANDED_NODES} nodes"):
        safe_load(text)
    assert time.perf_counter() - t0 < 2.0
    # a document whose aliases stay small is read as before, shared values and all
    assert safe_load("base: &b {x: 1}\na: *b\nb: [*b, *b]") == {"base": {"x": 1}, "a": {"x": 1}, "b": [{"x": 1}] * 2}


@pytest.mark.parametrize("where", ["backend_options", "unknown_key"])
def test_suite_with_an_alias_bomb_exits_2_with_one_line(tmp_path, capsys, where):
    suite = tmp_path / "bomb.yaml"
    suite.write_text(SUITE + f"{where}:\n" + _indent(_bomb(10, 4)) + "\n")  # a million leaves
    rc = main(["run", "--suite", str(suite), "--policy", "noop", "--run-dir", str(tmp_path / "run"), "--no-progress"])
    assert rc == 2
    _one_line_error(capsys, str(suite), "aliases expand to more than")
    assert not (tmp_path / "run").exists()


def test_recursive_anchor_in_a_suite_is_a_clear_error(tmp_path, capsys):
    suite = tmp_path / "loop.yaml"
    suite.write_text(SUITE + "backend_options: &r {self: *r}\n")
    rc = main(["run", "--suite", str(suite), "--policy", "noop", "--run-dir", str(tmp_path / "run"), "--no-progress"])
    assert rc == 2
    _one_line_error(capsys, str(suite), "&r", "alias to itself")


def test_recursive_anchor_in_a_policy_file_and_policy_arg(tmp_path, capsys):
    policy = tmp_path / "pol.yaml"
    policy.write_text("adapter: random\nargs:\n  seed: &s [1, *s]\n")
    rc = main(
        ["run", "--suite", "tabletop_basic", "--policy", str(policy), "--run-dir", str(tmp_path / "a"), "--no-progress"]
    )
    assert rc == 2
    _one_line_error(capsys, str(policy), "alias to itself")
    rc = main(
        [
            "run",
            "--suite",
            "tabletop_basic",
            "--policy",
            "random",
            "--policy-arg",
            "seed=&r {self: *r}",
            "--run-dir",
            str(tmp_path / "b"),
            "--no-progress",
        ]
    )
    assert rc == 2
    _one_line_error(capsys, "--policy-arg seed", "alias to itself")


def test_scene_file_goes_through_the_bounded_reader(tmp_path):
    from vla_eval.sims.tabletop.scene import SceneError, load_scene

    scene = tmp_path / "scene.yaml"
    scene.write_text(_bomb(9, 9))
    with pytest.raises(SceneError, match="aliases expand"):
        load_scene(scene)


# ------------------------------------------------------- item 4: plans and checkpoints


def test_huge_episodes_flag_is_refused_at_once(tmp_path, capsys):
    t0 = time.perf_counter()
    rc = main(
        [
            "run",
            "--suite",
            "tabletop_basic",
            "--policy",
            "noop",
            "--episodes",
            "1000000000",
            "--run-dir",
            str(tmp_path / "run"),
            "--no-progress",
        ]
    )
    assert rc == 2 and time.perf_counter() - t0 < 20
    _one_line_error(capsys, "--episodes", "1000000", "1000000000")
    assert not (tmp_path / "run").exists()


def test_huge_suite_plan_is_refused_before_the_run_folder(tmp_path, capsys):
    from vla_eval.execution.plan import MAX_PLAN_EPISODES, build_plan
    from vla_eval.spec import load_suite

    suite = tmp_path / "big.yaml"
    suite.write_text(SUITE.replace("episodes_per_task: 1", "episodes_per_task: 3000000"))
    rc = main(["run", "--suite", str(suite), "--policy", "noop", "--run-dir", str(tmp_path / "run"), "--no-progress"])
    assert rc == 2
    _one_line_error(capsys, "3000000 episodes", str(MAX_PLAN_EPISODES))
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="exceed the limit"):
        build_plan(load_suite(str(suite)))


def _old_fingerprint(root: Path) -> str:
    """The fingerprint as earlier releases computed it, so a resumed run still matches its record."""
    h = hashlib.sha256()
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for f in files:
        size = f.stat().st_size
        h.update(f"{f.relative_to(root) if f != root else f.name}:{size}".encode())
        if size <= 1 << 20:
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def test_checkpoint_fingerprint_is_bounded_and_unchanged(tmp_path, monkeypatch):
    from vla_eval import provenance

    ckpt = tmp_path / "ckpt"
    (ckpt / "sub.dir").mkdir(parents=True)
    (ckpt / "config.json").write_text('{"a": 1}')
    (ckpt / "sub.dir" / "tok.txt").write_text("x")
    (ckpt / "sub").mkdir()
    (ckpt / "sub" / "b.bin").write_bytes(b"\0" * 100)
    assert provenance.checkpoint_fingerprint(str(ckpt)) == _old_fingerprint(ckpt)
    monkeypatch.setattr(provenance, "_MAX_ENTRIES", 3)
    with pytest.raises(ConfigError, match="more than 3 files under"):
        provenance.checkpoint_fingerprint(str(ckpt))
    with pytest.raises(ConfigError, match="/proc/self/mem"):
        provenance.checkpoint_fingerprint("/proc/self/mem")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file or a folder"):
        provenance.checkpoint_fingerprint(str(fifo))  # opening a FIFO would block for ever


@pytest.mark.parametrize("checkpoint", ["FOLDER", "/proc/self/mem"])
def test_reference_checkpoint_of_the_wrong_form_exits_2(tmp_path, capsys, checkpoint):
    folder = tmp_path / "not_a_ckpt"
    folder.mkdir()
    for i in range(50):
        (folder / f"f{i}.txt").write_text(str(i))
    value = str(folder) if checkpoint == "FOLDER" else checkpoint
    rc = main(
        [
            "run",
            "--suite",
            "tabletop_basic",
            "--policy",
            "reference",
            "--policy-arg",
            f"checkpoint={value}",
            "--episodes",
            "1",
            "--run-dir",
            str(tmp_path / "run"),
            "--no-progress",
        ]
    )
    assert rc == 2
    _one_line_error(capsys, "checkpoint", value)
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------- items 5, 6, 12: the server


class StackImages(Policy):
    """Like the reference policy, stacks the batch's images into one array (fails on mixed sizes)."""

    name = "stack_images"
    needs_images = True

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.batch_sizes: list[int] = []

    def predict(self, obs_batch):
        time.sleep(self.delay)
        frames = np.stack([np.asarray(o["images"]["agentview"], dtype=np.float64) for o in obs_batch])
        self.batch_sizes.append(len(obs_batch))
        out = np.zeros((len(obs_batch), 1, 7))
        out[:, 0, 0] = frames.reshape(len(obs_batch), -1).shape[1]
        return ActionChunk(actions=out)


class TurnCounter(Policy):
    """Keeps a call count since its last reset and is not slot-aware: the issue's counter policy."""

    name = "turn_counter"
    needs_images = False
    stateful = True

    def __init__(self):
        self.n = 0

    def reset(self, instructions, seeds=None):
        self.n = 0

    def predict(self, obs_batch):
        self.n += 1
        return ActionChunk(actions=np.full((len(obs_batch), 1, 7), float(self.n)))


def _image_obs(size: int, instruction: str = "stack") -> dict:
    return {
        "images": {"agentview": np.zeros((size, size, 3), np.uint8)},
        "state": {"x": np.zeros(1)},
        "instruction": instruction,
    }


def _served(policy: Policy, **kw) -> PolicyServer:
    server = PolicyServer(policy, port=0, **kw)
    server.start_in_thread()
    return server


def _in_threads(calls):
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


def test_odd_image_is_answered_alone_and_good_clients_keep_their_connection():
    policy = StackImages()
    server = _served(policy, max_batch=8, max_wait_ms=1000)
    clients = [RemotePolicyClient(server.url) for _ in range(3)]
    try:
        for c in clients:
            c.connect()
        sizes = [224, 224, 3]
        replies = _in_threads([lambda c=c, s=s: c.infer(_image_obs(s)) for c, s in zip(clients, sizes)])
        for reply, size in zip(replies, sizes):
            assert isinstance(reply, dict), reply
            assert reply["actions"][0, 0] == size * size * 3
        assert sorted(r["server_timing"]["batch_size"] for r in replies) == [1, 2, 2]
        again = _in_threads([lambda c=c: c.infer(_image_obs(224)) for c in clients[:2]])  # same connections
        assert all(isinstance(r, dict) for r in again), again
    finally:
        for c in clients:
            c.close()
        server.shutdown()


def test_observation_outside_the_contract_is_refused_alone():
    server = _served(StackImages())
    try:
        ws = connect(server.url, compression=None, max_size=None)
        ws.recv()
        ws.send(protocol.packb({"state": {"x": np.zeros(1)}, "instruction": "no camera"}))
        reply = ws.recv(timeout=5)
        assert isinstance(reply, str) and "needs camera images" in reply
        ws.send(protocol.packb({**_image_obs(8), "images": {"agentview": np.zeros((0, 4, 3), np.uint8)}}))
        reply = ws.recv(timeout=5)
        assert isinstance(reply, str) and "'agentview'" in reply and "H x W x C" in reply
        ws.send(protocol.packb(_image_obs(8)))  # the connection is still served
        answer = protocol.unpackb(ws.recv(timeout=5))
        assert answer["actions"][0, 0] == 8 * 8 * 3
        ws.close()
    finally:
        server.shutdown()


def test_stateful_policy_is_never_reset_by_another_session():
    server = _served(TurnCounter(), max_batch=8, max_wait_ms=50)
    assert server.metadata["sessions"] == "one at a time"
    a, b = RemotePolicyClient(server.url), RemotePolicyClient(server.url)
    try:
        a.connect(), b.connect()
        counts_a = [a.infer({"state": {"x": np.zeros(1)}, "instruction": "a"})["actions"][0, 0] for _ in range(2)]
        got_b: list = []
        waiter = threading.Thread(target=lambda: got_b.append(b.infer({"instruction": "b"})["actions"][0, 0]))
        waiter.start()  # b takes its turn between a's requests
        time.sleep(0.3)
        counts_a += [a.infer({"instruction": "a"})["actions"][0, 0] for _ in range(2)]
        assert counts_a == [1, 2, 3, 4]
        assert not got_b  # b waits for a's session instead of resetting it
        a.close()
        waiter.join(10)
        assert got_b == [1.0]
    finally:
        a.close(), b.close()
        server.shutdown()


def test_inflight_frame_memory_is_bounded_across_clients():
    server = _served(StackImages(delay=1.0), max_inflight_bytes=1_000_000)
    try:
        first, second = (connect(server.url, compression=None, max_size=None) for _ in range(2))
        first.recv(), second.recv()
        first.send(protocol.packb(_image_obs(300)))  # 270 KB frame, charged twice (frame + arrays): fits
        time.sleep(0.3)
        second.send(protocol.packb(_image_obs(300)))  # a second one in flight would pass 1 MB
        reply = second.recv(timeout=5)
        assert isinstance(reply, str) and "server busy" in reply and "max_inflight_bytes" in reply
        assert protocol.unpackb(first.recv(timeout=5))["actions"][0, 0] == 300 * 300 * 3

        def released():  # a request's bytes are released just after its reply is sent, not before the client reads it
            deadline = time.monotonic() + 5
            while server._inflight and time.monotonic() < deadline:
                time.sleep(0.01)
            return server._inflight == 0

        assert released()
        second.send(protocol.packb(_image_obs(300)))  # the first is answered: room again, same connection
        assert protocol.unpackb(second.recv(timeout=5))["actions"][0, 0] == 300 * 300 * 3
        first.send(protocol.packb(_image_obs(600)))  # 1.08 MB alone never fits
        assert "max_inflight_bytes" in first.recv(timeout=5)
        assert released()
        first.close(), second.close()
    finally:
        server.shutdown()


def test_idle_and_surplus_connections_are_closed():
    server = _served(StackImages(), idle_timeout_s=0.5, max_connections=1)
    try:
        ws = connect(server.url, compression=None, max_size=None)
        ws.recv()
        extra = connect(server.url, compression=None, max_size=None)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            extra.recv(timeout=5)
        assert "max_connections" in str(closed.value)
        with pytest.raises(websockets.ConnectionClosed) as idle:
            ws.recv(timeout=5)  # sends nothing: closed after 0.5 s, not held for ever
        assert "idle" in str(idle.value)
        with RemotePolicyClient(server.url) as c:  # its slot is free again
            assert c.infer(_image_obs(4))["actions"][0, 0] == 4 * 4 * 3
    finally:
        server.shutdown()


def test_refused_request_does_not_close_the_client():
    """What a vla-eval client sees for a refusal: an error for that request, then service as usual."""
    server = _served(StackImages())
    try:
        with RemotePolicyClient(server.url) as c:
            with pytest.raises(RemotePolicyError, match="needs camera images"):
                c.infer({"instruction": "blind"})
            assert c.infer(_image_obs(4))["actions"][0, 0] == 48
    finally:
        server.shutdown()


# --------------------------------------------------------------- item 12: asset file modes


def test_installed_asset_files_are_readable_by_others(tmp_path, monkeypatch):
    from vla_eval import assets

    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    files = {"a.txt": b"alpha", "d/b.bin": b"\x00\x01"}
    for rel, data in files.items():
        (src / rel).write_bytes(data)
    mdir = tmp_path / "manifests"
    mdir.mkdir()
    (mdir / "tiny.sha256").write_text("".join(f"{hashlib.sha256(d).hexdigest()}  {r}\n" for r, d in files.items()))
    monkeypatch.setattr(assets, "MANIFEST_DIR", mdir)
    pack = assets.AssetPack(
        name="tiny",
        alias="tiny",
        upstream_repo="x/y",
        commit="0",
        url_base="http://127.0.0.1:9",
        description="test pack",
    )
    old = os.umask(0o022)
    try:
        report = assets.fetch(pack, dest=tmp_path / "dest", source_dir=src)
    finally:
        os.umask(old)
    assert report.installed == 2
    for rel in files:
        assert stat.S_IMODE((tmp_path / "dest" / rel).stat().st_mode) == 0o644
